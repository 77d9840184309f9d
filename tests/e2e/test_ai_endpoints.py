"""AI robots with OpenAI-compatible speech endpoints instead of the offline engines: a task's own
transcription endpoint (RecognizeConfig.Model as JSON), the server-wide one (``asr_url``), and a
speech endpoint for the conversation robot's voice (TTSConfig TTSType openai)."""

from __future__ import annotations

import asyncio
import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tencentcloud.trtc.v20190722 import models

from roomcast.ai.asr import wav_bytes
from roomcast.rtc.track import TrackKind
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import make_tenant
from tests.e2e.test_ai_conversation import bodies, recognize, subtitles
from tests.e2e.test_ai_transcription import client, finals, start_body, wait_for
from tests.e2e.test_trtc_cloud_recording import call, req, sdk
from tests.support.live import LiveServer, live_server
from tests.support.llm import StandInLlm, stand_in_llm
from tests.support.speech import SpeechTrack, overlap, silence, speech

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SENTENCE = "we are going to the new york stock exchange"
SPOKEN = "the stock market is going up"


@pytest.fixture(scope="module")
def endpoints() -> Iterator[StandInLlm]:
    with stand_in_llm("unused") as s:
        samples = speech(SPOKEN)
        # What an endpoint sends back: a 24 kHz WAV, as OpenAI's speech API does.
        s.speech_wav = wav_bytes(samples[::2].astype(np.int16).tobytes(), rate=24000)
        yield s


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, endpoints: StandInLlm) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("aiep")) / "var", ice_host_addresses=["127.0.0.1"]) as srv:
        yield srv


def uploaded_wav(body: bytes) -> tuple[int, float]:
    """(sample rate, seconds) of the WAV file in a multipart upload."""
    start = body.index(b"RIFF")
    with wave.open(io.BytesIO(body[start:])) as w:
        return w.getframerate(), w.getnframes() / w.getframerate()


async def speak_into(server: LiveServer, t: Any, room: str, text: str, until: Any) -> None:
    alice, bob = client(server, t, "alice", room), client(server, t, "bob", room)
    track = SpeechTrack()
    try:
        await bob.connect()
        await alice.connect()
        await alice.publish({TrackKind.AUDIO: track})
        track.play(silence(0.5))
        track.play(speech(text))
        track.play(silence(1.5))
        await wait_for(lambda: until(bob), 45)
    finally:
        await alice.close()
        await bob.close()
        track.stop()


async def test_task_transcription_endpoint(server: LiveServer, endpoints: StandInLlm) -> None:
    t = await asyncio.to_thread(make_tenant, server)
    api = sdk(server, t)
    model = json.dumps(
        {"STTType": "openai", "APIUrl": endpoints.asr_url, "APIKey": "asr-key-1", "Model": "whisper-x"}
    )
    body = start_body(t, "asr-remote", room="4141", RecognizeConfig={"Language": "ja", "Model": model})
    task = await call(api.StartAITranscription, req(models.StartAITranscriptionRequest, body))
    await speak_into(server, t, "4141", SENTENCE, lambda bob: finals(bob, "alice"))
    upload = endpoints.uploads[-1]
    assert b'name="model"\r\n\r\nwhisper-x' in upload and b'name="language"\r\n\r\nja' in upload
    rate, seconds = uploaded_wav(upload)
    assert rate == 16000 and 1.5 < seconds < 6  # the utterance, cut by VAD
    assert endpoints.headers[-1]["authorization"] == "Bearer asr-key-1"
    await call(api.StopAITranscription, req(models.StopAITranscriptionRequest, {"TaskId": task.TaskId}))


