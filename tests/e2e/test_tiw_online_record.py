"""TIW online recording end to end with the official tiw SDK: two synthetic publishers while a
Python client draws; pause and resume; stop, then Describe until FINISHED; the per-user, spliced,
whiteboard and mixed videos downloaded and probed; the signed result callback; the errors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
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
from tencentcloud.tiw.v20190919 import models, tiw_client

from roomcast.media.testpattern import SyntheticParticipant, user_colour
from roomcast.rtc.client import RoomClient
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.support import avcheck
from tests.support.live import LiveServer, live_server
from tests.support.receiver import Receiver
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, MotoS3

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROOM = 4321
KEY = "tiw-callback-key"
TEACHER, STUDENT = "teacher", "student7"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = Path(tmp_path_factory.mktemp("tiw")) / "var"
    with live_server(data, ice_host_addresses=["127.0.0.1"], empty_room_grace_s=5.0) as srv:
        yield srv


@pytest.fixture(scope="module")
def tenant(server: LiveServer, receiver: Receiver) -> Tenant:
    t = make_tenant(server, "tiw")

    async def set_cb(rt: Runtime) -> Tenant:
        await rt.tenancy.set_callback(t.app.app_id, receiver.url, KEY)
        return Tenant(t.creds, await rt.tenancy.get_app(t.app.app_id))

    return server.run(set_cb)


def sdk(server: LiveServer, t: Tenant) -> tiw_client.TiwClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))
    return tiw_client.TiwClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-singapore", prof
    )


def call(fn: Any, req: Any) -> Any:
    return asyncio.to_thread(fn, req)


def start_request(t: Tenant, room: int, **fields: Any) -> models.StartOnlineRecordRequest:
    robot = fields.pop("RecordUserId", f"tic_record_user_{room}_r1")
    req = models.StartOnlineRecordRequest()
    req.from_json_string(
        json.dumps(
            {
                "SdkAppId": t.app.sdk_app_id,
                "RoomId": room,
                "RecordUserId": robot,
                "RecordUserSig": fields.pop("RecordUserSig", None) or issue_usersig(t.app, robot),
                **fields,
            }
        )
    )
    return req


def task_request(cls: type[Any], t: Tenant, task_id: str) -> Any:
    req = cls()
    req.SdkAppId = t.app.sdk_app_id
    req.TaskId = task_id
    return req


@asynccontextmanager
async def class_room(server: LiveServer, t: Tenant, room: str) -> AsyncIterator[RoomClient]:
    """Two synthetic publishers and a drawing client (who does not publish)."""
    clients: list[RoomClient] = []
    people = [SyntheticParticipant(u, width=320, height=240, fps=15) for u in (TEACHER, STUDENT)]
    try:
        for person in people:
            c = RoomClient(
                server.url,
                app_id=str(t.app.sdk_app_id),
                room_id=room,
                user_id=person.user_id,
                token=issue_usersig(t.app, person.user_id),
            )
            await c.connect()
            await c.publish({TrackKind.CAMERA: person.video, TrackKind.AUDIO: person.audio})
            clients.append(c)
        sfu = server.app.state.sfu
        for _ in range(150):
            if len(sfu.list_tracks(str(t.app.sdk_app_id), room)) >= 4:
                break
            await asyncio.sleep(0.1)
        drawer = RoomClient(
            server.url,
            app_id=str(t.app.sdk_app_id),
            room_id=room,
            user_id="drawer",
            token=issue_usersig(t.app, "drawer"),
        )
        await drawer.connect()
        clients.append(drawer)
        await drawer.sync_board()
        yield drawer
    finally:
        for c in clients:
            await c.close()
        for p in people:
            p.stop()


async def finished(client: tiw_client.TiwClient, t: Tenant, task_id: str, limit_s: float = 120) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        resp = await call(
            client.DescribeOnlineRecord, task_request(models.DescribeOnlineRecordRequest, t, task_id)
        )
        if resp.Status == "FINISHED" or time.monotonic() > deadline:
            return resp
        await asyncio.sleep(0.5)


async def download(url: str, path: Path) -> Path:
    async with httpx.AsyncClient() as h:
        r = await h.get(url)
        assert r.status_code == 200, url
        await asyncio.to_thread(path.write_bytes, r.content)
    return path


def centre_colour(path: Path, at: float, region: avcheck.Region) -> tuple[int, int, int]:
    return avcheck.dominant_colour(avcheck.frame_at(path, at, skip_flash=False), region)


def close(c: tuple[int, int, int], want: tuple[int, int, int], tol: float = 60) -> bool:
    return avcheck.colour_distance(c, want) <= tol


async def test_class_recorded_with_pause_concat_and_mix(
    server: LiveServer, tenant: Tenant, receiver: Receiver, tmp_path: Path
) -> None:
    client = sdk(server, tenant)
    room = str(ROOM)
    async with class_room(server, tenant, room) as drawer:
        req = start_request(
            tenant,
            ROOM,
            Whiteboard={"Width": 640, "Height": 480, "InitParam": json.dumps({"ratio": "4:3"})},
            Concat={"Enabled": True},
            MixStream={"Enabled": True, "ModelId": 2, "TeacherId": TEACHER},
            Extras=["MIX_STREAM"],
        )
        task_id = (await call(client.StartOnlineRecord, req)).TaskId
        await asyncio.sleep(1.0)
        red = await drawer.draw(
            "rect", points=[[0.1, 0.1], [0.9, 0.9]], color="#ff0000", fill="#ff0000", width=2
        )
        await asyncio.sleep(1.5)
        await call(client.PauseOnlineRecord, task_request(models.PauseOnlineRecordRequest, tenant, task_id))
        paused = await call(
            client.DescribeOnlineRecord, task_request(models.DescribeOnlineRecordRequest, tenant, task_id)
        )
        assert paused.Status == "PAUSED"
        with pytest.raises(TencentCloudSDKException) as again:
            await call(
                client.PauseOnlineRecord, task_request(models.PauseOnlineRecordRequest, tenant, task_id)
            )
        assert again.value.code == "UnsupportedOperation.InvalidTaskStatus"
        await asyncio.sleep(1.5)
        await call(client.ResumeOnlineRecord, task_request(models.ResumeOnlineRecordRequest, tenant, task_id))
        await drawer.draw("clear")
        blue = await drawer.draw(
            "ellipse", points=[[0.1, 0.1], [0.9, 0.9]], color="#0000ff", fill="#0000ff", width=2
        )
        await asyncio.sleep(3.0)
        await call(client.StopOnlineRecord, task_request(models.StopOnlineRecordRequest, tenant, task_id))
        with pytest.raises(TencentCloudSDKException) as stopped:
            await call(client.StopOnlineRecord, task_request(models.StopOnlineRecordRequest, tenant, task_id))
        assert stopped.value.code == "UnsupportedOperation.TaskHasAlreadyStopped"
        await drawer.sync_board()
        red_t, blue_t = drawer.board.pages["1"].items[0]["t"], drawer.board.pages["1"].items[-1]["t"]
        assert red["seq"] < blue["seq"]

    resp = await finished(client, tenant, task_id)
    assert resp.Status == "FINISHED" and resp.FinishReason == "USER_CALL"
    assert resp.RoomId == ROOM and resp.GroupId == room and resp.RecordUserId == f"tic_record_user_{ROOM}_r1"
    assert resp.ExceptionCnt == 0
    assert len(resp.OmittedDurations) == 1
    om = resp.OmittedDurations[0]
    assert 1400 <= om.ResumeTime - om.PauseTime <= 30_000  # slept 1.5 s between the calls
    wall = (resp.RecordStopTime - resp.RecordStartTime) * 1000
    assert (
        abs(resp.TotalTime - (wall - (om.ResumeTime - om.PauseTime))) <= 2500
    )  # Start/Stop times are whole seconds
    by_type: dict[int, list[Any]] = {}
    for v in resp.VideoInfos:
        by_type.setdefault(v.VideoType, []).append(v)
        assert v.VideoFormat == "mp4" and v.VideoSize > 0 and v.VideoUrl.startswith("http")
    # Concat: one spliced video per user, across the pause.
    assert sorted(v.UserId for v in by_type[0]) == [STUDENT, TEACHER]
    for v in by_type[0]:
        assert abs(v.VideoDuration - resp.TotalTime) <= 1500, v
    (board,) = by_type[2]
    (mix,) = by_type[3]
    assert board.UserId == "" and (board.Width, board.Height) == (640, 480)
    assert mix.UserId == f"tic_mixstream_{ROOM}_2" and (mix.Width, mix.Height) == (1624, 1000)

    board_file = await download(board.VideoUrl, tmp_path / "board.mp4")
    info = avcheck.probe(board_file)
    assert info.video is not None and abs(info.video.duration * 1000 - resp.TotalTime) <= 1000

    def play_s(wall_ms: int) -> float:
        """Seconds into the videos of a wall-clock time, anchored on the pause (RecordStartTime
        is in whole seconds; the omitted duration has milliseconds)."""
        if wall_ms >= om.ResumeTime:
            return (om.VideoTime + wall_ms - om.ResumeTime) / 1000
        return (om.VideoTime - (om.PauseTime - wall_ms)) / 1000

    # The page (4:3) fills the 640x480 frame: its centre shows the shape of the moment.
    centre = (280, 200, 80, 80)
    assert close(centre_colour(board_file, max(0.0, play_s(red_t) - 1.2), centre), (255, 255, 255), 30)
    assert close(centre_colour(board_file, play_s(red_t) + 0.8, centre), (255, 0, 0))
    assert close(centre_colour(board_file, play_s(blue_t) + 0.8, centre), (0, 0, 255))

    mix_file = await download(mix.VideoUrl, tmp_path / "mix.mp4")
    at = play_s(blue_t) + 2.0  # the cameras are back (a keyframe after the resume)
    frame = avcheck.frame_at(mix_file, at, skip_flash=False)
    # ModelId 2: the board at (8, 8) 1280x960; cameras in a column at x=1296, teacher first.
    assert close(avcheck.dominant_colour(frame, (8 + 540, 8 + 380, 200, 200)), (0, 0, 255))
    slots = [(1296 + 60, 8 + 60, 200, 120), (1296 + 60, 256 + 60, 200, 120)]
    assert avcheck.region_users(frame, slots, [TEACHER, STUDENT]) == [TEACHER, STUDENT]
    mix_info = avcheck.probe(mix_file)
    assert mix_info.audio is not None and abs(mix_info.video.duration * 1000 - resp.TotalTime) <= 1000  # type: ignore[union-attr]

    for v in by_type[0]:
        spliced = await download(v.VideoUrl, tmp_path / f"{v.UserId}.mp4")
        c = avcheck.dominant_colour(avcheck.frame_at(spliced, 1.0), (100, 80, 120, 80))
        assert close(c, user_colour(v.UserId), 80)

    # The result callback, signed, once.
    for _ in range(50):
        if any(b"OnlineRecordFinished" in r.body for r in receiver.requests):
            break
        await asyncio.sleep(0.2)
    (got,) = [r for r in receiver.requests if b"OnlineRecordFinished" in r.body]
    want = base64.b64encode(hmac.new(KEY.encode(), got.body, hashlib.sha256).digest()).decode()
    assert got.headers["Sign"] == want
    body = got.json()
    assert body["TaskId"] == task_id and body["Payload"]["Status"] == "FINISHED"
    assert len(body["Payload"]["VideoInfos"]) == len(resp.VideoInfos)


async def test_documented_errors(server: LiveServer, tenant: Tenant) -> None:
    client = sdk(server, tenant)
    room = ROOM + 1

    async def code(fn: Any, req: Any) -> str:
        with pytest.raises(TencentCloudSDKException) as err:
            await call(fn, req)
        return str(err.value.code)

    start = client.StartOnlineRecord
    assert (
        await code(start, start_request(tenant, room, RecordUserId="robot"))
        == "InvalidParameter.RecordParameter"
    )
    assert await code(start, start_request(tenant, room, RecordUserSig="wrong")) == "AuthFailure"
    assert (
        await code(start, start_request(tenant, room, AutoStopTimeout=10))
        == "InvalidParameter.RecordParameter"
    )
    assert await code(start, start_request(tenant, room, Extras=["SPEED"])) == "InvalidParameter.InvalidExtra"
    no_extra = start_request(tenant, room, MixStream={"Enabled": True, "ModelId": 1})
    assert await code(start, no_extra) == "InvalidParameter.RecordParameter"
    bad_model = start_request(tenant, room, MixStream={"Enabled": True, "ModelId": 9}, Extras=["MIX_STREAM"])
    assert await code(start, bad_model) == "InvalidParameter.RecordParameter"
    bad_image = start_request(tenant, room, Concat={"Enabled": True, "Image": "file:///etc/passwd"})
    assert await code(start, bad_image) == "InvalidParameter.UrlFormatError"
    wrong_type = start_request(tenant, room)
    wrong_type.RoomId = "not a number"
    assert await code(start, wrong_type) == "InvalidParameter.BodyParameterTypeUnmatched"
    bad_app = start_request(tenant, room)
    bad_app.SdkAppId = "14x"
    assert await code(start, bad_app) == "InvalidParameter.SdkAppIdNotFound"
    describe = task_request(models.DescribeOnlineRecordRequest, tenant, "no-such-task")
    assert await code(client.DescribeOnlineRecord, describe) == "InvalidParameter.TaskNotFound"

    task_id = (await call(start, start_request(tenant, room))).TaskId
    assert await code(start, start_request(tenant, room)) == "ResourceInUse.RecordUserId"
    resume = task_request(models.ResumeOnlineRecordRequest, tenant, task_id)
    assert await code(client.ResumeOnlineRecord, resume) == "UnsupportedOperation.InvalidTaskStatus"
    resp = await call(
        client.DescribeOnlineRecord, task_request(models.DescribeOnlineRecordRequest, tenant, task_id)
    )
    assert resp.Status in ("PREPARED", "RECORDING") and resp.FinishReason == ""
    other = await asyncio.to_thread(make_tenant, server, "someone-else")
    stranger = task_request(models.StopOnlineRecordRequest, other, task_id)
    stranger.SdkAppId = tenant.app.sdk_app_id
    assert await code(sdk(server, other).StopOnlineRecord, stranger) == "UnauthorizedOperation.SdkAppId"
    await call(client.StopOnlineRecord, task_request(models.StopOnlineRecordRequest, tenant, task_id))
    resp = await finished(client, tenant, task_id, 60)
    assert resp.Status == "FINISHED" and resp.FinishReason == "USER_CALL"
    pause = task_request(models.PauseOnlineRecordRequest, tenant, task_id)
    assert await code(client.PauseOnlineRecord, pause) == "UnsupportedOperation.TaskHasAlreadyStopped"


async def test_record_control_audio_files_custom_layout_without_concat(
    server: LiveServer, tenant: Tenant, tmp_path: Path
) -> None:
    """RecordControl leaves the student out and the teacher's audio off; AudioFileNeeded adds
    MP3s; without Concat a pause splits the whiteboard and mixed videos; a custom layout."""
    client = sdk(server, tenant)
    room = ROOM + 2
    custom = {
        "Canvas": {"LayoutParams": {"Width": 640, "Height": 240}, "BackgroundColor": "#102030"},
        "InputStreamList": [
            {
                "InputStreamId": "tic_record_user",
                "LayoutParams": {"X": 0, "Y": 0, "Width": 320, "Height": 240},
            },
            {"InputStreamId": "", "LayoutParams": {"X": 320, "Y": 0, "Width": 320, "Height": 240}},
        ],
    }
    async with class_room(server, tenant, str(room)) as drawer:
        req = start_request(
            tenant,
            room,
            AudioFileNeeded=True,
            RecordControl={
                "Enabled": True,
                "StreamControls": [
                    {"StreamId": STUDENT, "DisableRecord": True},
                    {"StreamId": TEACHER, "DisableAudio": True},
                ],
            },
            MixStream={"Enabled": True, "Custom": custom, "DisableAudio": True},
            Extras=["MIX_STREAM"],
        )
        task_id = (await call(client.StartOnlineRecord, req)).TaskId
        await asyncio.sleep(1.0)
        await drawer.draw("rect", points=[[0, 0], [1, 1]], color="#00ff00", fill="#00ff00")
        await asyncio.sleep(1.0)
        await call(client.PauseOnlineRecord, task_request(models.PauseOnlineRecordRequest, tenant, task_id))
        await asyncio.sleep(1.0)
        await call(client.ResumeOnlineRecord, task_request(models.ResumeOnlineRecordRequest, tenant, task_id))
        await asyncio.sleep(3.0)
        await call(client.StopOnlineRecord, task_request(models.StopOnlineRecordRequest, tenant, task_id))
    resp = await finished(client, tenant, task_id)
    assert resp.Status == "FINISHED" and resp.OmittedDurations == []  # only reported with Concat
    kinds = sorted((v.VideoType, v.UserId) for v in resp.VideoInfos)
    users = {u for _, u in kinds if u and not u.startswith("tic_")}
    assert users == {TEACHER}  # the student's stream is not recorded
    assert [k for k in kinds if k[0] == 2] == [(2, ""), (2, "")]  # one board video per span
    assert [k for k in kinds if k[0] == 3] == [(3, f"tic_mixstream_{room}_0")] * 2
    assert all(v.VideoFormat == "mp4" for v in resp.VideoInfos if v.VideoType != 4)
    # The teacher's camera pieces: no audio (DisableAudio); MP3s (AudioFileNeeded) only for
    # streams whose audio is recorded, so none here.
    assert [v for v in resp.VideoInfos if v.VideoType == 4] == []
    for v in resp.VideoInfos:
        if v.VideoType == 0:
            path = await download(v.VideoUrl, tmp_path / f"{v.VideoId}.mp4")
            assert avcheck.probe(path).audio is None
        if v.VideoType == 3:
            path = await download(v.VideoUrl, tmp_path / f"{v.VideoId}.mp4")
            info = avcheck.probe(path)
            assert info.audio is None and (info.video.width, info.video.height) == (640, 240)  # type: ignore[union-attr]
    second_mix = max((v for v in resp.VideoInfos if v.VideoType == 3), key=lambda v: v.VideoPlayTime)
    path = await download(second_mix.VideoUrl, tmp_path / "mix2.mp4")
    # Near its end (the teacher's camera comes back with its first keyframe after the resume).
    frame = avcheck.frame_at(path, second_mix.VideoDuration / 1000 - 0.5, skip_flash=False)
    assert close(avcheck.dominant_colour(frame, (100, 80, 120, 80)), (0, 255, 0))  # the board, left
    assert avcheck.region_users(frame, [(420, 80, 120, 80)], [TEACHER]) == [TEACHER]


async def test_audio_files(server: LiveServer, tenant: Tenant) -> None:
    client = sdk(server, tenant)
    room = ROOM + 3
    async with class_room(server, tenant, str(room)):
        req = start_request(tenant, room, AudioFileNeeded=True)
        task_id = (await call(client.StartOnlineRecord, req)).TaskId
        await asyncio.sleep(2.5)
        await call(client.StopOnlineRecord, task_request(models.StopOnlineRecordRequest, tenant, task_id))
    resp = await finished(client, tenant, task_id)
    mp3 = sorted(v.UserId for v in resp.VideoInfos if v.VideoType == 4)
    assert mp3 == [STUDENT, TEACHER]
    assert all(v.VideoFormat == "mp3" and v.VideoSize > 0 for v in resp.VideoInfos if v.VideoType == 4)


async def test_recording_survives_a_restart(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """A server stops while recording; the next one on the same data resumes the task, and the
    whiteboard video holds what was drawn on both."""
    data = Path(tmp_path_factory.mktemp("tiw-restart")) / "var"
    room = ROOM + 4

    async def draw(srv: LiveServer, t: Tenant, user: str, colour: str, x: float) -> None:
        c = RoomClient(
            srv.url,
            app_id=str(t.app.sdk_app_id),
            room_id=str(room),
            user_id=user,
            token=issue_usersig(t.app, user),
        )
        async with c:
            await c.connect()
            await c.sync_board()
            await c.draw("rect", points=[[x, 0.2], [x + 0.3, 0.8]], color=colour, fill=colour)

    first = live_server(data, ice_host_addresses=["127.0.0.1"])
    srv = first.__enter__()
    try:
        t = await asyncio.to_thread(make_tenant, srv, "restart")
        task_id = (await call(sdk(srv, t).StartOnlineRecord, start_request(t, room))).TaskId
        await asyncio.sleep(0.5)
        await draw(srv, t, "one", "#ff0000", 0.1)
        await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(first.__exit__, None, None, None)
    with live_server(data, ice_host_addresses=["127.0.0.1"]) as again:
        client = sdk(again, t)
        describe = task_request(models.DescribeOnlineRecordRequest, t, task_id)
        for _ in range(100):
            if (await call(client.DescribeOnlineRecord, describe)).Status == "RECORDING":
                break
            await asyncio.sleep(0.2)
        assert (await call(client.DescribeOnlineRecord, describe)).Status == "RECORDING"
        await draw(again, t, "two", "#0000ff", 0.6)
        await asyncio.sleep(1.0)
        await call(client.StopOnlineRecord, task_request(models.StopOnlineRecordRequest, t, task_id))
        resp = await finished(client, t, task_id)
        assert resp.Status == "FINISHED" and resp.FinishReason == "USER_CALL"
        (board,) = [v for v in resp.VideoInfos if v.VideoType == 2]
        path = await download(board.VideoUrl, tmp_path / "board.mp4")
        last = avcheck.frame_at(path, board.VideoDuration / 1000 - 0.2, skip_flash=False)
        w, h = board.Width, board.Height
        assert close(avcheck.dominant_colour(last, (int(0.2 * w), h // 2 - 20, 40, 40)), (255, 0, 0))
        assert close(avcheck.dominant_colour(last, (int(0.7 * w), h // 2 - 20, 40, 40)), (0, 0, 255))


async def test_operator_s3_storage(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    moto: MotoS3,
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
) -> None:
    """With ``tiw_s3_bucket`` set, the videos go to that bucket and VideoUrl downloads from it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    bucket = await asyncio.to_thread(moto.make_bucket)
    room = ROOM + 5
    with live_server(
        Path(tmp_path_factory.mktemp("tiw-s3")) / "var",
        ice_host_addresses=["127.0.0.1"],
        s3_endpoint=moto.endpoint,
        tiw_s3_bucket=bucket,
        tiw_s3_region="ap-singapore",
        tiw_s3_prefix="classes",
    ) as srv:
        t = await asyncio.to_thread(make_tenant, srv, "s3")

        async def set_cb(rt: Runtime) -> None:
            await rt.tenancy.set_callback(t.app.app_id, receiver.url, KEY)

        await asyncio.to_thread(srv.run, set_cb)
        client = sdk(srv, t)
        c = RoomClient(
            srv.url,
            app_id=str(t.app.sdk_app_id),
            room_id=str(room),
            user_id="d",
            token=issue_usersig(t.app, "d"),
        )
        async with c:
            await c.connect()
            await c.sync_board()
            task_id = (await call(client.StartOnlineRecord, start_request(t, room))).TaskId
            await c.draw("rect", points=[[0, 0], [1, 1]], color="#ff00ff", fill="#ff00ff")
            await asyncio.sleep(1.5)
            await call(client.StopOnlineRecord, task_request(models.StopOnlineRecordRequest, t, task_id))
        resp = await finished(client, t, task_id)
        (board,) = [v for v in resp.VideoInfos if v.VideoType == 2]
        assert board.VideoUrl.startswith(moto.endpoint) and f"/{bucket}/classes/" in board.VideoUrl
        path = await download(board.VideoUrl, tmp_path / "board.mp4")
        frame = avcheck.frame_at(path, board.VideoDuration / 1000 - 0.3, skip_flash=False)
        assert close(avcheck.dominant_colour(frame), (255, 0, 255))
        keys = [
            o["Key"]
            for o in (await asyncio.to_thread(moto.client().list_objects_v2, Bucket=bucket))["Contents"]
        ]
        assert any(k.startswith(f"classes/{task_id}/whiteboard_") for k in keys), keys
        for _ in range(50):
            if any(task_id.encode() in r.body for r in receiver.requests):
                break
            await asyncio.sleep(0.2)
        (got,) = [r.json() for r in receiver.requests if task_id.encode() in r.body]
        assert got["EventType"] == "OnlineRecordFinished"
        urls = [v["VideoUrl"] for v in got["Payload"]["VideoInfos"]]
        assert urls and all(u.startswith(moto.endpoint) for u in urls)


async def test_screen_share_is_video_type_1(server: LiveServer, tenant: Tenant) -> None:
    client = sdk(server, tenant)
    room = ROOM + 6
    person = SyntheticParticipant("presenter", width=320, height=240, fps=15)
    c = RoomClient(
        server.url,
        app_id=str(tenant.app.sdk_app_id),
        room_id=str(room),
        user_id="presenter",
        token=issue_usersig(tenant.app, "presenter"),
    )
    try:
        await c.connect()
        screen = person.screen_track(width=320, height=240, fps=5)
        await c.publish(
            {TrackKind.CAMERA: person.video, TrackKind.SCREEN: screen, TrackKind.AUDIO: person.audio}
        )
        task_id = (await call(client.StartOnlineRecord, start_request(tenant, room))).TaskId
        await asyncio.sleep(3.5)
        await call(client.StopOnlineRecord, task_request(models.StopOnlineRecordRequest, tenant, task_id))
    finally:
        await c.close()
        person.stop()
    resp = await finished(client, tenant, task_id)
    kinds = sorted((v.VideoType, v.UserId) for v in resp.VideoInfos)
    assert kinds == [(0, "presenter"), (1, "tic_substream_presenter"), (2, "")]
