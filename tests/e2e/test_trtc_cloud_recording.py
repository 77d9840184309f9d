"""TRTC cloud recording end to end with the official SDK: a live room recorded mixed (to the media
library) and per user (to an S3 server on loopback), modified live, stopped, checked file by file,
with every callback received, signed and de-duplicated; then the documented errors and a restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.media.testpattern import SyntheticParticipant
from roomcast.rtc.client import RoomClient
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.services.join_tokens import issue_usersig
from roomcast.services.tasks import TaskService
from tests.api.conftest import Tenant, make_tenant
from tests.support import avcheck
from tests.support.live import LiveServer, live_server, serve_process
from tests.support.receiver import Receiver
from tests.support.s3 import MotoS3

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOM = "8888"
CALLBACK_KEY = "callback-signing-key"


def settings(moto: MotoS3) -> dict[str, Any]:
    return {
        "ice_host_addresses": ["127.0.0.1"],
        "s3_endpoint": moto.endpoint,
        "empty_room_grace_s": 5.0,
        "library_janitor_interval_s": 0.5,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: MotoS3) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("rec")) / "var", **settings(moto)) as srv:
        yield srv


def sdk(server: LiveServer, t: Tenant) -> trtc_client.TrtcClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))
    return trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-guangzhou", prof
    )


def with_callback(server: LiveServer, url: str) -> Tenant:
    t = make_tenant(server)

    async def set_cb(rt: Runtime) -> None:
        await rt.tenancy.set_callback(t.app.app_id, url, CALLBACK_KEY)

    server.run(set_cb)
    return make_tenant_refresh(server, t)


def make_tenant_refresh(server: LiveServer, t: Tenant) -> Tenant:
    async def get(rt: Runtime) -> Tenant:
        return Tenant(t.creds, await rt.tenancy.get_app(t.app.app_id))

    return server.run(get)


@asynccontextmanager
async def publishers(
    server: LiveServer, t: Tenant, users: list[str], room: str = ROOM
) -> AsyncIterator[None]:
    clients: list[RoomClient] = []
    people: list[SyntheticParticipant] = []
    try:
        for uid in users:
            person = SyntheticParticipant(uid, width=320, height=180, fps=15)
            people.append(person)
            c = RoomClient(
                server.url,
                app_id=str(t.app.sdk_app_id),
                room_id=room,
                user_id=uid,
                token=issue_usersig(t.app, uid),
            )
            await c.connect()
            await c.publish({TrackKind.CAMERA: person.video, TrackKind.AUDIO: person.audio})
            clients.append(c)
        if server.app is None:  # a server in another process: the publish answers must do
            await asyncio.sleep(0.5)
        else:
            sfu = server.app.state.sfu
            for _ in range(150):
                if len(sfu.list_tracks(str(t.app.sdk_app_id), room)) >= 2 * len(users):
                    break
                await asyncio.sleep(0.1)
        yield
    finally:
        for c in clients:
            await c.close()
        for p in people:
            p.stop()


def call(fn: Any, req: Any) -> Any:
    return asyncio.to_thread(fn, req)


def req(cls: type, body: dict[str, Any]) -> Any:
    r = cls()
    r.from_json_string(json.dumps(body))
    return r


def mixed_body(t: Tenant, user: str = "rec-mix") -> dict[str, Any]:
    return {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": ROOM,
        "UserId": user,
        "UserSig": issue_usersig(t.app, user),
        "RecordParams": {"RecordMode": 2, "MaxIdleTime": 30},
        "StorageParams": {"CloudVod": {"TencentVod": {"MediaType": 0}}},
        "MixTranscodeParams": {
            "VideoParams": {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 600000, "Gop": 2}
        },
        "MixLayoutParams": {"MixLayoutMode": 3},
    }


def single_body(t: Tenant, bucket: str, user: str = "rec-single", output_format: int = 3) -> dict[str, Any]:
    return {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": ROOM,
        "UserId": user,
        "UserSig": issue_usersig(t.app, user),
        "RecordParams": {"RecordMode": 1, "MaxIdleTime": 30, "OutputFormat": output_format, "AvMerge": 1},
        "StorageParams": {
            "CloudStorage": {
                "Vendor": 0,
                "Region": "ap-guangzhou",
                "Bucket": bucket,
                "AccessKey": "AKtest",
                "SecretKey": "SKtest",
                "FileNamePrefix": ["rec", "day1"],
            }
        },
    }


async def wait_exited(
    client: trtc_client.TrtcClient, sdk_app_id: int, task_id: str, limit: float = 60
) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        try:
            await call(
                client.DescribeCloudRecording,
                req(models.DescribeCloudRecordingRequest, {"SdkAppId": sdk_app_id, "TaskId": task_id}),
            )
        except TencentCloudSDKException as e:
            assert e.get_code() == "ResourceNotFound"
            return
        assert asyncio.get_running_loop().time() < deadline, "the task did not end"
        await asyncio.sleep(0.3)


async def test_record_mixed_and_per_user(
    server: LiveServer, moto: MotoS3, receiver: Receiver, tmp_path: Path
) -> None:
    t = await asyncio.to_thread(with_callback, server, receiver.url)
    client = sdk(server, t)
    bucket = moto.make_bucket()
    receiver.fail_next = 2  # the receiver is down at first: callbacks must be retried
    async with publishers(server, t, ["u1", "u2"]):
        loop = asyncio.get_running_loop()
        created_at = loop.time()
        mixed = await call(
            client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, mixed_body(t))
        )
        single = await call(
            client.CreateCloudRecording,
            req(models.CreateCloudRecordingRequest, single_body(t, bucket, output_format=1)),  # HLS + MP4
        )
        assert mixed.TaskId and single.TaskId and mixed.TaskId != single.TaskId
        await asyncio.sleep(2.5)

        d = await call(
            client.DescribeCloudRecording,
            req(
                models.DescribeCloudRecordingRequest, {"SdkAppId": t.app.sdk_app_id, "TaskId": single.TaskId}
            ),
        )
        assert d.Status == "InProgress" and d.TaskId == single.TaskId
        assert {f.UserId for f in d.StorageFileList} == {"u1", "u2"}
        assert all(f.TrackType == "audio_video" for f in d.StorageFileList)
        assert {f.FileName.rsplit(".", 1)[1] for f in d.StorageFileList} == {"mp4", "m3u8"}
        assert all(f.BeginTimeStamp > 1_700_000_000_000 for f in d.StorageFileList)  # milliseconds
        dm = await call(
            client.DescribeCloudRecording,
            req(models.DescribeCloudRecordingRequest, {"SdkAppId": t.app.sdk_app_id, "TaskId": mixed.TaskId}),
        )
        assert dm.Status == "InProgress" and dm.StorageFileList == []  # library files appear once stored

        # Live changes: the mix switches to floating with u2 large; the per-user task drops u2.
        await call(
            client.ModifyCloudRecording,
            req(
                models.ModifyCloudRecordingRequest,
                {
                    "SdkAppId": t.app.sdk_app_id,
                    "TaskId": mixed.TaskId,
                    "MixLayoutParams": {"MixLayoutMode": 1, "MaxResolutionUserId": "u2"},
                },
            ),
        )
        await call(
            client.ModifyCloudRecording,
            req(
                models.ModifyCloudRecordingRequest,
                {
                    "SdkAppId": t.app.sdk_app_id,
                    "TaskId": single.TaskId,
                    "SubscribeStreamUserIds": {
                        "SubscribeAudioUserIds": ["u1"],
                        "SubscribeVideoUserIds": ["u1"],
                    },
                },
            ),
        )
        await asyncio.sleep(2.5)
        recorded_for = 0.0
        for task_id in (mixed.TaskId, single.TaskId):
            out = await call(
                client.DeleteCloudRecording,
                req(models.DeleteCloudRecordingRequest, {"SdkAppId": t.app.sdk_app_id, "TaskId": task_id}),
            )
            assert out.TaskId == task_id
            if task_id == mixed.TaskId:  # the mix ran at most from its Create to its Delete's answer
                recorded_for = loop.time() - created_at
    await wait_exited(client, t.app.sdk_app_id, mixed.TaskId)
    await wait_exited(client, t.app.sdk_app_id, single.TaskId)

    # The mixed file is in the media library and plays over HTTP.
    async def files(rt: Runtime, task_id: str) -> Any:
        return await TaskService(rt.db.sessions, rt.box).files(task_id)

    mixed_files = await asyncio.to_thread(server.run, lambda rt: files(rt, mixed.TaskId))
    assert len(mixed_files) == 1 and mixed_files[0].state == "stored"
    key = mixed_files[0].key
    async with httpx.AsyncClient() as http:
        got = await http.get(f"{server.url}/media/{key}")
    assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
    mp4 = tmp_path / "mix.mp4"
    mp4.write_bytes(got.content)
    info = avcheck.probe(mp4)
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 640, 360)
    assert info.audio.codec == "aac"
    # At least the test's own sleeps; at most the time between the mix's Create and Delete.
    assert info.video.duration is not None and 4.0 <= info.video.duration <= recorded_for + 0.5
    # Grid first: two panes side by side; floating later: u2 fills the canvas.
    left, right = (0, 60, 320, 240), (320, 60, 320, 240)
    assert avcheck.region_users(mp4, [left, right], ["u1", "u2"], at=1.0) == ["u1", "u2"]
    late = info.video.duration - 0.8
    assert avcheck.region_users(mp4, [(200, 20, 240, 120)], ["u1", "u2"], at=late) == ["u2"]

    # The per-user files are in the bucket under prefix/TaskId/, one per user, each playable.
    s3 = moto.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys and all(k.startswith(f"rec/day1/{single.TaskId}/") for k in keys), keys
    by_user: dict[str, list[str]] = {}
    for k in keys:
        user = k.split("__UserId_s_")[1].split("__UserId_e_")[0]
        by_user.setdefault(user, []).append(k)
    assert set(by_user) == {"u1", "u2"}
    for user_keys in by_user.values():  # HLS: a finished playlist whose every segment is stored
        (playlist,) = [k for k in user_keys if k.endswith(".m3u8")]
        text = s3.get_object(Bucket=bucket, Key=playlist)["Body"].read().decode()
        assert "#EXT-X-ENDLIST" in text
        folder = playlist.rsplit("/", 1)[0]
        segments = [line for line in text.splitlines() if line.endswith(".ts")]
        assert segments and all(f"{folder}/{seg}" in keys for seg in segments)
    for user, user_keys in by_user.items():
        path = tmp_path / f"{user}.mp4"
        (mp4_key,) = [k for k in user_keys if k.endswith(".mp4")]
        s3.download_file(bucket, mp4_key, str(path))
        pinfo = avcheck.probe(path)
        assert pinfo.video is not None and pinfo.audio is not None
        assert (pinfo.video.codec, pinfo.video.width, pinfo.video.height) == ("h264", 320, 180)
        assert avcheck.region_users(path, [(0, 60, 320, 60)], ["u1", "u2"], at=0.5) == [user]
    u2_duration = avcheck.probe(tmp_path / "u2.mp4").video.duration  # type: ignore[union-attr]
    u1_duration = avcheck.probe(tmp_path / "u1.mp4").video.duration  # type: ignore[union-attr]
    assert u2_duration is not None and u1_duration is not None and u2_duration < u1_duration - 1.5

    # Callbacks: every event arrived (despite the failed first deliveries), signed, once per id.
    async def delivered() -> bool:
        types = {b["EventType"] for b in receiver.bodies() if b["EventInfo"]["TaskId"] == single.TaskId}
        return {301, 302, 303, 304, 305, 307} <= types

    for _ in range(100):
        if await delivered():
            break
        await asyncio.sleep(0.2)
    mine = [
        r
        for r in receiver.requests
        if json.loads(r.body)["EventInfo"]["TaskId"] in (mixed.TaskId, single.TaskId)
    ]
    for r in mine:
        expected = base64.b64encode(hmac.new(CALLBACK_KEY.encode(), r.body, hashlib.sha256).digest()).decode()
        assert r.headers["Sign"] == expected and r.headers["SdkAppId"] == str(t.app.sdk_app_id)
    unique = {json.loads(r.body)["EventInfo"]["EventId"]: json.loads(r.body) for r in mine}
    single_types = sorted(
        b["EventType"] for b in unique.values() if b["EventInfo"]["TaskId"] == single.TaskId
    )
    mixed_types = sorted(b["EventType"] for b in unique.values() if b["EventInfo"]["TaskId"] == mixed.TaskId)
    assert {301, 302, 303, 304, 305, 307} <= set(single_types)
    # Per user: the playlist reported once (304, 307); no undocumented per-file event (310).
    assert single_types.count(301) == 1 and 310 not in single_types and 306 not in single_types
    assert single_types.count(304) == 2 and single_types.count(307) == 2
    assert single_types.count(305) == 1
    upload_stop = next(
        b for b in unique.values() if b["EventType"] == 305 and b["EventInfo"]["TaskId"] == single.TaskId
    )
    assert upload_stop["EventInfo"]["Payload"]["Status"] == 0
    assert {301, 302, 311, 312} <= set(mixed_types)
    commit = next(b for b in unique.values() if b["EventType"] == 311)
    assert commit["EventInfo"]["Payload"]["VideoUrl"].endswith(key)
    stop = next(
        b for b in unique.values() if b["EventType"] == 302 and b["EventInfo"]["TaskId"] == single.TaskId
    )
    assert stop["EventInfo"]["Payload"]["LeaveCode"] == 0


async def test_documented_errors(server: LiveServer, moto: MotoS3) -> None:
    t = await asyncio.to_thread(make_tenant, server, "errs")
    other = await asyncio.to_thread(make_tenant, server, "other")
    client = sdk(server, t)

    async def expect(fn: Any, body: dict[str, Any], cls: type, code: str) -> None:
        with pytest.raises(TencentCloudSDKException) as ei:
            await call(fn, req(cls, body))
        assert ei.value.get_code() == code, ei.value

    create = models.CreateCloudRecordingRequest
    await expect(
        client.CreateCloudRecording,
        {**mixed_body(t), "SdkAppId": other.app.sdk_app_id},
        create,
        "UnauthorizedOperation.SdkAppId",
    )
    await expect(
        client.DescribeCloudRecording,
        {"SdkAppId": t.app.sdk_app_id, "TaskId": "no-such-task"},
        models.DescribeCloudRecordingRequest,
        "ResourceNotFound",
    )
    await expect(
        client.DeleteCloudRecording,
        {"SdkAppId": t.app.sdk_app_id, "TaskId": "no-such-task"},
        models.DeleteCloudRecordingRequest,
        "ResourceNotFound",
    )
    bad_layout = {**mixed_body(t), "MixLayoutParams": {"MixLayoutMode": 9}}
    await expect(client.CreateCloudRecording, bad_layout, create, "InvalidParameter.OutOfRange")
    bad_size = {
        **mixed_body(t),
        "MixTranscodeParams": {
            "VideoParams": {"Width": 4000, "Height": 360, "Fps": 15, "BitRate": 600000, "Gop": 2}
        },
    }
    await expect(client.CreateCloudRecording, bad_size, create, "InvalidParameter.OutOfRange")
    await expect(
        client.CreateCloudRecording,
        {**mixed_body(t), "UserSig": "forged"},
        create,
        "InvalidParameter.UserSig",
    )
    no_storage = {k: v for k, v in mixed_body(t).items() if k != "StorageParams"}
    await expect(client.CreateCloudRecording, no_storage, create, "MissingParameter.StorageParams")
    async with publishers(server, t, ["u1"]):
        # The recorder's UserId must not be someone already in the room.
        await expect(client.CreateCloudRecording, mixed_body(t, user="u1"), create, "InvalidParameter.UserId")
        ok = await call(client.CreateCloudRecording, req(create, mixed_body(t)))
        await expect(
            client.CreateCloudRecording, mixed_body(t), create, "InvalidParameter.UserId"
        )  # same robot
        await expect(
            client.DescribeCloudRecording,
            {"SdkAppId": other.app.sdk_app_id, "TaskId": ok.TaskId},
            models.DescribeCloudRecordingRequest,
            "UnauthorizedOperation.SdkAppId",
        )
        other_client = sdk(server, other)
        await expect(
            other_client.DescribeCloudRecording,
            {"SdkAppId": other.app.sdk_app_id, "TaskId": ok.TaskId},
            models.DescribeCloudRecordingRequest,
            "ResourceNotFound",
        )
        await call(
            client.DeleteCloudRecording,
            req(models.DeleteCloudRecordingRequest, {"SdkAppId": t.app.sdk_app_id, "TaskId": ok.TaskId}),
        )
    await wait_exited(client, t.app.sdk_app_id, ok.TaskId)


async def test_idle_timeout_ends_the_task(server: LiveServer) -> None:
    t = await asyncio.to_thread(make_tenant, server, "idle")
    client = sdk(server, t)
    body = {**mixed_body(t), "RecordParams": {"RecordMode": 2, "MaxIdleTime": 5}}
    async with publishers(server, t, ["u1"]):
        created = await call(client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, body))
        await asyncio.sleep(1.5)
    # The publisher left: the task ends by itself after MaxIdleTime (5 s).
    await wait_exited(client, t.app.sdk_app_id, created.TaskId, limit=30)

    async def reason(rt: Runtime) -> str | None:
        return (await TaskService(rt.db.sessions, rt.box).get(t.app.sdk_app_id, created.TaskId)).reason

    assert await asyncio.to_thread(server.run, reason) == "idle"


async def test_restart_resumes_and_loses_nothing(tmp_path: Path, moto: MotoS3) -> None:
    data = tmp_path / "var"
    bucket = moto.make_bucket()
    cm = live_server(data, **settings(moto))
    first = cm.__enter__()
    try:
        t = await asyncio.to_thread(make_tenant, first)
        client = sdk(first, t)
        async with publishers(first, t, ["u1"]):
            created = await call(
                client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, single_body(t, bucket))
            )
            await asyncio.sleep(2.5)
    finally:
        await asyncio.to_thread(cm.__exit__, None, None, None)

    with live_server(data, **settings(moto)) as second:
        client = sdk(second, t)
        d = await call(
            client.DescribeCloudRecording,
            req(
                models.DescribeCloudRecordingRequest, {"SdkAppId": t.app.sdk_app_id, "TaskId": created.TaskId}
            ),
        )
        assert d.Status in ("Idle", "InProgress")  # resumed after the restart
        async with publishers(second, t, ["u1"]):
            await asyncio.sleep(2.5)
            await call(
                client.DeleteCloudRecording,
                req(
                    models.DeleteCloudRecordingRequest,
                    {"SdkAppId": t.app.sdk_app_id, "TaskId": created.TaskId},
                ),
            )
        await wait_exited(client, t.app.sdk_app_id, created.TaskId)
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    # One file from before the restart and one (new) file after it, both stored.
    assert len(keys) == 2, keys
    for i, k in enumerate(sorted(keys)):
        path = tmp_path / f"part{i}.mp4"
        moto.client().download_file(bucket, k, str(path))
        pinfo = avcheck.probe(path)
        assert pinfo.video is not None and pinfo.video.duration is not None and pinfo.video.duration > 1.0


async def test_control_window_closes_after_resource_expired_hour(server: LiveServer) -> None:
    """After ResourceExpiredHour the task can no longer be queried or stopped, yet it keeps recording."""
    from datetime import timedelta

    from sqlalchemy import update

    from roomcast.store.tables import TaskRow, utcnow

    t = await asyncio.to_thread(make_tenant, server, "expiring")
    client = sdk(server, t)
    body = {**mixed_body(t), "ResourceExpiredHour": 6}
    async with publishers(server, t, ["u1"]):
        created = await call(client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, body))

        async def expire(rt: Runtime) -> None:  # six hours later, as far as the task knows
            async with rt.db.sessions.begin() as s:
                await s.execute(
                    update(TaskRow)
                    .where(TaskRow.task_id == created.TaskId)
                    .values(control_expires_at=utcnow() - timedelta(seconds=1))
                )

        await asyncio.to_thread(server.run, expire)
        with pytest.raises(TencentCloudSDKException) as ei:
            await call(
                client.DescribeCloudRecording,
                req(
                    models.DescribeCloudRecordingRequest,
                    {"SdkAppId": t.app.sdk_app_id, "TaskId": created.TaskId},
                ),
            )
        assert ei.value.get_code() == "ResourceNotFound"
        with pytest.raises(TencentCloudSDKException):
            await call(
                client.DeleteCloudRecording,
                req(
                    models.DeleteCloudRecordingRequest,
                    {"SdkAppId": t.app.sdk_app_id, "TaskId": created.TaskId},
                ),
            )

        async def state(rt: Runtime) -> str:
            return (
                await TaskService(rt.db.sessions, rt.box).get(t.app.sdk_app_id, created.TaskId)
            ).state.value

        await asyncio.sleep(1.0)
        assert await asyncio.to_thread(server.run, state) in ("idle", "running")  # still recording


async def test_library_files_expire(server: LiveServer) -> None:
    """TencentVod.ExpireTime: media-library files are deleted once their time is up."""
    t = await asyncio.to_thread(make_tenant, server, "expire")
    client = sdk(server, t)
    body = {**mixed_body(t), "StorageParams": {"CloudVod": {"TencentVod": {"MediaType": 0, "ExpireTime": 4}}}}
    async with publishers(server, t, ["u1"]):
        created = await call(client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, body))
        await asyncio.sleep(2.0)
        await call(
            client.DeleteCloudRecording,
            req(models.DeleteCloudRecordingRequest, {"SdkAppId": t.app.sdk_app_id, "TaskId": created.TaskId}),
        )
    await wait_exited(client, t.app.sdk_app_id, created.TaskId)

    async def files(rt: Runtime) -> Any:
        return await TaskService(rt.db.sessions, rt.box).files(created.TaskId)

    (f,) = await asyncio.to_thread(server.run, files)
    assert f.expires_at is not None
    async with httpx.AsyncClient() as http:
        assert (await http.head(f"{server.url}/media/{f.key}")).status_code == 200
        for _ in range(40):
            await asyncio.sleep(0.25)
            if (await http.head(f"{server.url}/media/{f.key}")).status_code == 404:
                break
        else:
            raise AssertionError("the file did not expire")
    (f,) = await asyncio.to_thread(server.run, files)
    assert f.state == "expired"


async def test_dismissing_the_room_ends_its_recordings(server: LiveServer, receiver: Receiver) -> None:
    t = await asyncio.to_thread(with_callback, server, receiver.url)
    client = sdk(server, t)
    async with publishers(server, t, ["u1"]):
        created = await call(
            client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, mixed_body(t))
        )
        await asyncio.sleep(1.5)
        dismiss = models.DismissRoomRequest()
        dismiss.SdkAppId, dismiss.RoomId = t.app.sdk_app_id, int(ROOM)
        await call(client.DismissRoom, dismiss)
        await wait_exited(client, t.app.sdk_app_id, created.TaskId, limit=30)

    async def reason(rt: Runtime) -> str | None:
        return (await TaskService(rt.db.sessions, rt.box).get(t.app.sdk_app_id, created.TaskId)).reason

    assert await asyncio.to_thread(server.run, reason) == "room_dismissed"
    for _ in range(50):
        stops = [
            b
            for b in receiver.bodies()
            if b["EventInfo"]["TaskId"] == created.TaskId and b["EventType"] == 302
        ]
        if stops:
            break
        await asyncio.sleep(0.2)
    assert stops and stops[0]["EventInfo"]["Payload"]["LeaveCode"] == 2


def _serve(data: Path, port: int, moto: MotoS3) -> Any:
    return serve_process(
        data,
        port,
        ROOMCAST_ICE_HOST_ADDRESSES='["127.0.0.1"]',
        ROOMCAST_S3_ENDPOINT=moto.endpoint,
        ROOMCAST_ALLOW_PRIVATE_URLS="true",
    )


async def test_crash_leaves_nothing_behind(tmp_path: Path, moto: MotoS3) -> None:
    """SIGKILL mid-recording: at the next start the half-written file is finalized and uploaded."""
    import signal

    from roomcast.config import Settings
    from tests.support.live import free_port

    data = tmp_path / "var"
    bucket = moto.make_bucket()

    async def tenant() -> Tenant:
        rt = await Runtime.open(Settings(data_dir=data, allow_private_urls=True))
        try:
            creds = await rt.tenancy.create_account("crash")
            return Tenant(creds, await rt.tenancy.create_app(creds.account_id, "demo"))
        finally:
            await rt.close()

    t = await tenant()
    port = free_port()
    proc = await asyncio.to_thread(_serve, data, port, moto)
    try:
        srv = LiveServer(Settings(data_dir=data, port=port, allow_private_urls=True), None, port)  # type: ignore[arg-type]
        client = sdk(srv, t)
        body = single_body(t, bucket)
        body["RecordParams"]["MaxIdleTime"] = 5
        async with publishers(srv, t, ["u1"]):
            created = await call(client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, body))
            await asyncio.sleep(3.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not moto.client().list_objects_v2(Bucket=bucket).get("Contents")  # nothing uploaded yet

    proc = await asyncio.to_thread(_serve, data, port, moto)
    try:
        keys: list[str] = []
        for _ in range(100):
            keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
            if keys:
                break
            await asyncio.sleep(0.2)
        assert len(keys) == 1 and keys[0].startswith(f"rec/day1/{created.TaskId}/"), keys
        path = tmp_path / "crashed.mp4"
        moto.client().download_file(bucket, keys[0], str(path))
        info = avcheck.probe(path)
        assert info.video is not None and info.video.duration is not None and info.video.duration > 1.5
        assert avcheck.starts_with_keyframe(path)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
