"""TRTC AI transcription end to end with the official SDK: espeak-ng sentences published by a
participant are recognized by the hidden robot (offline pocketsphinx) and delivered to another
participant as custom messages (cmd_id 1), stored with the task; dedup, Describe, Stop, MaxIdleTime
and the documented errors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.trtc.v20190722 import models

from roomcast.rtc.client import RoomClient
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.services.ai import transcript
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.e2e.test_trtc_cloud_recording import call, req, sdk
from tests.support.live import LiveServer, live_server
from tests.support.speech import SpeechTrack, overlap, silence, speech

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOM = "5151"
SENTENCES = ["we are going to the new york stock exchange", "the stock market is going up"]
MIN_OVERLAP = 0.6
"""Share of a sentence's words the offline recognizer must get right (it got 100 % on these
sentences from a WAV file; the Opus round trip and live segmentation cost a little)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("ai")) / "var", ice_host_addresses=["127.0.0.1"]) as srv:
        yield srv


def client(server: LiveServer, t: Tenant, user: str, room: str = ROOM) -> RoomClient:
    return RoomClient(
        server.url, app_id=str(t.app.sdk_app_id), room_id=room, user_id=user, token=issue_usersig(t.app, user)
    )


def start_body(t: Tenant, robot: str = "asr-bot", room: str = ROOM, **extra: Any) -> dict[str, Any]:
    params = {"UserId": robot, "UserSig": issue_usersig(t.app, robot), "MaxIdleTime": 30}
    params.update(extra.pop("Params", {}))
    return {"SdkAppId": t.app.sdk_app_id, "RoomId": room, "TranscriptionParams": params, **extra}


async def sdk_error(fn: Any, request: Any) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        await call(fn, request)
    return str(info.value.code)


def finals(c: RoomClient, sender: str | None = None) -> list[dict[str, Any]]:
    out = []
    for m in c.custom_messages(1):
        body = json.loads(m["data"])
        if (
            body.get("type") == 10000
            and body["payload"]["end"]
            and (sender is None or body["sender"] == sender)
        ):
            out.append(body)
    return out


async def wait_for(predicate: Any, time_limit: float) -> None:
    deadline = time.monotonic() + time_limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.1)


async def test_sentences_are_transcribed_and_delivered(server: LiveServer) -> None:
    t = await asyncio.to_thread(make_tenant, server)
    api = sdk(server, t)
    alice, bob = client(server, t, "alice"), client(server, t, "bob")
    track = SpeechTrack()
    try:
        await bob.connect()
        await alice.connect()
        started = await call(
            api.StartAITranscription, req(models.StartAITranscriptionRequest, start_body(t, SessionId="s-1"))
        )
        task_id = started.TaskId
        assert task_id
        desc = await call(
            api.DescribeAITranscription, req(models.DescribeAITranscriptionRequest, {"TaskId": task_id})
        )
        assert desc.Status == "InProgress" and desc.SessionId == "s-1" and desc.TaskId == task_id
        # The same session id again: refused.
        assert (
            await sdk_error(
                api.StartAITranscription,
                req(models.StartAITranscriptionRequest, start_body(t, "asr-bot-2", SessionId="s-1")),
            )
            == "FailedOperation.TaskExist"
        )
        await alice.publish({TrackKind.AUDIO: track})
        t0 = time.time()
        for sentence in SENTENCES:
            track.play(silence(0.5))
            track.play(speech(sentence))
            track.play(silence(1.5))
        await wait_for(lambda: len(finals(bob, "alice")) >= 2, 60)
        got = finals(bob, "alice")
        for sentence, body in zip(SENTENCES, got, strict=False):
            assert overlap(sentence, body["payload"]["text"]) >= MIN_OVERLAP, (sentence, body)
            p = body["payload"]
            assert 0 <= p["start_ms"] < p["end_ms"] <= (time.time() - t0 + 5) * 1000
            assert body["receiver"] == [] and p["roundid"].startswith("alice-")
        # Times follow the script: the second sentence starts after the first ended.
        assert got[1]["payload"]["start_ms"] >= got[0]["payload"]["end_ms"]
        # Interim text came before the final one of a round (the offline engine decodes as it goes).
        interim = [json.loads(m["data"]) for m in bob.custom_messages(1)]
        assert any(b["type"] == 10000 and not b["payload"]["end"] for b in interim)
        # The robot is hidden: bob never saw it join.
        assert not any(
            e.get("type") == "participant_joined" and e.get("user_id") == "asr-bot" for e in bob.events
        )

        lines = await asyncio.to_thread(server.run, lambda rt: _transcript(rt, task_id))
        assert [ln.user_id for ln in lines][:2] == ["alice", "alice"]
        assert overlap(SENTENCES[0], lines[0].text) >= MIN_OVERLAP

        # The native task API lists the task and its transcript (to its tenant only).
        async with httpx.AsyncClient(
            base_url=f"{server.url}/api/v1", auth=(t.creds.secret_id, t.creds.secret_key)
        ) as native:
            listed = (await native.get("/tasks", params={"kind": "transcription"})).json()
            assert [x["task_id"] for x in listed] == [task_id]
            r = await native.get(f"/tasks/{task_id}/transcript")
            assert r.status_code == 200
            served = r.json()
            assert [x["text"] for x in served] == [ln.text for ln in lines]
            assert served[0]["user_id"] == "alice" and served[0]["start_ms"] < served[0]["end_ms"]
        rival = await asyncio.to_thread(make_tenant, server, "rival")
        async with httpx.AsyncClient(
            base_url=f"{server.url}/api/v1", auth=(rival.creds.secret_id, rival.creds.secret_key)
        ) as native:
            assert (await native.get(f"/tasks/{task_id}/transcript")).status_code == 404

        by_session = await call(
            api.DescribeAITranscription,
            req(
                models.DescribeAITranscriptionRequest,
                {"TaskId": "", "SdkAppId": t.app.sdk_app_id, "SessionId": "s-1"},
            ),
        )
        assert by_session.TaskId == task_id
        await call(api.StopAITranscription, req(models.StopAITranscriptionRequest, {"TaskId": task_id}))
        desc = await call(
            api.DescribeAITranscription, req(models.DescribeAITranscriptionRequest, {"TaskId": task_id})
        )
        assert desc.Status == "Stopped"
        assert (
            await sdk_error(
                api.StopAITranscription, req(models.StopAITranscriptionRequest, {"TaskId": task_id})
            )
            == "FailedOperation.TaskNotExist"
        )
    finally:
        await alice.close()
        await bob.close()
        track.stop()


