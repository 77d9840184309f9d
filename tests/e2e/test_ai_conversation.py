"""TRTC AI conversation end to end with the official SDK: the robot greets, hears alice (espeak-ng
speech), asks a stand-in OpenAI-compatible LLM (real SSE streaming), speaks the answer with
espeak-ng into the room (bob records the robot's track and it is recognized back), sends subtitles
and states as custom messages, is interrupted by speech (mode 0) or by a client message (mode 1),
answers ServerPushText, reports a failing LLM, and is updated and stopped; keys stay sealed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from tencentcloud.trtc.v20190722 import models

from roomcast.ai.asr import OfflineRecognizer
from roomcast.ai.listen import Final, SpeechInput
from roomcast.media.codecs import OpusDecoder
from roomcast.rtc.client import RoomClient
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.services.ai import transcript
from roomcast.services.join_tokens import issue_usersig
from roomcast.store.tables import TaskRow
from tests.api.conftest import make_tenant
from tests.e2e.test_ai_transcription import client, sdk_error, wait_for
from tests.e2e.test_trtc_cloud_recording import call, req, sdk
from tests.support.live import LiveServer, live_server
from tests.support.llm import StandInLlm, stand_in_llm
from tests.support.speech import SpeechTrack, overlap, silence, speech

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

ROOM = "7373"
WELCOME = "i want to go to new york"
QUESTION = "we are going to the new york stock exchange"
REPLY = "the stock market is going up"
LONG_REPLY = " ".join(["we are going to the new york stock exchange."] * 6)
API_KEY = "sk-standin-secret-4242"
MIN_OVERLAP = 0.6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("conv")) / "var", ice_host_addresses=["127.0.0.1"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def llm() -> Iterator[StandInLlm]:
    with stand_in_llm(REPLY) as s:
        yield s


def bodies(c: RoomClient, sender: str = "agent") -> list[dict[str, Any]]:
    return [json.loads(m["data"]) for m in c.custom_messages(1) if m["sender"] == sender]


def subtitles(c: RoomClient, speaker: str) -> list[str]:
    return [
        b["payload"]["text"]
        for b in bodies(c)
        if b["type"] == 10000 and b["payload"]["end"] and b["sender"] == speaker
    ]


def states(c: RoomClient) -> list[int]:
    return [b["payload"]["state"] for b in bodies(c) if b["type"] == 10001]


def recognize(packets: list[Any]) -> list[str]:
    """What the offline recognizer hears in the robot's published track."""
    sp = SpeechInput(silence_ms=500, offline=True)
    rec = OfflineRecognizer()
    utterances: list[bytes] = []
    for i, pkt in enumerate(packets):
        utterances += [ev.pcm for ev in sp.feed(bytes(pkt), i * 20.0) if isinstance(ev, Final)]
    utterances += [ev.pcm for ev in sp.flush() if isinstance(ev, Final)]
    return [text for text in map(rec.recognize, utterances) if text]


def loudness(packets: list[Any]) -> float:
    dec = OpusDecoder()
    peak = 0.0
    for pkt in packets:
        for frame in dec.decode(bytes(pkt)):
            peak = max(peak, float(np.abs(frame.to_ndarray()).max()))
    return peak


