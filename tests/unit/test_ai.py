"""AI building blocks: VAD segmentation, the offline recognizer, the LLM stream parser, TTS audio
decoding, the voice track, spec JSON and the TRTC config parsers."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from roomcast.ai import vad
from roomcast.ai.asr import OfflineRecognizer, StreamingRecognizer, wav_bytes
from roomcast.ai.llm import LlmError, complete
from roomcast.ai.tts import decode_audio
from roomcast.ai.voice import FRAME, VoiceTrack, encode_opus
from roomcast.api.trtc.ai import asr_config, llm_config, tts_config
from roomcast.api.trtc.errors import TrtcError
from roomcast.crypto import SecretBox
from roomcast.domain import ai
from roomcast.domain.errors import InvalidArgument
from roomcast.net.urls import UrlPolicy
from roomcast.services.tasks import _open_tree, _seal_tree
from tests.support.speech import overlap, speech


def pcm16k(samples48k: np.ndarray[Any, Any]) -> bytes:
    return bytes(samples48k[::3].astype(np.int16).tobytes())


def test_segmenter_cuts_speech_from_silence() -> None:
    sentence = pcm16k(speech("the stock market is going up"))
    quiet = bytes(16000 * 2)  # 1 s
    seg = vad.Segmenter(silence_ms=500)
    events: list[vad.VadEvent] = []
    t = 0.0
    for chunk in (quiet, sentence, quiet, quiet):
        for i in range(0, len(chunk), 640):  # 20 ms pieces, as packets come
            events += seg.feed(chunk[i : i + 640], t)
            t += 20
    starts = [e for e in events if isinstance(e, vad.Started)]
    ends = [e for e in events if isinstance(e, vad.Ended)]
    assert len(starts) == 1 and len(ends) == 1
    spoken_ms = len(sentence) / 32
    assert 700 <= starts[0].start_ms <= 1300  # the sentence starts after 1 s of silence
    assert abs((ends[0].end_ms - ends[0].start_ms) - spoken_ms) < 600
    voiced = b"".join(e.pcm for e in events if isinstance(e, vad.Voice))
    assert len(voiced) >= len(sentence) * 0.8
    assert seg.flush() == []


def test_offline_recognizer_interim_and_final() -> None:
    sentence = pcm16k(speech("we are going to the new york stock exchange"))
    stream = StreamingRecognizer()
    stream.start()
    partials = []
    for i in range(0, len(sentence), 16000):
        stream.feed(sentence[i : i + 16000])
        partials.append(stream.partial())
    stream.end()
    assert any(partials)
    final = OfflineRecognizer().recognize(sentence)
    assert overlap("we are going to the new york stock exchange", final) >= 0.8


def sse(*pieces: str, extra: list[str] | None = None) -> bytes:
    lines = [
        "data: "
        + json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": p}}]})
        for p in pieces
    ]
    lines += extra or []
    return ("\n\n".join([*lines, "data: [DONE]"]) + "\n\n").encode()


async def collect(handler: Any, cfg: ai.LlmConfig | None = None) -> str:
    transport = httpx.MockTransport(handler)
    cfg = cfg or ai.LlmConfig(url="http://llm.test/v1/chat/completions", model="m", api_key="k")
    async with httpx.AsyncClient(transport=transport) as client:
        return "".join([p async for p in complete(client, UrlPolicy(allow_private=True), cfg, [])])


async def test_llm_stream_and_plain_answers() -> None:
    seen: list[httpx.Request] = []

    def streamed(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse("Hel", "lo", " there")
        )

    assert await collect(streamed) == "Hello there"
    body = json.loads(seen[0].content)
    assert body["stream"] is True and seen[0].headers["authorization"] == "Bearer k"

    def plain(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "Hi."}}]})

    cfg = ai.LlmConfig(url="http://llm.test/x", model="m", streaming=False)
    assert await collect(plain, cfg) == "Hi."


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, json={"error": "bad key"}),
        httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"data: {not json\n\n"),
        httpx.Response(200, json={"choices": []}),
        httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=sse(extra=['data: {"error": {"message": "quota"}}']),
        ),
    ],
)
async def test_llm_failures_are_llm_errors(response: httpx.Response) -> None:
    with pytest.raises(LlmError) as info:
        await collect(lambda request: response)
    assert "k" not in str(info.value).split()


def test_decode_audio_resamples_to_48k_mono() -> None:
    tone = (np.sin(np.arange(24000) / 24000 * 2 * np.pi * 440) * 10000).astype(np.int16)
    out = decode_audio(wav_bytes(tone.tobytes(), rate=24000))
    assert abs(len(out) - 48000) < 1000 and np.abs(out).max() > 5000


async def test_voice_track_paces_speech_then_silence() -> None:
    with ThreadPoolExecutor(1) as ex:
        track = VoiceTrack(ex)
        samples = np.full(FRAME * 10, 3000, np.int16)
        assert len(encode_opus(samples)) >= 10
        await track.say(samples)
        assert track.speaking
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pts = [(await track.recv()).pts for _ in range(15)]
        assert pts == [i * FRAME for i in range(15)]
        assert loop.time() - t0 >= 0.2  # real time, not a burst
        assert not track.speaking and track.sent_voice >= 10
        await track.say(samples)
        assert track.interrupt() and not track.speaking
        track.stop()


def test_spec_json_round_trip_with_sealed_keys(tmp_path: Any) -> None:
    spec = ai.ConversationSpec(
        robot_user_id="agent",
        target_user_id="alice",
        llm=ai.LlmConfig(url="http://x/v1/chat/completions", model="m", api_key="sk-1"),
        tts=ai.TtsConfig(engine=ai.TtsEngine.OPENAI, url="http://x/v1/audio/speech", api_key="sk-2"),
        interrupt_mode=ai.InterruptMode.CLIENT,
    )
    box = SecretBox.from_file(tmp_path / "k")
    sealed = _seal_tree(ai.spec_to_json(spec), box, ai.SECRET_FIELDS)
    assert "sk-1" not in json.dumps(sealed) and "sk-2" not in json.dumps(sealed)
    assert ai.spec_from_json(_open_tree(sealed, box)) == spec
    t = ai.TranscriptionSpec(robot_user_id="r", target_user_id=None, asr=ai.AsrConfig(language="en"))
    assert ai.spec_from_json(json.loads(json.dumps(ai.spec_to_json(t)))) == t
    with pytest.raises(InvalidArgument):
        ai.spec_from_json({"v": 99})
    with pytest.raises(InvalidArgument):
        ai.check_asr(ai.AsrConfig(language="zh"))


def test_trtc_configs() -> None:
    cfg = llm_config(
        json.dumps(
            {"LLMType": "openai", "Model": "m", "APIKey": "k", "APIUrl": "http://u", "Streaming": False}
        )
    )
    assert (cfg.url, cfg.model, cfg.api_key, cfg.streaming) == ("http://u", "m", "k", False)
    for bad, code in (
        ("[]", "InvalidParameterValue"),
        (json.dumps({"Model": "m", "APIUrl": "http://u", "Streaming": "yes"}), "InvalidParameterValue"),
        (json.dumps({"Model": "m"}), "InvalidParameterValue"),
        (
            json.dumps({"LLMType": "minimax", "Model": "m", "APIUrl": "http://u"}),
            "FailedOperation.NotAbility",
        ),
        (json.dumps({"Model": "m", "APIUrl": "http://u", "History": 51}), "InvalidParameterValue"),
    ):
        with pytest.raises(TrtcError) as info:
            llm_config(bad)
        assert info.value.code == code, bad
    assert tts_config(None) == ai.TtsConfig()
    t = tts_config(
        json.dumps({"TTSType": "openai", "APIUrl": "http://s", "VoiceType": 101001, "Speed": 1.25})
    )
    assert t.engine is ai.TtsEngine.OPENAI and t.voice == "101001" and t.speed == 1.25
    with pytest.raises(TrtcError) as info:
        tts_config(json.dumps({"TTSType": "tencent", "SecretId": "a"}))
    assert info.value.code == "FailedOperation.NotAbility"
    assert asr_config(None, None) is None
    assert asr_config("en", "hot words") == ai.AsrConfig(language="en")
    remote = asr_config("ja", json.dumps({"APIUrl": "http://a", "Model": "w"}))
    assert remote is not None and remote.engine is ai.AsrEngine.OPENAI and remote.language == "ja"


def test_subtitle_shape() -> None:
    body = ai.subtitle("alice", "hi", 1500, 3725.4, "alice-1", end=True)
    assert body == {
        "type": 10000,
        "sender": "alice",
        "receiver": [],
        "payload": {
            "text": "hi",
            "start_time": "00:00:01",
            "end_time": "00:00:03",
            "start_ms": 1500,
            "end_ms": 3725,
            "roundid": "alice-1",
            "end": True,
        },
    }