async def _transcript(rt: Runtime, task_id: str) -> list[Any]:
    return await transcript(rt.db.sessions, task_id)


async def test_one_user_mode_dedup_and_errors(server: LiveServer) -> None:
    t = await asyncio.to_thread(make_tenant, server, "dedup")
    api = sdk(server, t)
    start = api.StartAITranscription

    def body(robot: str, **kw: Any) -> Any:
        return req(models.StartAITranscriptionRequest, start_body(t, robot, **kw))

    whole = await call(start, body("bot-a"))
    # Without a SessionId: one whole-room task per room...
    assert await sdk_error(start, body("bot-b")) == "FailedOperation.TaskExist"
    # ...and one per target user in mode 1.
    one = await call(start, body("bot-c", Params={"TranscriptionMode": 1, "TargetUserId": "carol"}))
    assert (
        await sdk_error(start, body("bot-d", Params={"TranscriptionMode": 1, "TargetUserId": "carol"}))
        == "FailedOperation.TaskExist"
    )
    assert await sdk_error(start, body("bot-e", Params={"TranscriptionMode": 1})) == "MissingParameter"
    bad_sig = start_body(t, "bot-f")
    bad_sig["TranscriptionParams"]["UserSig"] = issue_usersig(t.app, "someone-else")
    assert (
        await sdk_error(start, req(models.StartAITranscriptionRequest, bad_sig)) == "InvalidParameter.UserSig"
    )
    assert await sdk_error(start, body("bot-g", RoomId="room-abc", RoomIdType=0)) == "InvalidParameterValue"
    assert (
        await sdk_error(start, body("bot-h", RecognizeConfig={"Language": "ja"}))
        == "FailedOperation.NotAbility"
    )
    other = await asyncio.to_thread(make_tenant, server, "other")
    assert (
        await sdk_error(
            sdk(server, other).StopAITranscription,
            req(models.StopAITranscriptionRequest, {"TaskId": whole.TaskId}),
        )
        == "FailedOperation.TaskNotExist"
    )
    await call(api.StopAITranscription, req(models.StopAITranscriptionRequest, {"TaskId": one.TaskId}))
    # A dismissed room takes its robots with it.
    await call(
        api.DismissRoom, req(models.DismissRoomRequest, {"SdkAppId": t.app.sdk_app_id, "RoomId": int(ROOM)})
    )

    async def whole_status() -> str:
        d = await call(
            api.DescribeAITranscription, req(models.DescribeAITranscriptionRequest, {"TaskId": whole.TaskId})
        )
        return str(d.Status)

    deadline = time.monotonic() + 10
    while await whole_status() != "Stopped":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert (
        await sdk_error(
            api.DescribeAITranscription, req(models.DescribeAITranscriptionRequest, {"TaskId": "nope"})
        )
        == "FailedOperation.TaskNotExist"
    )
    assert (
        await sdk_error(
            api.DescribeAITranscription, req(models.DescribeAITranscriptionRequest, {"TaskId": ""})
        )
        == "InvalidParameter.TaskId"
    )