async def test_conversation(server: LiveServer, llm: StandInLlm) -> None:
    t = await asyncio.to_thread(make_tenant, server)
    api = sdk(server, t)
    alice, bob = client(server, t, "alice", ROOM), client(server, t, "bob", ROOM)
    voice = SpeechTrack()
    llm_config = {
        "LLMType": "openai",
        "Model": "stand-in",
        "APIKey": API_KEY,
        "APIUrl": llm.url,
        "Streaming": True,
        "SystemPrompt": "You answer briefly.",
    }
    body = {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": ROOM,
        "SessionId": "conv-1",
        "AgentConfig": {
            "UserId": "agent",
            "UserSig": issue_usersig(t.app, "agent"),
            "TargetUserId": "alice",
            "WelcomeMessage": WELCOME,
            "MaxIdleTime": 60,
        },
        "STTConfig": {"Language": "en", "VadSilenceTime": 600},
        "LLMConfig": json.dumps(llm_config),
        "TTSConfig": json.dumps({"TTSType": "espeak", "Voice": "en-us+f3"}),
    }
    try:
        await bob.connect(auto_subscribe=True)
        tap: list[Any] = []
        bob.received.taps["agent/audio"] = tap
        await alice.connect()
        await alice.publish({TrackKind.AUDIO: voice})
        task_id = (await call(api.StartAIConversation, req(models.StartAIConversationRequest, body))).TaskId
        d = await call(
            api.DescribeAIConversation, req(models.DescribeAIConversationRequest, {"TaskId": task_id})
        )
        assert d.Status == "InProgress" and d.SessionId == "conv-1"
        assert (
            await sdk_error(api.StartAIConversation, req(models.StartAIConversationRequest, body))
            == "FailedOperation.TaskExist"
        )
        # The robot is a visible participant publishing audio; it greets first.
        await bob.wait_event("track_published", lambda m: m["track_id"] == "agent/audio")
        await wait_for(lambda: WELCOME in subtitles(bob, "agent"), 30)
        await wait_for(lambda: 1 in states(bob), 30)  # listening again after the greeting

        # A turn: alice asks, the LLM streams, the robot speaks the answer.
        voice.play(speech(QUESTION))
        voice.play(silence(1.0))
        await wait_for(lambda: REPLY in subtitles(bob, "agent"), 60)
        heard = subtitles(bob, "alice")
        assert heard and overlap(QUESTION, heard[-1]) >= MIN_OVERLAP
        sent = llm.requests[-1]
        assert sent["stream"] is True and sent["model"] == "stand-in"
        assert sent["messages"][0] == {"role": "system", "content": "You answer briefly."}
        assert (
            sent["messages"][-1]["role"] == "user"
            and overlap(QUESTION, sent["messages"][-1]["content"]) >= MIN_OVERLAP
        )
        assert llm.headers[-1]["authorization"] == f"Bearer {API_KEY}"
        seq = states(bob)
        assert seq.index(2) < len(seq) - 1 - seq[::-1].index(3)  # thinking, then speaking
        await wait_for(lambda: any(b["type"] == 10020 for b in bodies(bob)), 30)
        metrics = {b["payload"]["metric"]: b["payload"]["value"] for b in bodies(bob) if b["type"] == 10020}
        assert set(metrics) >= {"asr_latency", "llm_first_token", "tts_first_frame_latency"}
        assert 0 <= metrics["llm_first_token"] < 10000 and 0 < metrics["tts_first_frame_latency"] < 10000
        await wait_for(lambda: states(bob)[-1] == 1, 30)
        await asyncio.sleep(0.5)
        texts = await asyncio.to_thread(recognize, list(tap))
        assert any(overlap(WELCOME, x) >= MIN_OVERLAP for x in texts), texts
        assert any(overlap(REPLY, x) >= MIN_OVERLAP for x in texts), texts

        # Interruption, mode 0: alice talks over a long answer; the robot stops talking.
        llm.reply = LONG_REPLY
        voice.play(speech("i would like to go to the stock exchange"))
        voice.play(silence(1.0))
        await wait_for(lambda: states(bob)[-1] == 3, 45)
        await asyncio.sleep(1.0)
        voice.play(speech(QUESTION))
        await wait_for(lambda: 4 in states(bob), 30)
        cut_at = len(tap)
        assert any(b["type"] == 10020 and b["payload"]["metric"] == "interruption" for b in bodies(bob))
        await asyncio.sleep(1.5)
        # After the cut the robot was silent for a while (the next answer needs ASR + LLM + TTS).
        assert loudness(tap[cut_at + 10 : cut_at + 40]) < 300
        voice.play(silence(1.0))
        await wait_for(lambda: states(bob)[-1] == 3, 45)

        # ServerPushText with Interrupt cuts in and is said.
        n_interrupts = states(bob).count(4)
        await call(
            api.ControlAIConversation,
            req(
                models.ControlAIConversationRequest,
                {
                    "TaskId": task_id,
                    "Command": "ServerPushText",
                    "ServerPushText": {"Text": REPLY, "Interrupt": True},
                },
            ),
        )
        await wait_for(lambda: states(bob).count(4) > n_interrupts, 15)
        await wait_for(lambda: subtitles(bob, "agent").count(REPLY) >= 2, 30)
        await wait_for(lambda: states(bob)[-1] == 1, 45)

        # Mode 1: speech no longer interrupts; a client's interrupt message does.
        await call(
            api.UpdateAIConversation,
            req(models.UpdateAIConversationRequest, {"TaskId": task_id, "InterruptMode": 1}),
        )
        voice.play(speech("i would like to go to the stock exchange"))
        voice.play(silence(1.0))
        await wait_for(lambda: states(bob)[-1] == 3, 45)
        before = states(bob).count(4)
        voice.play(speech(QUESTION))
        await asyncio.sleep(3.0)
        assert states(bob).count(4) == before
        await alice.send_custom(2, json.dumps({"type": 20001}))
        await wait_for(lambda: states(bob).count(4) > before, 15)
        llm.reply = REPLY  # short answers from here on

        # A failing LLM reaches the room (an error message) and the task goes on.
        failing = dict(llm_config, APIUrl=llm.failing_url)
        await call(
            api.UpdateAIConversation,
            req(models.UpdateAIConversationRequest, {"TaskId": task_id, "LLMConfig": json.dumps(failing)}),
        )
        await wait_for(lambda: states(bob)[-1] != 3, 30)
        voice.play(silence(0.5))
        voice.play(speech(REPLY))
        voice.play(silence(1.0))
        await wait_for(lambda: any(b["type"] == 10002 for b in bodies(bob)), 60)
        err = next(b for b in bodies(bob) if b["type"] == 10002)
        assert err["payload"]["code"] == "llm" and "500" in err["payload"]["message"]
        assert API_KEY not in json.dumps(bodies(bob))
        d = await call(
            api.DescribeAIConversation, req(models.DescribeAIConversationRequest, {"TaskId": task_id})
        )
        assert d.Status == "InProgress"

        # Keys are sealed in the database.
        async def raw(rt: Runtime) -> str:
            async with rt.db.sessions() as s:
                row = (await s.execute(select(TaskRow).where(TaskRow.task_id == task_id))).scalar_one()
                return f"{row.spec} {row.request} {row.error}"

        stored = await asyncio.to_thread(server.run, raw)
        assert API_KEY not in stored and "$sealed" in stored
        assert "llm: LLM endpoint answered HTTP 500" in stored  # the task's error (native API)

        # The transcript keeps both sides of the conversation.
        async def lines(rt: Runtime) -> list[tuple[str, str]]:
            return [(ln.user_id, ln.text) for ln in await transcript(rt.db.sessions, task_id)]

        said = await asyncio.to_thread(server.run, lines)
        assert ("agent", REPLY) in said
        assert any(u == "alice" and overlap(QUESTION, x) >= MIN_OVERLAP for u, x in said)

        await call(api.StopAIConversation, req(models.StopAIConversationRequest, {"TaskId": task_id}))
        await bob.wait_event("participant_left", lambda m: m["user_id"] == "agent")
        d = await call(
            api.DescribeAIConversation, req(models.DescribeAIConversationRequest, {"TaskId": task_id})
        )
        assert d.Status == "Stopped"
        for fn, model, extra in (
            (api.StopAIConversation, models.StopAIConversationRequest, {}),
            (api.UpdateAIConversation, models.UpdateAIConversationRequest, {"WelcomeMessage": "x"}),
            (
                api.ControlAIConversation,
                models.ControlAIConversationRequest,
                {"Command": "ServerPushText", "ServerPushText": {"Text": "x"}},
            ),
        ):
            assert (
                await sdk_error(fn, req(model, {"TaskId": task_id, **extra}))
                == "FailedOperation.TaskNotExist"
            )
    finally:
        await alice.close()
        await bob.close()
        voice.stop()