async def test_server_wide_endpoint(tmp_path: Path, endpoints: StandInLlm) -> None:
    endpoints.transcript = "served by the server-wide endpoint"
    with live_server(tmp_path / "var", ice_host_addresses=["127.0.0.1"], asr_url=endpoints.asr_url) as srv:
        t = await asyncio.to_thread(make_tenant, srv)
        api = sdk(srv, t)
        # Any documented language: the endpoint decides what it understands.
        body = start_body(t, "asr-wide", room="4242", RecognizeConfig={"Language": "fr"})
        await call(api.StartAITranscription, req(models.StartAITranscriptionRequest, body))
        got: list[str] = []

        def done(bob: Any) -> bool:
            got[:] = [b["payload"]["text"] for b in finals(bob, "alice")]
            return bool(got)

        await speak_into(srv, t, "4242", SENTENCE, done)
        assert got[0] == "served by the server-wide endpoint"


async def test_conversation_speech_endpoint(server: LiveServer, endpoints: StandInLlm) -> None:
    t = await asyncio.to_thread(make_tenant, server, "tts")
    api = sdk(server, t)
    tts = {
        "TTSType": "openai",
        "APIUrl": endpoints.tts_url,
        "APIKey": "tts-key-2",
        "Model": "tts-x",
        "Voice": "nova",
    }
    body = {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": "4343",
        "AgentConfig": {"UserId": "agent", "UserSig": issue_usersig(t.app, "agent"), "TargetUserId": "alice"},
        "TTSConfig": json.dumps(tts),
    }
    bob = client(server, t, "bob", "4343")
    try:
        await bob.connect(auto_subscribe=True)
        tap: list[Any] = []
        bob.received.taps["agent/audio"] = tap
        task = await call(api.StartAIConversation, req(models.StartAIConversationRequest, body))
        await bob.wait_event("track_published", lambda m: m["track_id"] == "agent/audio")
        await call(
            api.ControlAIConversation,
            req(
                models.ControlAIConversationRequest,
                {"TaskId": task.TaskId, "Command": "ServerPushText", "ServerPushText": {"Text": "say it"}},
            ),
        )
        await wait_for(lambda: "say it" in subtitles(bob, "agent"), 30)
        sent = endpoints.speech_requests[-1]
        assert sent["input"] == "say it" and sent["model"] == "tts-x" and sent["voice"] == "nova"
        assert endpoints.headers[-1]["authorization"] == "Bearer tts-key-2"
        await asyncio.sleep(3.5)  # the served speech plays in real time
        texts = await asyncio.to_thread(recognize, list(tap))
        assert any(overlap(SPOKEN, x) >= 0.6 for x in texts), texts
        # A voice changed live to an endpoint that fails: tried again, then reported.
        failing = dict(tts, APIUrl=endpoints.tts_url.replace("/v1/", "/fail/v1/"))
        await call(
            api.UpdateAIConversation,
            req(
                models.UpdateAIConversationRequest, {"TaskId": task.TaskId, "TTSConfig": json.dumps(failing)}
            ),
        )
        await call(
            api.ControlAIConversation,
            req(
                models.ControlAIConversationRequest,
                {"TaskId": task.TaskId, "Command": "ServerPushText", "ServerPushText": {"Text": "not said"}},
            ),
        )
        await wait_for(lambda: any(b["type"] == 10002 for b in bodies(bob)), 30)
        err = next(b for b in bodies(bob) if b["type"] == 10002)
        assert err["payload"]["code"] == "tts" and "404" in err["payload"]["message"]
        await call(
            api.UpdateAIConversation,
            req(models.UpdateAIConversationRequest, {"TaskId": task.TaskId, "TTSConfig": json.dumps(tts)}),
        )
        # StopAfterPlay: said, then the task ends by itself.
        await call(
            api.ControlAIConversation,
            req(
                models.ControlAIConversationRequest,
                {
                    "TaskId": task.TaskId,
                    "Command": "ServerPushText",
                    "ServerPushText": {"Text": "goodbye", "StopAfterPlay": True},
                },
            ),
        )
        await bob.wait_event("participant_left", lambda m: m["user_id"] == "agent", time_limit=20)
        assert "goodbye" in subtitles(bob, "agent")
        d = await call(
            api.DescribeAIConversation, req(models.DescribeAIConversationRequest, {"TaskId": task.TaskId})
        )
        assert d.Status == "Stopped"
    finally:
        await bob.close()
