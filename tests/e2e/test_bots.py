"""Bots against a real roomcast server: media both ways, removal, dismissal, the CLI, bad tokens."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client
from typer.testing import CliRunner

from roomcast.bots import BotError, StopReason, parse_video, publish_bot, subscribe_bot
from roomcast.cli import cli
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer, free_port, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SMALL = (320, 180, 15)  # cheap to encode; the pattern is the same at any size


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = Path(tmp_path_factory.mktemp("bots")) / "var"
    with live_server(data, ice_host_addresses=["127.0.0.1"], empty_room_grace_s=0.5) as srv:
        yield srv


@pytest.fixture(scope="module")
def tenant(server: LiveServer) -> Tenant:
    return make_tenant(server, "bots")


def trtc(server: LiveServer, t: Tenant) -> trtc_client.TrtcClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))
    return trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-guangzhou", prof
    )


def args(server: LiveServer, t: Tenant, room: str, user: str) -> tuple[str, str, str, str, str]:
    return server.url, str(t.app.sdk_app_id), room, user, issue_usersig(t.app, user)


async def test_two_bots_receive_each_other(server: LiveServer, tenant: Tenant) -> None:
    r1, r2 = await asyncio.gather(
        publish_bot(*args(server, tenant, "201", "u1"), duration=4, video=SMALL, subscribe=True),
        publish_bot(*args(server, tenant, "201", "u2"), duration=4, video=SMALL, subscribe=True),
    )
    for me, other in ((r1, "u2"), (r2, "u1")):
        assert me.reason is StopReason.DURATION and me.exit_code == 0
        assert sorted(me.published) == [f"{me.user_id}/audio", f"{me.user_id}/camera"]
        assert set(me.received) == {f"{other}/audio", f"{other}/camera"}
        assert me.frames(f"{other}/camera") >= 20, me.received
        assert me.frames(f"{other}/audio") >= 60, me.received  # 50 Opus frames a second
        assert me.received[f"{other}/camera"].keyframes >= 1
        assert 10 <= me.received[f"{other}/camera"].fps <= 20


async def test_removed_then_dismissed(server: LiveServer, tenant: Tenant) -> None:
    sdk = trtc(server, tenant)
    pub_joined, sub_joined = asyncio.Event(), asyncio.Event()
    pub = asyncio.create_task(publish_bot(*args(server, tenant, "202", "p1"), video=SMALL, joined=pub_joined))
    sub = asyncio.create_task(
        subscribe_bot(*args(server, tenant, "202", "s1"), duration=None, joined=sub_joined)
    )
    await asyncio.wait_for(asyncio.gather(pub_joined.wait(), sub_joined.wait()), 20)
    await asyncio.sleep(1.0)  # let some media flow

    rm = models.RemoveUserRequest()
    rm.SdkAppId, rm.RoomId, rm.UserIds = tenant.app.sdk_app_id, 202, ["p1"]
    await asyncio.to_thread(sdk.RemoveUser, rm)
    removed = await asyncio.wait_for(pub, 10)
    assert removed.reason is StopReason.REMOVED and removed.exit_code == 3
    assert removed.close_code == 4001

    dm = models.DismissRoomRequest()
    dm.SdkAppId, dm.RoomId = tenant.app.sdk_app_id, 202
    await asyncio.to_thread(sdk.DismissRoom, dm)
    dismissed = await asyncio.wait_for(sub, 10)
    assert dismissed.reason is StopReason.DISMISSED and dismissed.exit_code == 4
    assert dismissed.frames("p1/camera") > 5 and dismissed.frames("p1/audio") > 20


async def test_bad_token_and_unreachable_server(server: LiveServer, tenant: Tenant) -> None:
    url, app, room, user, _ = args(server, tenant, "203", "u1")
    with pytest.raises(BotError) as bad:
        await subscribe_bot(url, app, room, user, "not-a-token", duration=1)
    assert bad.value.code == "unauthorized" and bad.value.exit_code == 2
    with pytest.raises(BotError) as down:
        await subscribe_bot(f"http://127.0.0.1:{free_port()}", app, room, user, "x", duration=1)
    assert down.value.code == "unreachable" and down.value.exit_code == 1


async def _cli(*argv: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "roomcast",
        "bot",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


def _cli_args(server: LiveServer, t: Tenant, room: str, user: str, token: str | None = None) -> list[str]:
    url, app, room, user, tok = args(server, t, room, user)
    return ["--server", url, "--app", app, "--room", room, "--user", user, "--token", token or tok]


async def test_cli_publish_round_trip(server: LiveServer, tenant: Tenant) -> None:
    proc = await _cli(
        "publish",
        *_cli_args(server, tenant, "204", "u3"),
        "--duration",
        "3",
        "--video",
        "320x180@15",
        "--json",
    )
    watcher = await subscribe_bot(*args(server, tenant, "204", "w1"), duration=6)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["reason"] == "duration" and result["exit_code"] == 0
    assert sorted(result["published"]) == ["u3/audio", "u3/camera"]
    assert watcher.frames("u3/camera") >= 15 and watcher.frames("u3/audio") >= 50


async def test_cli_sigterm_and_bad_token(server: LiveServer, tenant: Tenant) -> None:
    proc = await _cli("subscribe", *_cli_args(server, tenant, "205", "u4"), "--json")
    bad = await _cli("publish", *_cli_args(server, tenant, "205", "u5", token="bogus"), "--no-video")
    _, bad_err = await asyncio.wait_for(bad.communicate(), 30)
    assert bad.returncode == 2
    progress, *_, last = bad_err.decode().strip().splitlines()
    assert progress.startswith("u5: joining room 205")
    assert last.startswith("error: the server refused the token")
    await asyncio.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["reason"] == "signal"


def test_cli_bad_arguments() -> None:
    runner = CliRunner()
    common = ["--server", "http://127.0.0.1:9", "--app", "1", "--room", "r", "--user", "u", "--token", "t"]
    res = runner.invoke(cli, ["bot", "publish", *common, "--video", "640by360"])
    assert res.exit_code == 2 and "WIDTHxHEIGHT@FPS" in res.output
    res = runner.invoke(cli, ["bot", "publish", *common, "--no-video", "--no-audio"])
    assert res.exit_code == 2 and "nothing to publish" in res.output
    assert parse_video("1280x720@30") == (1280, 720, 30)
    assert parse_video("640x360") == (640, 360, 15)


def _write_clip(path: Path, seconds: int = 2) -> None:
    """A short H.264 + AAC clip of u7's test pattern."""
    from roomcast.media.testpattern import PatternAudioTrack, PatternVideoTrack

    video = PatternVideoTrack("u7", width=320, height=180, fps=15, realtime=False)
    audio = PatternAudioTrack("u7", realtime=False)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=15)
        vs.width, vs.height, vs.pix_fmt = 320, 180, "yuv420p"
        aus = out.add_stream("aac", rate=48000)
        aus.layout = "mono"
        for i in range(15 * seconds):
            out.mux(vs.encode(video.render(i)))
        for i in range(50 * seconds):
            frame = audio.render(i)
            frame.pts = None
            out.mux(aus.encode(frame))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))


async def test_file_source_ends(server: LiveServer, tenant: Tenant, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    _write_clip(clip)
    joined = asyncio.Event()
    watcher = asyncio.create_task(
        subscribe_bot(*args(server, tenant, "206", "w2"), duration=None, joined=joined)
    )
    await asyncio.wait_for(joined.wait(), 15)
    result = await publish_bot(*args(server, tenant, "206", "u7"), file=str(clip), duration=15)
    assert result.reason is StopReason.ENDED and result.exit_code == 0
    assert 1.0 < result.seconds < 5.0
    dm = models.DismissRoomByStrRoomIdRequest()
    dm.SdkAppId, dm.RoomId = tenant.app.sdk_app_id, "206"
    await asyncio.to_thread(trtc(server, tenant).DismissRoomByStrRoomId, dm)
    seen = await asyncio.wait_for(watcher, 10)
    assert seen.frames("u7/camera") >= 10 and seen.frames("u7/audio") >= 30
    with pytest.raises(BotError) as missing:
        await publish_bot(*args(server, tenant, "206", "u8"), file=str(tmp_path / "nope.mp4"))
    assert missing.value.code == "bad_argument"
