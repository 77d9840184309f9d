"""SparkRTC recording rules (A7-A11) with the official huaweicloudsdkcloudrtc against a live server
whose S3 targets go to moto on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcloudrtc.v2 import (
    CloudRTCClient,
    CreateRecordRuleRequest,
    DeleteRecordRuleRequest,
    HLSRecordConfig,
    ListRecordRulesRequest,
    MP4RecordConfig,
    RecordObsFileAddr,
    RecordRuleReq,
    ShowRecordRuleRequest,
    UpdateRecordRuleRequest,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from sqlalchemy import select

from roomcast.runtime import Runtime
from roomcast.store.tables import AppRow, TaskRow, utcnow
from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer, live_server
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, MotoS3


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    m = MotoS3()
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: MotoS3) -> Iterator[LiveServer]:
    # OBS addresses carry no keys: the node writes with its own (here: the environment's).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        with live_server(Path(tmp_path_factory.mktemp("rules")) / "var", s3_endpoint=moto.endpoint) as srv:
            yield srv


@pytest.fixture
def tenant(server: LiveServer) -> Tenant:
    return make_tenant(server)


def client(server: LiveServer, t: Tenant) -> CloudRTCClient:
    creds = BasicCredentials(t.creds.secret_id, t.creds.secret_key, t.creds.project_id)
    return CloudRTCClient.new_builder().with_credentials(creds).with_endpoints([server.url]).build()


def rule_body(bucket: str, location: str = "cn-north-4", **kw: Any) -> RecordRuleReq:
    return RecordRuleReq(
        obs_addr=RecordObsFileAddr(
            location=location, project_id="ad7456ce8ef89adf567", bucket=bucket, object="Record/"
        ),
        record_formats=kw.pop("record_formats", ["MP4"]),
        mp4_config=kw.pop(
            "mp4_config", MP4RecordConfig(record_cycle=60, record_max_duration_to_merge_file=0)
        ),
        **kw,
    )


def test_rule_lifecycle(server: LiveServer, tenant: Tenant, moto: MotoS3) -> None:
    c = client(server, tenant)
    app_id = tenant.app.app_id
    bucket = moto.make_bucket()
    created = c.create_record_rule(CreateRecordRuleRequest(app_id=app_id, body=rule_body(bucket)))
    assert created.status_code == 201 and len(created.rule_id) == 32 and created.app_id == app_id
    assert created.obs_addr.bucket == bucket and created.obs_addr.object == "Record/"
    assert created.obs_addr.location == "cn-north-4" and created.obs_addr.project_id == "ad7456ce8ef89adf567"
    assert created.record_formats == ["MP4"]
    assert created.mp4_config.record_cycle == 60
    assert created.mp4_config.record_prefix == (
        "{app_id}/{record_format}/{stream}_{file_start_time}/{stream}_{file_start_time}"
    )
    assert created.hls_config.record_cycle == 0  # as the vendor's example answers
    assert created.create_time.endswith("Z") and created.update_time.endswith("Z")
    # The bucket check wrote and removed its probe.
    assert moto.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0

    # POST to the same location replaces the rule and keeps its id.
    replaced = c.create_record_rule(
        CreateRecordRuleRequest(
            app_id=app_id,
            body=rule_body(
                bucket,
                record_formats=["HLS", "MP4"],
                hls_config=HLSRecordConfig(record_cycle=0, record_prefix="{stream}/{file_start_time}"),
                mp4_config=MP4RecordConfig(record_cycle=120),
            ),
        )
    )
    assert replaced.rule_id == created.rule_id
    assert replaced.record_formats == ["HLS", "MP4"] and replaced.hls_config.record_slice_duration == 10
    assert replaced.hls_config.record_prefix == "{stream}/{file_start_time}"
    assert replaced.mp4_config.record_cycle == 120

    other = c.create_record_rule(
        CreateRecordRuleRequest(app_id=app_id, body=rule_body(bucket, location="cn-east-3"))
    )
    assert other.rule_id != created.rule_id
    listed = c.list_record_rules(ListRecordRulesRequest(app_id=app_id))
    assert [r.rule_id for r in listed.rules] == [created.rule_id, other.rule_id]
    page = c.list_record_rules(ListRecordRulesRequest(app_id=app_id, offset=1, limit=1))
    assert [r.rule_id for r in page.rules] == [other.rule_id]

    shown = c.show_record_rule(ShowRecordRuleRequest(app_id=app_id, rule_id=created.rule_id))
    assert shown.rule_id == created.rule_id and shown.record_formats == ["HLS", "MP4"]

    updated = c.update_record_rule(
        UpdateRecordRuleRequest(
            app_id=app_id,
            rule_id=other.rule_id,
            body=rule_body(bucket, location="cn-east-3", record_formats=["MP4"]),
        )
    )
    assert updated.rule_id == other.rule_id and updated.mp4_config.record_cycle == 60
    # Moving a rule onto a location another rule holds is refused.
    with pytest.raises(ClientRequestException) as ei:
        c.update_record_rule(
            UpdateRecordRuleRequest(app_id=app_id, rule_id=other.rule_id, body=rule_body(bucket))
        )
    assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001019")

    assert (
        c.delete_record_rule(DeleteRecordRuleRequest(app_id=app_id, rule_id=other.rule_id)).status_code == 204
    )
    with pytest.raises(ClientRequestException) as ei:
        c.show_record_rule(ShowRecordRuleRequest(app_id=app_id, rule_id=other.rule_id))
    assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001011")
    assert [r.rule_id for r in c.list_record_rules(ListRecordRulesRequest(app_id=app_id)).rules] == [
        created.rule_id
    ]


def test_rule_in_use_cannot_be_deleted(server: LiveServer, tenant: Tenant, moto: MotoS3) -> None:
    c = client(server, tenant)
    app_id = tenant.app.app_id
    rule = c.create_record_rule(CreateRecordRuleRequest(app_id=app_id, body=rule_body(moto.make_bucket())))

    async def running_job(rt: Runtime) -> None:
        async with rt.db.sessions.begin() as s:
            app_pk = (await s.execute(select(AppRow.id).where(AppRow.app_id == app_id))).scalar_one()
            s.add(
                TaskRow(
                    task_id="job-" + rule.rule_id[:8],
                    app_pk=app_pk,
                    sdk_app_id=tenant.app.sdk_app_id,
                    kind="recording",
                    dialect="sparkrtc",
                    room_id="r1",
                    spec="{}",
                    request=json.dumps({"record_param": {"record_rule_id": rule.rule_id}}),
                    state="running",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )

    async def job_exits(rt: Runtime) -> None:
        async with rt.db.sessions.begin() as s:
            row = (
                await s.execute(select(TaskRow).where(TaskRow.task_id == "job-" + rule.rule_id[:8]))
            ).scalar_one()
            row.state = "exited"

    server.run(running_job)
    with pytest.raises(ClientRequestException) as ei:
        c.delete_record_rule(DeleteRecordRuleRequest(app_id=app_id, rule_id=rule.rule_id))
    assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001013")
    server.run(job_exits)
    assert (
        c.delete_record_rule(DeleteRecordRuleRequest(app_id=app_id, rule_id=rule.rule_id)).status_code == 204
    )


def _errors_cases(bucket: str) -> list[tuple[RecordRuleReq, int, str]]:
    addr = {"location": "cn-north-4", "project_id": "p1", "bucket": bucket}
    return [
        (rule_body("rc-no-such-bucket-here"), 404, "RTC.00001014"),
        (rule_body(bucket, record_formats=["HLS"]), 400, "RTC.00001005"),  # HLS without hls_config
        (rule_body(bucket, record_formats=[]), 400, "RTC.00001003"),
        (rule_body(bucket, record_formats=["FLV"]), 400, "RTC.00001003"),
        (rule_body(bucket, mp4_config=MP4RecordConfig(record_cycle=59)), 400, "RTC.00001003"),
        (rule_body(bucket, mp4_config=MP4RecordConfig(record_cycle=10801)), 400, "RTC.00001003"),
        (
            rule_body(bucket, record_formats=["HLS"], hls_config=HLSRecordConfig(record_cycle=30)),
            400,
            "RTC.00001003",
        ),
        (
            rule_body(
                bucket,
                record_formats=["HLS"],
                hls_config=HLSRecordConfig(record_cycle=0, record_slice_duration=1),
            ),
            400,
            "RTC.00001003",
        ),
        (
            rule_body(bucket, mp4_config=MP4RecordConfig(record_cycle=60, record_prefix="{nope}/x")),
            400,
            "RTC.00001003",
        ),
        (rule_body(bucket, location="Mars Base"), 400, "RTC.00001012"),
        (
            RecordRuleReq(obs_addr=RecordObsFileAddr(**addr), mp4_config=MP4RecordConfig(record_cycle=60)),
            400,
            "RTC.00001005",
        ),
        (
            RecordRuleReq(record_formats=["MP4"], mp4_config=MP4RecordConfig(record_cycle=60)),
            400,
            "RTC.00001005",
        ),
        (
            RecordRuleReq(
                obs_addr=RecordObsFileAddr(location="cn-north-4", project_id="p1", bucket="Bad_Bucket"),
                record_formats=["MP4"],
                mp4_config=MP4RecordConfig(record_cycle=60),
            ),
            400,
            "RTC.00001003",
        ),
    ]


def test_documented_errors(server: LiveServer, tenant: Tenant, other_tenant: Tenant, moto: MotoS3) -> None:
    c = client(server, tenant)
    app_id = tenant.app.app_id
    bucket = moto.make_bucket()
    for body, status, code in _errors_cases(bucket):
        with pytest.raises(ClientRequestException) as ei:
            c.create_record_rule(CreateRecordRuleRequest(app_id=app_id, body=body))
        assert (ei.value.status_code, ei.value.error_code) == (status, code), body
    assert c.list_record_rules(ListRecordRulesRequest(app_id=app_id)).rules == []

    rule = c.create_record_rule(CreateRecordRuleRequest(app_id=app_id, body=rule_body(bucket)))
    missing = "0" * 32
    for call, req in [
        (c.show_record_rule, ShowRecordRuleRequest(app_id=app_id, rule_id=missing)),
        (c.delete_record_rule, DeleteRecordRuleRequest(app_id=app_id, rule_id=missing)),
        (
            c.update_record_rule,
            UpdateRecordRuleRequest(app_id=app_id, rule_id=missing, body=rule_body(bucket)),
        ),
    ]:
        with pytest.raises(ClientRequestException) as ei:
            call(req)
        assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001011")
    for call, req in [
        (c.list_record_rules, ListRecordRulesRequest(app_id=app_id, limit=0)),
        (c.list_record_rules, ListRecordRulesRequest(app_id=app_id, limit=101)),
    ]:
        with pytest.raises(ClientRequestException) as ei:
            call(req)
        assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001003")

    # Another tenant sees neither the app nor its rule.
    rival = client(server, other_tenant)
    with pytest.raises(ClientRequestException) as ei:
        rival.show_record_rule(ShowRecordRuleRequest(app_id=app_id, rule_id=rule.rule_id))
    assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001015")
    with pytest.raises(ClientRequestException) as ei:
        rival.create_record_rule(CreateRecordRuleRequest(app_id=app_id, body=rule_body(bucket)))
    assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001015")
    with pytest.raises(ClientRequestException) as ei:
        rival.show_record_rule(ShowRecordRuleRequest(app_id=other_tenant.app.app_id, rule_id=rule.rule_id))
    assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001011")


@pytest.fixture
def other_tenant(server: LiveServer) -> Tenant:
    return make_tenant(server, "rival")


def test_malformed_body(server: LiveServer, tenant: Tenant) -> None:
    # Unsigned: the server authenticates first, so a bad body from a stranger is 401, not 400.
    r = httpx.post(f"{server.url}/v2/apps/{tenant.app.app_id}/record-rules", content=b"{", timeout=5)
    assert r.status_code == 401 and r.json()["error_code"] == "APIGW.0301"


def test_concurrent_saves_keep_one_rule_per_location(
    server: LiveServer, tenant: Tenant, moto: MotoS3
) -> None:
    from roomcast.api.sparkrtc.record_rules import ObsAddr, rule_target
    from roomcast.services.record_rules import RecordRuleService

    target = rule_target(ObsAddr(location="cn-north-4", project_id="p", bucket=moto.make_bucket()))

    async def race(rt: Runtime) -> set[str]:
        svc = RecordRuleService(rt.db.sessions)
        results = await asyncio.gather(
            *(svc.save(tenant.app.app_id, "cn-north-4", target, {"n": i}) for i in range(8))
        )
        return {r.rule_id for r, _ in results}

    ids = server.run(race)
    assert len(ids) == 1
