"""Tasks under faults, through the official TRTC SDK and real server processes: a missing bucket at
create, a store that fails for good mid-recording, Describe right after Delete, SIGTERM with the
store down, and two nodes on one PostgreSQL where one is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.trtc.v20190722 import models

from roomcast.config import Settings
from roomcast.runtime import Runtime
from roomcast.services.tasks import TaskService
from roomcast.store.tables import CallbackRow, NodeRow, TaskRow, UploadRow
from tests.api.conftest import Tenant, make_tenant
from tests.e2e.test_trtc_cloud_recording import (
    ROOM,
    call,
    publishers,
    req,
    sdk,
    single_body,
    wait_exited,
    with_callback,
)
from tests.support.live import LiveServer, free_port, live_server, serve_process
from tests.support.receiver import Receiver, callback_receiver
from tests.support.s3 import MotoS3

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: MotoS3) -> Iterator[LiveServer]:
    with live_server(
        Path(tmp_path_factory.mktemp("faults")) / "var",
        ice_host_addresses=["127.0.0.1"],
        s3_endpoint=moto.endpoint,
        empty_room_grace_s=5.0,
        allow_private_urls=True,
    ) as srv:
        yield srv


def _all_exist(paths: Iterable[str | None]) -> bool:
    return all(p is not None and os.path.exists(p) for p in paths)


def _create(t: Tenant, body: dict[str, Any]) -> Any:
    return req(models.CreateCloudRecordingRequest, {**body, "SdkAppId": t.app.sdk_app_id})


def _describe(t: Tenant, task_id: str) -> Any:
    return req(models.DescribeCloudRecordingRequest, {"SdkAppId": t.app.sdk_app_id, "TaskId": task_id})


def _delete(t: Tenant, task_id: str) -> Any:
    return req(models.DeleteCloudRecordingRequest, {"SdkAppId": t.app.sdk_app_id, "TaskId": task_id})


async def test_a_missing_bucket_is_refused_at_create(server: LiveServer, moto: MotoS3) -> None:
    t = await asyncio.to_thread(make_tenant, server, "nobucket")
    client = sdk(server, t)
    with pytest.raises(TencentCloudSDKException) as ei:
        await call(client.CreateCloudRecording, _create(t, single_body(t, "no-such-bucket-here")))
    assert ei.value.get_code() == "InvalidParameter.OutOfRange"
    assert "no-such-bucket-here" in ei.value.get_message()

    async def count(rt: Runtime) -> int:
        async with rt.db.sessions() as s:
            return len(
                (await s.execute(select(TaskRow.id).where(TaskRow.sdk_app_id == t.app.sdk_app_id))).all()
            )

    assert await asyncio.to_thread(server.run, count) == 0  # nothing was started


async def test_describe_after_delete_never_goes_back(server: LiveServer, moto: MotoS3) -> None:
    t = await asyncio.to_thread(make_tenant, server, "monotone")
    client = sdk(server, t)
    bucket = moto.make_bucket()
    async with publishers(server, t, ["u1"]):
        created = await call(client.CreateCloudRecording, _create(t, single_body(t, bucket)))
        await asyncio.sleep(1.5)
        await call(client.DeleteCloudRecording, _delete(t, created.TaskId))
        seen: list[str] = []
        for _ in range(200):
            try:
                d = await call(client.DescribeCloudRecording, _describe(t, created.TaskId))
                seen.append(d.Status)
            except TencentCloudSDKException as e:
                assert e.get_code() == "ResourceNotFound"
                seen.append("gone")
                break
            await asyncio.sleep(0.02)
    assert seen[-1] == "gone" and set(seen[:-1]) <= {"Exited"}, seen

    # What the task stored is roomcast's own spec (versioned, no vendor field) and its target.
    async def stored(rt: Runtime) -> Any:
        async with rt.db.sessions() as s:
            return (await s.execute(select(TaskRow).where(TaskRow.task_id == created.TaskId))).scalar_one()

    row = await asyncio.to_thread(server.run, stored)
    spec = json.loads(row.spec)
    assert spec["v"] == 1 and spec["mode"] == "individual" and "RecordParams" not in row.spec
    assert json.loads(row.target or "{}")["bucket"] == bucket and "SKtest" not in (row.target or "")
    assert "SKtest" not in (row.request or "") and "AKtest" not in (row.request or "")


async def test_a_store_failing_for_good_ends_the_task_and_says_so(
    server: LiveServer, moto: MotoS3, receiver: Receiver
) -> None:
    t = await asyncio.to_thread(with_callback, server, receiver.url)
    client = sdk(server, t)
    bucket = moto.make_bucket()
    body = single_body(t, bucket, output_format=1)  # HLS + MP4: segments upload while recording
    async with publishers(server, t, ["u1"]):
        created = await call(client.CreateCloudRecording, _create(t, body))
        moto.client().delete_bucket(Bucket=bucket)  # gone for good, mid-recording
        await wait_exited(client, t.app.sdk_app_id, created.TaskId, limit=60)

    async def task_and_files(rt: Runtime) -> Any:
        svc = TaskService(rt.db.sessions, rt.box)
        return await svc.get(t.app.sdk_app_id, created.TaskId), await svc.files(created.TaskId)

    task, files = await asyncio.to_thread(server.run, task_and_files)
    assert task.reason == "failed" and task.error is not None and "bucket" in task.error.lower()
    assert files and any(f.state == "failed" for f in files)
    failed = [f for f in files if f.state == "failed"]
    assert all(f.error for f in failed)
    assert _all_exist(f.local_path for f in failed)  # nothing is deleted
    for _ in range(100):
        mine = [b for b in receiver.bodies() if b["EventInfo"]["TaskId"] == created.TaskId]
        if {302, 305} <= {b["EventType"] for b in mine}:
            break
        await asyncio.sleep(0.2)
    stop = next(b for b in mine if b["EventType"] == 302)
    upload_stop = next(b for b in mine if b["EventType"] == 305)
    assert stop["EventInfo"]["Payload"]["LeaveCode"] == 3
    assert upload_stop["EventInfo"]["Payload"]["Status"] == 1
    assert 310 not in {b["EventType"] for b in mine} and 306 not in {b["EventType"] for b in mine}


async def test_a_store_down_too_long_keeps_the_file_in_the_media_library(
    tmp_path: Path, moto: MotoS3, receiver: Receiver
) -> None:
    """Transient errors past upload_max_attempts: the file goes to the backup store (the media
    library) and is reported with its URL there (TRTC 311 with VideoUrl and Errmsg)."""
    bucket = moto.make_bucket()
    with live_server(
        tmp_path / "var",
        ice_host_addresses=["127.0.0.1"],
        s3_endpoint=moto.endpoint,
        allow_private_urls=True,
        upload_max_attempts=2,
    ) as srv:
        t = await asyncio.to_thread(with_callback, srv, receiver.url)
        client = sdk(srv, t)
        try:
            async with publishers(srv, t, ["u1"]):
                created = await call(client.CreateCloudRecording, _create(t, single_body(t, bucket)))
                await asyncio.sleep(2.0)
                moto.stop()
                await call(client.DeleteCloudRecording, _delete(t, created.TaskId))
            await wait_exited(client, t.app.sdk_app_id, created.TaskId, limit=60)
        finally:
            if not moto.running:
                moto.start()

        async def files(rt: Runtime) -> Any:
            return await TaskService(rt.db.sessions, rt.box).files(created.TaskId)

        (f,) = await asyncio.to_thread(srv.run, files)
        assert f.state == "stored" and f.backup and f.url and f.error
        assert f.url.startswith(f"{srv.url}/media/backup/{created.TaskId}/")
        async with httpx.AsyncClient() as http:
            got = await http.get(f.url)
            native = await http.get(
                f"{srv.url}/api/v1/tasks/{created.TaskId}", auth=(t.creds.secret_id, t.creds.secret_key)
            )
        assert (
            got.status_code == 200 and got.headers["content-type"] == "video/mp4" and len(got.content) > 1000
        )
        (shown,) = native.json()["files"]  # the native API says where the file is, and why
        assert shown["backup"] is True and shown["url"] == f.url and shown["error"]
        for _ in range(100):
            mine = [b for b in receiver.bodies() if b["EventInfo"]["TaskId"] == created.TaskId]
            if {302, 305, 311} <= {b["EventType"] for b in mine}:
                break
            await asyncio.sleep(0.2)
        commit = next(b for b in mine if b["EventType"] == 311)["EventInfo"]["Payload"]
        assert commit["VideoUrl"] == f.url and commit["Errmsg"]
        # 305 Status 1: at least one file stayed on the server or in backup storage.
        assert next(b for b in mine if b["EventType"] == 305)["EventInfo"]["Payload"]["Status"] == 1


# -- real processes ---------------------------------------------------------------------------------


def _serve(data: Path, port: int, moto: MotoS3, **env: str) -> subprocess.Popen[bytes]:
    return serve_process(
        data,
        port,
        ROOMCAST_ICE_HOST_ADDRESSES='["127.0.0.1"]',
        ROOMCAST_S3_ENDPOINT=moto.endpoint,
        ROOMCAST_ALLOW_PRIVATE_URLS="true",
        **env,
    )


async def _tenant(settings: Settings, callback_url: str | None = None) -> Tenant:
    rt = await Runtime.open(settings)
    try:
        creds = await rt.tenancy.create_account("nodes")
        app = await rt.tenancy.create_app(creds.account_id, "demo")
        if callback_url:
            await rt.tenancy.set_callback(app.app_id, callback_url, "cb-key")
            app = await rt.tenancy.get_app(app.app_id)
        return Tenant(creds, app)
    finally:
        await rt.close()


async def _read(settings: Settings, fn: Any) -> Any:
    rt = await Runtime.open(settings)
    try:
        async with rt.db.sessions() as s:
            return await fn(s)
    finally:
        await rt.close()


async def test_sigterm_with_the_store_down_exits_in_time_and_loses_nothing(
    tmp_path: Path, moto: MotoS3
) -> None:
    data = tmp_path / "var"
    settings = Settings(data_dir=data)
    t = await _tenant(settings)
    bucket = moto.make_bucket()
    port = free_port()
    grace = 6.0
    proc = await asyncio.to_thread(_serve, data, port, moto, ROOMCAST_SHUTDOWN_GRACE_S=str(grace))
    srv = LiveServer(Settings(data_dir=data, port=port), None, port)  # type: ignore[arg-type]
    client = sdk(srv, t)
    try:
        body = single_body(t, bucket, output_format=1)
        body["RecordParams"]["MaxIdleTime"] = 5
        async with publishers(srv, t, ["u1"]):
            created = await call(client.CreateCloudRecording, _create(t, body))
            await asyncio.sleep(2.0)
            moto.stop()  # the store goes away: uploads now fail and retry
            await asyncio.sleep(2.0)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, grace + 10)
            took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        if not moto.running:
            moto.start()
    assert code == 0 and took <= grace + 2.5, took

    async def left(s: Any) -> Any:
        rows = (await s.execute(select(UploadRow.state, UploadRow.local_path))).all()
        task = (await s.execute(select(TaskRow.state).where(TaskRow.task_id == created.TaskId))).scalar_one()
        return rows, task

    rows, state = await _read(settings, left)
    pending = [r for r in rows if r.state in ("pending", "uploading")]
    assert pending and _all_exist(r.local_path for r in pending)  # durable, kept for later
    assert state in ("idle", "running")  # the task was suspended, not ended

    # The next start takes everything over: files reach the store, the task resumes and ends.
    proc = await asyncio.to_thread(_serve, data, port, moto)
    try:
        await wait_exited(client, t.app.sdk_app_id, created.TaskId, limit=60)
        rows, state = await _read(settings, left)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    assert state == "exited" and all(r.state == "done" for r in rows), rows
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.endswith(".mp4") for k in keys) and any(k.endswith(".m3u8") for k in keys)


async def test_two_nodes_on_one_postgresql_take_over_after_sigkill(
    tmp_path: Path, moto: MotoS3, pg_url: str
) -> None:
    bucket = moto.make_bucket(versioned=True)  # every PUT is a version: "uploaded once" is countable
    lease = 3.0
    env = {
        "ROOMCAST_DATABASE_URL": pg_url,
        "ROOMCAST_NODE_LEASE_S": str(lease),
        "ROOMCAST_UPLOAD_MAX_ATTEMPTS": "1000",
    }
    settings = Settings(data_dir=tmp_path / "a", database_url=pg_url, allow_private_urls=True)
    with callback_receiver() as rx:
        t = await _tenant(settings, rx.url)
        # Nodes of one service share the key that seals secrets in the database.
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "secret.key").write_bytes((tmp_path / "a" / "secret.key").read_bytes())
        port_a, port_b = free_port(), free_port()
        a = await asyncio.to_thread(_serve, tmp_path / "a", port_a, moto, **env)
        b = await asyncio.to_thread(_serve, tmp_path / "b", port_b, moto, **env)
        try:
            srv_a = LiveServer(Settings(data_dir=tmp_path / "a", port=port_a), None, port_a)  # type: ignore[arg-type]
            client_a = sdk(srv_a, t)
            async with publishers(srv_a, t, ["u1", "u2"], room=ROOM):
                created = await call(client_a.CreateCloudRecording, _create(t, single_body(t, bucket)))
                await asyncio.sleep(2.5)
                moto.stop()  # A's uploads cannot finish
                await call(client_a.DeleteCloudRecording, _delete(t, created.TaskId))

            async def owners(s: Any) -> Any:
                nodes = dict((await s.execute(select(NodeRow.pid, NodeRow.node_id))).all())
                task = (
                    await s.execute(select(TaskRow).where(TaskRow.task_id == created.TaskId))
                ).scalar_one()
                ups = (await s.execute(select(UploadRow).where(UploadRow.owner == created.TaskId))).scalars()
                return nodes, task.state, task.node_id, [(u.state, u.node_id) for u in ups]

            for _ in range(100):
                nodes, state, task_node, ups = await _read(settings, owners)
                if state == "stopping" and len(ups) == 2:
                    break
                await asyncio.sleep(0.1)
            node_a, node_b = nodes[a.pid], nodes[b.pid]
            assert task_node == node_a and ups and all(n == node_a and s != "done" for s, n in ups), ups
            await asyncio.sleep(2 * lease)  # B's reaper runs meanwhile: A's live work is not B's
            _, state, task_node, ups = await _read(settings, owners)
            assert state == "stopping" and task_node == node_a and all(n == node_a for _, n in ups)

            a.send_signal(signal.SIGKILL)
            await asyncio.to_thread(a.wait, 10)
            moto.start()
            started = time.monotonic()
            client_b = sdk(LiveServer(Settings(data_dir=tmp_path / "b", port=port_b), None, port_b), t)  # type: ignore[arg-type]
            await wait_exited(client_b, t.app.sdk_app_id, created.TaskId, limit=30)
            took = time.monotonic() - started
            _, state, task_node, ups = await _read(settings, owners)
            assert state == "exited" and task_node == node_b
            assert ups and all(s == "done" and n == node_b for s, n in ups), ups
            # (the pre-flight probe of CreateCloudRecording leaves a version behind in a versioned bucket)
            versions = {k: n for k, n in moto.versions(bucket).items() if ".roomcast-probe-" not in k}
            assert len(versions) == 2 and set(versions.values()) == {1}, versions  # each file once

            async def callbacks(s: Any) -> Any:
                rows = (
                    await s.execute(select(CallbackRow).where(CallbackRow.task_id == created.TaskId))
                ).scalars()
                return [(r.state, json.loads(r.body)) for r in rows]

            for _ in range(100):
                cbs = await _read(settings, callbacks)
                if (
                    cbs
                    and all(st == "delivered" for st, _ in cbs)
                    and {302, 305} <= {b["EventType"] for _, b in cbs}
                ):
                    break
                await asyncio.sleep(0.2)
            assert all(st == "delivered" for st, _ in cbs), cbs
            got = [
                json.loads(r.body)
                for r in rx.requests
                if json.loads(r.body)["EventInfo"]["TaskId"] == created.TaskId
            ]
            ids = [g["EventInfo"]["EventId"] for g in got]
            by_id = {g["EventInfo"]["EventId"]: g for g in got}
            types = sorted(g["EventType"] for g in by_id.values())
            assert types.count(302) == 1 and types.count(305) == 1 and types.count(301) == 1, types
            assert len(by_id) == len(cbs)  # what the receiver saw, once each after de-duplication
            assert len(ids) >= len(by_id)
        finally:
            for p in (a, b):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in (a, b):
                try:
                    await asyncio.to_thread(p.wait, 30)
                except subprocess.TimeoutExpired:
                    p.kill()
            if not moto.running:
                moto.start()
    print(f"take-over after SIGKILL: task finished {took:.1f} s after the store came back (lease {lease} s)")