async def test_conversation_errors(server: LiveServer, llm: StandInLlm) -> None:
    t = await asyncio.to_thread(make_tenant, server, "errs")
    api = sdk(server, t)

    def start(**over: Any) -> Any:
        agent = {"UserId": "agent-x", "UserSig": issue_usersig(t.app, "agent-x"), "TargetUserId": "u"}
        agent.update(over.pop("Agent", {}))
        b = {"SdkAppId": t.app.sdk_app_id, "RoomId": "9191", "AgentConfig": agent, **over}
        return req(models.StartAIConversationRequest, b)

    tencent_tts = json.dumps(
        {"TTSType": "tencent", "AppId": 1, "SecretId": "a", "SecretKey": "b", "VoiceType": 1}
    )
    assert (
        await sdk_error(api.StartAIConversation, start(TTSConfig=tencent_tts)) == "FailedOperation.NotAbility"
    )
    assert await sdk_error(api.StartAIConversation, start(LLMConfig="not json")) == "InvalidParameterValue"
    assert (
        await sdk_error(api.StartAIConversation, start(Agent={"UserSig": issue_usersig(t.app, "other")}))
        == "InvalidParameter.UserSig"
    )
    assert await sdk_error(api.StartAIConversation, start(Agent={"InterruptMode": 3})) == "InvalidParameter"
    ok = json.dumps({"LLMType": "openai", "Model": "m", "APIKey": "k", "APIUrl": llm.url})
    task_id = (await call(api.StartAIConversation, start(LLMConfig=ok))).TaskId
    assert (
        await sdk_error(
            api.ControlAIConversation,
            req(models.ControlAIConversationRequest, {"TaskId": task_id, "Command": "Dance"}),
        )
        == "InvalidParameterValue"
    )
    for fn, model in (
        (api.DescribeAIConversation, models.DescribeAIConversationRequest),
        (api.StopAIConversation, models.StopAIConversationRequest),
    ):
        assert await sdk_error(fn, req(model, {"TaskId": "missing"})) == "FailedOperation.TaskNotExist"
    await call(api.StopAIConversation, req(models.StopAIConversationRequest, {"TaskId": task_id}))
