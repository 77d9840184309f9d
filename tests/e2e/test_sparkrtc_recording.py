"""SparkRTC recording end to end with the official huaweicloudsdkcloudrtc: a rule to S3 on loopback
(MP4 and HLS), a nine-grid mix of two synthetic publishers changed live to a custom layout, an
individual job, query, stop; the files play under the rule's prefix and the record callbacks
arrive signed, once per event id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from huaweicloudsdkcloudrtc.v2 import (
    AutoRecordModeReq,
    CloudRTCClient,
    CreateIndividualStreamJobRequest,
    CreateMixJobRequest,
    CreateRecordRuleRequest,
    DeleteRecordRuleRequest,
    HLSRecordConfig,
    IndividualStreamJobReq,
    MixJobReq,
    MixLayoutPane,
    MixParam,
    MP4RecordConfig,
    RecordObsFileAddr,
    RecordParam,
    RecordRuleReq,
    ShowAutoRecordRequest,
    ShowIndividualStreamJobRequest,
    ShowMixJobRequest,
    StartAppRequest,
    StopAppRequest,
    StopIndividualStreamJobRequest,
    StopMixJobRequest,
    UpdateAutoRecordRequest,
    UpdateIndividualJobReq,
    UpdateIndividualStreamJobRequest,
    UpdateMixJobReq,
    UpdateMixJobRequest,
    UpdateMixParam,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from roomcast.api.sparkrtc.callbacks import SIGNATURE_HEADER, sign
from roomcast.runtime import Runtime
from roomcast.services.tasks import TaskService
from roomcast.store.tables import RoomSessionRow
from tests.api.conftest import Tenant
from tests.e2e.test_trtc_cloud_recording import ROOM, publishers, with_callback
from tests.support import avcheck
from tests.support.live import LiveServer, live_server
from tests.support.receiver import Receiver
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, MotoS3

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CALLBACK_KEY = "callback-signing-key"  # with_callback sets this key
BACKGROUND = (40, 200, 60, 255)  # green: neither u1's red nor u2's blue


def png(width: int, height: int, rgba: tuple[int, int, int, int]) -> bytes:
    arr = np.zeros((height, width, 4), np.uint8)
    arr[...] = rgba
    cc: Any = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = width, height, "rgba"
    frame = av.VideoFrame.from_ndarray(arr, format="rgba")
    return b"".join(bytes(p) for p in [*cc.encode(frame), *cc.encode(None)])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: MotoS3) -> Iterator[LiveServer]:
    with pytest.MonkeyPatch.context() as mp:  # OBS addresses carry no keys: the node's own
        mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        with live_server(
            Path(tmp_path_factory.mktemp("spark")) / "var",
            ice_host_addresses=["127.0.0.1"],
            s3_endpoint=moto.endpoint,
            empty_room_grace_s=5.0,
        ) as srv:
            yield srv


def sdk(server: LiveServer, t: Tenant) -> CloudRTCClient:
    creds = BasicCredentials(t.creds.secret_id, t.creds.secret_key, t.creds.project_id)
    return CloudRTCClient.new_builder().with_credentials(creds).with_endpoints([server.url]).build()


def call(fn: Any, req: Any) -> Any:
    return asyncio.to_thread(fn, req)


async def wait_state(fn: Any, req: Any, state: str, limit: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        job = await call(fn, req)
        if job.state == state:
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job stayed {job.state}"
        await asyncio.sleep(0.2)


def make_rule(c: CloudRTCClient, app_id: str, bucket: str) -> str:
    body = RecordRuleReq(
        obs_addr=RecordObsFileAddr(location="cn-north-4", project_id="p1", bucket=bucket, object="rec/"),
        record_formats=["MP4", "HLS"],
        mp4_config=MP4RecordConfig(record_cycle=60),
        hls_config=HLSRecordConfig(record_cycle=0, record_slice_duration=2),
    )
    return str(c.create_record_rule(CreateRecordRuleRequest(app_id=app_id, body=body)).rule_id)


async def test_mix_and_individual_jobs(
    server: LiveServer, moto: MotoS3, receiver: Receiver, tmp_path: Path
) -> None:
    t = await asyncio.to_thread(with_callback, server, receiver.url)
    c = sdk(server, t)
    app_id = t.app.app_id
    bucket = moto.make_bucket()
    rule_id = await asyncio.to_thread(make_rule, c, app_id, bucket)
    # The canvas background is an object of the rule's bucket, read from the store (not HTTP).
    moto.client().put_object(Bucket=bucket, Key="assets/bg.png", Body=png(64, 48, BACKGROUND))
    async with publishers(server, t, ["u1", "u2"]):
        mix = await call(
            c.create_mix_job,
            CreateMixJobRequest(
                app_id=app_id,
                body=MixJobReq(
                    mix_param=MixParam(
                        room_id=ROOM,
                        encode_template="640x480_15_500",
                        layout_template="nine_grids_view",
                        background_image=f"s3://{bucket}/assets/bg.png",
                    ),
                    record_param=RecordParam(record_rule_id=rule_id),
                ),
            ),
        )
        assert mix.status_code == 201 and mix.state == "INIT" and mix.stop_time == "0001-01-01T00:00:00Z"
        assert mix.stream_name == f"m_{mix.job_id}_{ROOM}" and mix.mix_param.max_idle_time == 30
        stored = await asyncio.to_thread(
            server.run, lambda rt: TaskService(rt.db.sessions, rt.box).by_id(mix.job_id)
        )
        assert stored is not None and stored.spec["max_audio_sources"] == 3  # the 3 loudest voices
        single = await call(
            c.create_individual_stream_job,
            CreateIndividualStreamJobRequest(
                app_id=app_id,
                body=IndividualStreamJobReq(
                    room_id=ROOM, user_id="u1", record_param=RecordParam(record_rule_id=rule_id)
                ),
            ),
        )
        assert single.stream_name == f"s_{single.job_id}_{ROOM}_u1" and single.is_record_audio is True
        # u2's camera at the LD level (160x90): its 320x180 picture is scaled down.
        small = await call(
            c.create_individual_stream_job,
            CreateIndividualStreamJobRequest(
                app_id=app_id,
                body=IndividualStreamJobReq(
                    room_id=ROOM,
                    user_id="u2",
                    select_stream_type="LD",
                    is_record_audio=False,
                    record_param=RecordParam(record_rule_id=rule_id),
                ),
            ),
        )
        assert small.select_stream_type == "LD"
        # A second individual job for the same stream is JobRunning.
        with pytest.raises(ClientRequestException) as ei:
            await call(
                c.create_individual_stream_job,
                CreateIndividualStreamJobRequest(
                    app_id=app_id,
                    body=IndividualStreamJobReq(
                        room_id=ROOM, user_id="u1", record_param=RecordParam(record_rule_id=rule_id)
                    ),
                ),
            )
        assert ei.value.error_code == "RTC.00001006"
        show = ShowMixJobRequest(app_id=app_id, job_id=mix.job_id)
        await wait_state(c.show_mix_job, show, "RUNNING")
        await wait_state(
            c.show_individual_stream_job,
            ShowIndividualStreamJobRequest(app_id=app_id, job_id=single.job_id),
            "RUNNING",
        )
        # The rule is in use while the jobs run.
        with pytest.raises(ClientRequestException) as ei:
            await call(c.delete_record_rule, DeleteRecordRuleRequest(app_id=app_id, rule_id=rule_id))
        assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001013")
        same = await call(
            c.update_individual_stream_job,
            UpdateIndividualStreamJobRequest(
                app_id=app_id,
                job_id=single.job_id,
                body=UpdateIndividualJobReq(record_param=RecordParam(record_rule_id=rule_id)),
            ),
        )
        assert same.job_id == single.job_id
        await asyncio.sleep(2.0)
        # Live: custom layout, u2 on the right half; the canvas background shows on the left.
        updated = await call(
            c.update_mix_job,
            UpdateMixJobRequest(
                app_id=app_id,
                job_id=mix.job_id,
                body=UpdateMixJobReq(
                    mix_param=UpdateMixParam(
                        layout_template="custom",
                        layout_panes=[MixLayoutPane(id=1, user_id="u2", x=0.5, y=0.0, width=0.5, height=1.0)],
                    )
                ),
            ),
        )
        assert updated.mix_param.layout_template == "custom" and updated.state == "RUNNING"
        await asyncio.sleep(2.0)
        assert (
            await call(c.stop_mix_job, StopMixJobRequest(app_id=app_id, job_id=mix.job_id))
        ).status_code == 204
        for job_id in (single.job_id, small.job_id):
            await call(
                c.stop_individual_stream_job, StopIndividualStreamJobRequest(app_id=app_id, job_id=job_id)
            )
    stopped = await wait_state(c.show_mix_job, show, "STOPPED")
    assert stopped.stop_reason == "stopped"
    with pytest.raises(ClientRequestException) as ei:
        await call(c.stop_mix_job, StopMixJobRequest(app_id=app_id, job_id=mix.job_id))
    assert ei.value.error_code == "RTC.00001009"

    # Callbacks: each event once, signed, with the documented fields.
    def events(job_id: str) -> list[dict[str, Any]]:
        return [b for b in receiver.bodies() if b.get("job_id") == job_id]

    for _ in range(150):
        done = [e["event_type"] for e in events(mix.job_id) + events(single.job_id)]
        if done.count("RECORD_FILE_COMPLETE") >= 4 and done.count("CLOUD_RECORD_SERVER_OVER") == 2:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    mine = [r for r in receiver.requests if json.loads(r.body).get("job_id") in (mix.job_id, single.job_id)]
    ids = [json.loads(r.body)["event_id"] for r in mine]
    assert len(ids) == len(set(ids))
    assert all(r.headers[SIGNATURE_HEADER] == sign(CALLBACK_KEY, r.body) for r in mine)
    mix_events = events(mix.job_id)
    kinds = [e["event_type"] for e in mix_events]
    assert kinds.count("CLOUD_RECORD_SERVER_OVER") == 1
    completes = [e for e in mix_events if e["event_type"] == "RECORD_FILE_COMPLETE"]
    assert {e["record_format"] for e in completes} == {"MP4", "HLS"}
    # RECORD_NEW_FILE_START once per file (one MP4, one HLS playlist), naming the same object.
    starts = [e for e in mix_events if e["event_type"] == "RECORD_NEW_FILE_START"]
    assert sorted((e["record_format"], e["obs_object"]) for e in starts) == sorted(
        (e["record_format"], e["obs_object"]) for e in completes
    )
    for e in starts + completes:
        assert e["obs_bucket"] == bucket and e["obs_location"] == "cn-north-4"
        assert e["stream_name"] == f"m_{mix.job_id}_{ROOM}" and e["room_id"] == ROOM
        # Each format under its own record_prefix, {record_format} being MP4 or HLS.
        assert e["obs_object"].startswith(f"rec/{app_id}/{e['record_format']}/m_{mix.job_id}_{ROOM}_")
        assert e["start_time"].endswith("Z")
    for e in completes:
        assert e["download_url"].endswith(e["obs_object"])
    (mp4_event,) = [e for e in completes if e["record_format"] == "MP4"]
    assert (mp4_event["width"], mp4_event["height"]) == (640, 480) and mp4_event["record_duration"] >= 3

    # The files are in the bucket under the rule's prefix and play.
    s3 = moto.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    keys = [k for k in keys if not k.startswith("assets/")]
    assert keys and all(k.startswith(f"rec/{app_id}/") for k in keys), keys
    for k in keys:  # MP4 and HLS never share a path: each has its own prefix
        fmt = "MP4" if k.endswith(".mp4") else "HLS"
        assert k.startswith(f"rec/{app_id}/{fmt}/"), k
    path = tmp_path / "mix.mp4"
    s3.download_file(bucket, mp4_event["obs_object"], str(path))
    info = avcheck.probe(path)
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 640, 480)
    # Nine-grid first (two panes side by side), then u2 alone on the canvas.
    # (Sampled at a few moments of the first phase: a publisher's first keyframe may come late.)
    panes = [(0, 180, 320, 120), (320, 180, 320, 120)]
    seen = [avcheck.region_users(path, panes, ["u1", "u2"], at=t) for t in (0.5, 0.8, 1.1, 1.4, 1.7, 2.0)]
    assert ["u1", "u2"] in seen, seen
    late = (info.video.duration or 0) - 0.8
    assert avcheck.region_users(path, [(320, 0, 320, 480)], ["u1", "u2"], at=late) == ["u2"]
    # Left of u2: the background image, an object of the rule's bucket read through the store.
    left = avcheck.dominant_colour(avcheck.frame_at(path, late), (0, 0, 320, 480))
    assert avcheck.colour_distance(left, BACKGROUND[:3]) < 40, left
    single_keys = [k for k in keys if f"s_{single.job_id}_{ROOM}_u1" in k]
    assert any(k.endswith(".mp4") for k in single_keys) and any(k.endswith(".m3u8") for k in single_keys)
    # select_stream_type: FHD (the default) records the picture as sent, LD at most 90 lines.
    for _ in range(100):
        small_mp4 = [
            e["obs_object"]
            for e in events(small.job_id)
            if e["event_type"] == "RECORD_FILE_COMPLETE" and e["record_format"] == "MP4"
        ]
        if small_mp4:
            break
        await asyncio.sleep(0.2)
    sizes = {}
    for name, key in (("FHD", next(k for k in single_keys if k.endswith(".mp4"))), ("LD", small_mp4[0])):
        s3.download_file(bucket, key, str(tmp_path / f"{name}.mp4"))
        video = avcheck.probe(tmp_path / f"{name}.mp4").video
        assert video is not None
        sizes[name] = (video.width, video.height)
    assert sizes == {"FHD": (320, 180), "LD": (160, 90)}, sizes


def test_disabled_app_refuses_jobs_first(server: LiveServer, receiver: Receiver) -> None:
    t = with_callback(server, receiver.url)
    c = sdk(server, t)
    c.stop_app(StopAppRequest(app_id=t.app.app_id))
    try:
        # Even with a rule that does not exist and an unknown template: AppDeactivation first.
        with pytest.raises(ClientRequestException) as ei:
            c.create_mix_job(
                CreateMixJobRequest(
                    app_id=t.app.app_id,
                    body=MixJobReq(
                        mix_param=MixParam(room_id="r", encode_template="nope"),
                        record_param=RecordParam(record_rule_id="0" * 32),
                    ),
                )
            )
        assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001016")
    finally:
        c.start_app(StartAppRequest(app_id=t.app.app_id))


@pytest.mark.parametrize(
    ("mix_param", "rule", "code", "status"),
    [
        (
            {"room_id": "r", "encode_template": "640x480_15_500", "layout_template": "nine_grids_view"},
            "none",
            "RTC.00001011",
            404,
        ),
        (
            {"room_id": "r", "encode_template": "640x480_15_500", "layout_template": "stars"},
            "ok",
            "RTC.00001010",
            400,
        ),
        (
            {"room_id": "r", "encode_template": "641x480_15_500", "layout_template": "nine_grids_view"},
            "ok",
            "RTC.00001003",
            400,
        ),
        ({"room_id": "r", "encode_template": "640x480_15_500"}, "ok", "RTC.00001005", 400),
        (  # images are objects of the rule's bucket
            {
                "room_id": "r",
                "encode_template": "640x480_15_500",
                "layout_template": "nine_grids_view",
                "background_image": "s3://someone-elses-bucket/bg.png",
            },
            "ok",
            "RTC.00001003",
            400,
        ),
        (
            {"room_id": "r", "encode_template": "640x480_15_500", "layout_template": "custom"},
            "ok",
            "RTC.00001005",
            400,
        ),
        (
            {"room_id": "r", "encode_template": "audio_only", "layout_template": "custom"},
            "ok",
            "RTC.00001004",
            400,
        ),
        (
            {
                "room_id": "r",
                "encode_template": "640x480_15_500",
                "layout_template": "nine_grids_view",
                "max_idle_time": 4,
            },
            "ok",
            "RTC.00001003",
            400,
        ),
    ],
)
def test_mix_job_errors(
    server: LiveServer,
    receiver: Receiver,
    moto: MotoS3,
    mix_param: dict[str, Any],
    rule: str,
    code: str,
    status: int,
) -> None:
    t = with_callback(server, receiver.url)
    c = sdk(server, t)
    rule_id = make_rule(c, t.app.app_id, moto.make_bucket()) if rule == "ok" else "0" * 32
    body = MixJobReq(mix_param=MixParam(**mix_param), record_param=RecordParam(record_rule_id=rule_id))
    with pytest.raises(ClientRequestException) as ei:
        c.create_mix_job(CreateMixJobRequest(app_id=t.app.app_id, body=body))
    assert (ei.value.status_code, ei.value.error_code) == (status, code)


def test_job_not_found(server: LiveServer, receiver: Receiver) -> None:
    t = with_callback(server, receiver.url)
    c = sdk(server, t)
    for call_, req in [
        (c.show_mix_job, ShowMixJobRequest(app_id=t.app.app_id, job_id="0" * 32)),
        (c.stop_mix_job, StopMixJobRequest(app_id=t.app.app_id, job_id="0" * 32)),
        (c.show_individual_stream_job, ShowIndividualStreamJobRequest(app_id=t.app.app_id, job_id="x" * 32)),
        (c.stop_individual_stream_job, StopIndividualStreamJobRequest(app_id=t.app.app_id, job_id="x" * 32)),
    ]:
        with pytest.raises(ClientRequestException) as ei:
            call_(req)
        assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001008")


def test_job_waiting_for_media_is_init(server: LiveServer, receiver: Receiver, moto: MotoS3) -> None:
    t = with_callback(server, receiver.url)
    c = sdk(server, t)
    app_id = t.app.app_id
    rule_id = make_rule(c, app_id, moto.make_bucket())
    mix = c.create_mix_job(
        CreateMixJobRequest(
            app_id=app_id,
            body=MixJobReq(
                mix_param=MixParam(
                    room_id=12345, encode_template="480*360_15_320", layout_template="nine_grids_view"
                ),
                record_param=RecordParam(record_rule_id=rule_id),
            ),
        )
    )
    assert mix.state == "INIT" and mix.room_id == "12345"
    with pytest.raises(ClientRequestException) as ei:
        c.update_mix_job(
            UpdateMixJobRequest(
                app_id=app_id,
                job_id=mix.job_id,
                body=UpdateMixJobReq(mix_param=UpdateMixParam(layout_template="nine_grids_view")),
            )
        )
    assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001022")
    with pytest.raises(ClientRequestException) as ei:  # a second mix of the room
        c.create_mix_job(
            CreateMixJobRequest(
                app_id=app_id,
                body=MixJobReq(
                    mix_param=MixParam(room_id="12345", encode_template="audio_only"),
                    record_param=RecordParam(record_rule_id=rule_id),
                ),
            )
        )
    assert ei.value.error_code == "RTC.00001006"
    assert c.stop_mix_job(StopMixJobRequest(app_id=app_id, job_id=mix.job_id)).status_code == 204
    shown = c.show_mix_job(ShowMixJobRequest(app_id=app_id, job_id=mix.job_id))
    assert shown.state == "STOPPED" and shown.stop_reason == "stopped"


async def test_auto_record(server: LiveServer, moto: MotoS3, receiver: Receiver) -> None:
    t = await asyncio.to_thread(with_callback, server, receiver.url)
    c = sdk(server, t)
    app_id = t.app.app_id
    bucket = moto.make_bucket()
    rule_id = await asyncio.to_thread(make_rule, c, app_id, bucket)
    for body, code in [
        (AutoRecordModeReq(mode="AUTO_INDIVIDUAL_RECORD"), "RTC.00001004"),
        (AutoRecordModeReq(mode="AUTO_INDIVIDUAL_RECORD", record_rule_id="0" * 32), "RTC.00001011"),
        (AutoRecordModeReq(mode="SOMETIMES"), "RTC.00001003"),
    ]:
        with pytest.raises(ClientRequestException) as ei:
            await call(c.update_auto_record, UpdateAutoRecordRequest(app_id=app_id, body=body))
        assert ei.value.error_code == code
    shown = await call(c.show_auto_record, ShowAutoRecordRequest(app_id=app_id))
    assert shown.auto_record_mode.mode == "AUTO_RECORD_OFF"
    on = await call(
        c.update_auto_record,
        UpdateAutoRecordRequest(
            app_id=app_id, body=AutoRecordModeReq(mode="AUTO_INDIVIDUAL_RECORD", record_rule_id=rule_id)
        ),
    )
    assert (
        on.auto_record_mode.mode == "AUTO_INDIVIDUAL_RECORD" and on.auto_record_mode.record_rule_id == rule_id
    )
    with pytest.raises(ClientRequestException) as ei:  # the switch uses the rule
        await call(c.delete_record_rule, DeleteRecordRuleRequest(app_id=app_id, rule_id=rule_id))
    assert ei.value.error_code == "RTC.00001013"

    async def jobs_in(rt: Runtime, room: str) -> list[Any]:
        return await TaskService(rt.db.sessions, rt.box).active_in_room(t.app.sdk_app_id, room)

    async with publishers(server, t, ["u1", "u2"], room="auto1"):
        for _ in range(100):
            found = await asyncio.to_thread(server.run, lambda rt: jobs_in(rt, "auto1"))
            if len(found) >= 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)
        found = await asyncio.to_thread(server.run, lambda rt: jobs_in(rt, "auto1"))
        assert sorted(j.request["stream_name"] for j in found) == [
            f"{app_id}_auto1_u1_av_m",
            f"{app_id}_auto1_u2_av_m",
        ]
        for j in found:
            job = await call(
                c.show_individual_stream_job, ShowIndividualStreamJobRequest(app_id=app_id, job_id=j.task_id)
            )
            assert job.stream_name == j.request["stream_name"] and job.state in ("INIT", "RUNNING")
            await call(
                c.stop_individual_stream_job, StopIndividualStreamJobRequest(app_id=app_id, job_id=j.task_id)
            )
    off = await call(
        c.update_auto_record,
        UpdateAutoRecordRequest(app_id=app_id, body=AutoRecordModeReq(mode="AUTO_RECORD_OFF")),
    )
    assert off.auto_record_mode.mode == "AUTO_RECORD_OFF"
    async with publishers(server, t, ["u3"], room="auto2"):
        await asyncio.sleep(1.5)
        assert await asyncio.to_thread(server.run, lambda rt: jobs_in(rt, "auto2")) == []
    # A room opened before the switch is not recorded automatically.
    async with publishers(server, t, ["u4"], room="auto3"):
        await call(
            c.update_auto_record,
            UpdateAutoRecordRequest(
                app_id=app_id, body=AutoRecordModeReq(mode="AUTO_INDIVIDUAL_RECORD", record_rule_id=rule_id)
            ),
        )
        async with publishers(server, t, ["u5"], room="auto3"):
            await asyncio.sleep(1.5)
            assert await asyncio.to_thread(server.run, lambda rt: jobs_in(rt, "auto3")) == []

    # Across a restart (the room's earlier session closed server_shutdown, its clients came back):
    # a room created before the switch stays unrecorded, one created after it is recorded.
    switched = (await call(c.show_auto_record, ShowAutoRecordRequest(app_id=app_id))).auto_record_mode
    switched_at = datetime.strptime(switched.update_time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    async def restarted(rt: Runtime, room: str, opened: datetime) -> None:
        async with rt.db.sessions.begin() as s:
            s.add(
                RoomSessionRow(
                    app_key=str(t.app.sdk_app_id),
                    room_id=room,
                    opened_at=opened,
                    closed_at=datetime.now(UTC),
                    close_reason="server_shutdown",
                    node_id="gone",
                )
            )

    await asyncio.to_thread(server.run, lambda rt: restarted(rt, "auto4", switched_at - timedelta(minutes=1)))
    await asyncio.to_thread(server.run, lambda rt: restarted(rt, "auto5", switched_at + timedelta(seconds=1)))
    async with publishers(server, t, ["u6"], room="auto4"), publishers(server, t, ["u7"], room="auto5"):
        for _ in range(100):
            resumed = await asyncio.to_thread(server.run, lambda rt: jobs_in(rt, "auto5"))
            if resumed:
                break
            await asyncio.sleep(0.1)
        assert [j.request["stream_name"] for j in resumed] == [f"{app_id}_auto5_u7_av_m"]
        assert await asyncio.to_thread(server.run, lambda rt: jobs_in(rt, "auto4")) == []
        for j in resumed:
            await call(
                c.stop_individual_stream_job, StopIndividualStreamJobRequest(app_id=app_id, job_id=j.task_id)
            )
    for _ in range(150):
        keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
        if sum(k.endswith(".mp4") for k in keys) >= 2:
            break
        await asyncio.sleep(0.2)
    for user in ("u1", "u2"):
        assert any(k.endswith(".mp4") and f"{app_id}_auto1_{user}_av_m" in k for k in keys), keys


def test_a_bad_rtmp_url_is_refused_clearly(server: LiveServer, receiver: Receiver, moto: MotoS3) -> None:
    """A publish_param.rtmp_urls entry that is not an rtmp:// or rtmps:// URL (no SDK model has the
    field: sent as JSON) answers RTC.00001003 naming the field, and no job starts (pushing itself:
    tests/e2e/test_sparkrtc_relay.py)."""
    t = with_callback(server, receiver.url)
    c = sdk(server, t)
    app_id = t.app.app_id
    rule_id = make_rule(c, app_id, moto.make_bucket())
    push = {"rtmp_urls": ["http://live.example.com/app/stream"]}
    record = {"record_rule_id": rule_id}
    mix = {"room_id": "rtmp1", "encode_template": "640x480_15_500", "layout_template": "nine_grids_view"}
    single = {"room_id": "rtmp1", "user_id": "u1"}
    for call_, req in [
        (
            c.create_mix_job,
            CreateMixJobRequest(app_id=app_id, body={"mix_param": mix, "publish_param": push}),
        ),
        (
            c.create_individual_stream_job,
            CreateIndividualStreamJobRequest(
                app_id=app_id, body={**single, "publish_param": push, "record_param": record}
            ),
        ),
    ]:
        with pytest.raises(ClientRequestException) as ei:
            call_(req)
        assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001003")
        assert "rtmp_urls" in ei.value.error_msg, ei.value.error_msg
    assert asyncio.run(_no_jobs(server, t.app.sdk_app_id, "rtmp1"))
    job = c.create_individual_stream_job(
        CreateIndividualStreamJobRequest(app_id=app_id, body={**single, "record_param": record})
    )
    try:
        with pytest.raises(ClientRequestException) as ei:  # A23 with a push target
            c.update_individual_stream_job(
                UpdateIndividualStreamJobRequest(
                    app_id=app_id, job_id=job.job_id, body={"publish_param": push}
                )
            )
        assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001003")
    finally:
        c.stop_individual_stream_job(StopIndividualStreamJobRequest(app_id=app_id, job_id=job.job_id))


async def _no_jobs(server: LiveServer, sdk_app_id: int, room: str) -> bool:
    found = await asyncio.to_thread(
        server.run, lambda rt: TaskService(rt.db.sessions, rt.box).active_in_room(sdk_app_id, room)
    )
    return found == []