async def test_max_idle_time_ends_the_task(server: LiveServer) -> None:
    t = await asyncio.to_thread(make_tenant, server, "idle")
    api = sdk(server, t)
    task = await call(
        api.StartAITranscription,
        req(
            models.StartAITranscriptionRequest,
            start_body(t, "idle-bot", room="6262", Params={"MaxIdleTime": 2}),
        ),
    )

    async def status() -> str:
        d = await call(
            api.DescribeAITranscription, req(models.DescribeAITranscriptionRequest, {"TaskId": task.TaskId})
        )
        return str(d.Status)

    assert await status() == "InProgress"
    deadline = time.monotonic() + 15
    while await status() != "Stopped":
        assert time.monotonic() < deadline, "MaxIdleTime was not honoured"
        await asyncio.sleep(0.5)


async def test_restart_resumes_the_robot(tmp_path: Path) -> None:
    """A server restart: the unfinished task is taken over at the next start, its robot joins
    again and goes on transcribing into the same task."""
    data = tmp_path / "var"
    cm = live_server(data, ice_host_addresses=["127.0.0.1"])
    first = cm.__enter__()
    try:
        t = await asyncio.to_thread(make_tenant, first, "restart")
        task = await call(
            sdk(first, t).StartAITranscription,
            req(models.StartAITranscriptionRequest, start_body(t, "durable-bot")),
        )
    finally:
        await asyncio.to_thread(cm.__exit__, None, None, None)

    with live_server(data, ice_host_addresses=["127.0.0.1"]) as second:
        api = sdk(second, t)
        d = await call(
            api.DescribeAITranscription, req(models.DescribeAITranscriptionRequest, {"TaskId": task.TaskId})
        )
        assert d.Status == "InProgress"
        assert "durable-bot" in second.app.state.sfu.room(str(t.app.sdk_app_id), ROOM).participants
        alice, bob = client(second, t, "alice"), client(second, t, "bob")
        track = SpeechTrack()
        try:
            await bob.connect()
            await alice.connect()
            await alice.publish({TrackKind.AUDIO: track})
            track.play(silence(0.5))
            track.play(speech(SENTENCES[1]))
            track.play(silence(1.5))
            await wait_for(lambda: finals(bob, "alice"), 45)
        finally:
            await alice.close()
            await bob.close()
            track.stop()
        lines = await asyncio.to_thread(second.run, lambda rt: _transcript(rt, task.TaskId))
        assert lines and overlap(SENTENCES[1], lines[-1].text) >= MIN_OVERLAP
        await call(api.StopAITranscription, req(models.StopAITranscriptionRequest, {"TaskId": task.TaskId}))


async def test_killed_node_task_is_taken_over(tmp_path: Path) -> None:
    """SIGKILL: the next process on this host finds the dead node (its process is gone) and its
    robot joins the room again for the same task."""
    import signal

    from roomcast.config import Settings
    from tests.support.live import free_port, serve_process

    data = tmp_path / "var"

    async def tenant() -> Tenant:
        rt = await Runtime.open(Settings(data_dir=data, allow_private_urls=True))
        try:
            creds = await rt.tenancy.create_account("killed")
            return Tenant(creds, await rt.tenancy.create_app(creds.account_id, "demo"))
        finally:
            await rt.close()

    t = await tenant()
    port = free_port()
    env = {"ROOMCAST_ICE_HOST_ADDRESSES": '["127.0.0.1"]', "ROOMCAST_ALLOW_PRIVATE_URLS": "true"}
    srv = LiveServer(Settings(data_dir=data, port=port, allow_private_urls=True), None, port)  # type: ignore[arg-type]
    proc = await asyncio.to_thread(serve_process, data, port, **env)
    try:
        task = await call(
            sdk(srv, t).StartAITranscription,
            req(models.StartAITranscriptionRequest, start_body(t, "phoenix")),
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc = await asyncio.to_thread(serve_process, data, port, **env)
    try:
        api = sdk(srv, t)
        d = await call(
            api.DescribeAITranscription, req(models.DescribeAITranscriptionRequest, {"TaskId": task.TaskId})
        )
        assert d.Status == "InProgress"
        bob = client(srv, t, "bob")
        await bob.connect()
        try:
            # The robot is back in the room: its user id is taken, so a second robot with it
            # would replace it; a user joining with it replaces it and ends the task.
            thief = client(srv, t, "phoenix")
            await thief.connect()
            await thief.close()
            deadline = time.monotonic() + 10
            while True:
                d = await call(
                    api.DescribeAITranscription,
                    req(models.DescribeAITranscriptionRequest, {"TaskId": task.TaskId}),
                )
                if d.Status == "Stopped":
                    break
                assert time.monotonic() < deadline, "the resumed robot was not in the room"
                await asyncio.sleep(0.2)
        finally:
            await bob.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
