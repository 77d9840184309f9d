"""AI robot benchmarks: CPU of one transcription robot and one conversation robot.

Prints figures, asserts nothing.  Run: ``.venv/bin/python bench/ai.py [--seconds 20]``.

Part A - the speech-in pipeline alone (no network): Opus packets of an espeak-ng script (speech
and pauses) go through ``SpeechInput`` (Opus decode, resample to 16 kHz, webrtcvad, pocketsphinx
interim + final) as fast as it can: CPU seconds per media second = cores per listened speaker.

Part B - the speech-out path alone: espeak-ng synthesis + Opus encoding, CPU seconds per second
of speech produced.

Part C - end to end in real time: an SFU on loopback, one publisher speaking the script, then
(1) a transcription robot, (2) a conversation robot answering every sentence through a local
OpenAI-compatible streaming LLM stand-in, each in-process; the robot's share is the process CPU
with it minus the process CPU of the same room without it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from tests.support.llm import stand_in_llm  # noqa: E402
from tests.support.speech import VOICE, SpeechTrack, silence, speech  # noqa: E402

from roomcast.ai.asr import OfflineRecognizer  # noqa: E402
from roomcast.ai.listen import Final, SpeechInput  # noqa: E402
from roomcast.ai.robots import ConversationRobot, TranscriptionRobot  # noqa: E402
from roomcast.ai.tts import espeak  # noqa: E402
from roomcast.ai.voice import encode_opus  # noqa: E402
from roomcast.domain import ai  # noqa: E402
from roomcast.net.urls import UrlPolicy  # noqa: E402
from roomcast.rtc.auth import StaticTokenAuthenticator  # noqa: E402
from roomcast.rtc.client import RoomClient  # noqa: E402
from roomcast.rtc.room import RoomManager, SfuConfig  # noqa: E402
from roomcast.rtc.testing import serve_sfu  # noqa: E402
from roomcast.rtc.track import TrackKind  # noqa: E402

SENTENCES = [
    "we are going to the new york stock exchange",
    "the stock market is going up",
    "i would like to go to the stock exchange",
]


def cpu() -> float:
    """This process's CPU seconds plus its finished children's (espeak-ng runs as one)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def script(seconds: float) -> np.ndarray[Any, Any]:
    parts: list[Any] = []
    total = 0.0
    i = 0
    while total < seconds:
        s = speech(SENTENCES[i % len(SENTENCES)])
        parts += [s, silence(1.5)]
        total += len(s) / 48000 + 1.5
        i += 1
    return np.concatenate(parts)


def part_a(samples: np.ndarray[Any, Any]) -> None:
    packets = encode_opus(samples)
    media_s = len(packets) * 0.02
    sp = SpeechInput(silence_ms=800, offline=True)
    rec = OfflineRecognizer()
    rec.recognize(bytes(3200))  # loads the models (not counted)
    sp.feed(packets[0], 0)
    t0 = cpu()
    utterances = []
    for i, p in enumerate(packets):
        utterances += [ev.pcm for ev in sp.feed(p, i * 20.0) if isinstance(ev, Final)]
    t1 = cpu()
    texts = [rec.recognize(u) for u in utterances]
    t2 = cpu()
    print(
        f"A  speech in: {media_s:.1f} s of audio, {len(texts)} sentences; decode+VAD+interim ASR "
        f"{(t1 - t0) / media_s:.3f} cores, final ASR {(t2 - t1) / media_s:.3f} cores "
        f"-> {(t2 - t0) / media_s:.3f} cores per listened speaker"
    )


def part_b() -> None:
    text = " ".join(SENTENCES)
    t0 = cpu()
    s = espeak(text, VOICE, 1.0)
    t1 = cpu()
    encode_opus(s)
    t2 = cpu()
    dur = len(s) / 48000
    print(
        f"B  speech out: {dur:.1f} s of speech; espeak-ng {((t1 - t0) / dur):.3f} CPU s/s, "
        f"Opus {((t2 - t1) / dur):.3f} CPU s/s"
    )


async def room_cpu(
    seconds: float, samples: np.ndarray[Any, Any], robot: str | None, llm_url: str | None
) -> float:
    manager = RoomManager(SfuConfig(stats_interval=0, ice_host_addresses=("127.0.0.1",)))
    async with serve_sfu(manager, StaticTokenAuthenticator("t")) as url:
        pub = RoomClient(url, app_id="a", room_id="r", user_id="alice", token="t")
        await pub.connect()
        track = SpeechTrack()
        await pub.publish({TrackKind.AUDIO: track})
        bot: Any = None
        finals = 0

        async def noop(*_: Any) -> None:
            nonlocal finals
            finals += 1

        async def nothing(*_: Any) -> None:
            return None

        kw: dict[str, Any] = dict(
            task_id="bench",
            t0=time.time(),
            policy=UrlPolicy(allow_private=True),
            on_final=noop,
            on_end=nothing,
            on_error=nothing,
        )
        if robot == "transcription":
            bot = TranscriptionRobot(manager, "a", "r", ai.TranscriptionSpec(robot_user_id="bot"), **kw)
        elif robot == "conversation":
            llm = ai.LlmConfig(url=llm_url or "", model="m")
            spec = ai.ConversationSpec(robot_user_id="bot", target_user_id="alice", llm=llm)
            bot = ConversationRobot(manager, "a", "r", spec, **kw)
        if bot is not None:
            await bot.start()
            if bot.listeners:
                # warm the recognizer up outside the measured window
                await asyncio.sleep(1.0)
        await asyncio.sleep(1.0)
        t0, w0 = cpu(), time.monotonic()
        track.play(samples)
        await asyncio.sleep(seconds)
        used, wall = cpu() - t0, time.monotonic() - w0
        if bot is not None:
            await bot.stop()
        await pub.close()
        track.stop()
        if robot:
            print(f"   {robot}: {finals} final sentences in {wall:.0f} s")
        return used / wall


async def part_c(seconds: float, samples: np.ndarray[Any, Any]) -> None:
    base = await room_cpu(seconds, samples, None, None)
    trans = await room_cpu(seconds, samples, "transcription", None)
    with stand_in_llm("the stock market is going up.") as llm:
        conv = await room_cpu(seconds, samples, "conversation", llm.url)
    print(f"C  room with one speaker, no robot: {base:.3f} cores")
    print(f"   + one transcription robot: {trans - base:.3f} cores")
    print(f"   + one conversation robot (ASR + LLM + espeak-ng voice): {conv - base:.3f} cores")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    samples = script(args.seconds)
    part_a(samples)
    part_b()
    asyncio.run(part_c(args.seconds, samples))


if __name__ == "__main__":
    main()
