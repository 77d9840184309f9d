"""Text to speech: offline espeak-ng (a Debian package) or an OpenAI-compatible ``/v1/audio/speech``
endpoint. Both give mono s16 48 kHz samples for :class:`roomcast.ai.voice.VoiceTrack`."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
from concurrent.futures import Executor
from typing import Any

import av
import httpx
import numpy as np

from roomcast.domain.ai import TtsConfig, TtsEngine
from roomcast.net.urls import UrlPolicy

RATE = 48000
DEFAULT_VOICE = "en-us+f3"
ESPEAK_WPM = 160


class TtsError(Exception):
    """Speech could not be made (the endpoint failed, or espeak-ng is missing)."""


def decode_audio(data: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Any container/codec PyAV reads (WAV, MP3, ...) -> mono s16 48 kHz."""
    try:
        with av.open(io.BytesIO(data), mode="r") as c:
            stream = c.streams.audio[0]
            rs = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            chunks = [
                out.to_ndarray().reshape(-1)[: out.samples]
                for frame in c.decode(stream)
                for out in rs.resample(frame)
            ]
            chunks += [out.to_ndarray().reshape(-1)[: out.samples] for out in rs.resample(None)]
    except (av.FFmpegError, IndexError) as exc:
        raise TtsError(f"the speech audio cannot be decoded: {exc}") from None
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


def espeak(text: str, voice: str | None, speed: float) -> np.ndarray[Any, np.dtype[np.int16]]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise TtsError("espeak-ng is not installed on this node")
    wpm = str(max(80, min(450, int(ESPEAK_WPM * speed))))
    try:
        res = subprocess.run(
            [exe, "-v", voice or DEFAULT_VOICE, "-s", wpm, "--stdout"],
            input=text.encode(),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TtsError("espeak-ng took too long") from None
    if res.returncode != 0 or not res.stdout:
        raise TtsError(f"espeak-ng failed: {res.stderr.decode(errors='replace')[:200]}")
    samples: np.ndarray[Any, np.dtype[np.int16]] = decode_audio(res.stdout)
    return samples


def _gain(samples: np.ndarray[Any, np.dtype[np.int16]], volume: float) -> np.ndarray[Any, np.dtype[np.int16]]:
    if volume == 1.0:
        return samples
    out: np.ndarray[Any, np.dtype[np.int16]] = np.clip(
        samples.astype(np.float32) * volume, -32768, 32767
    ).astype(np.int16)
    return out


async def synthesize(
    cfg: TtsConfig, text: str, *, executor: Executor, client: httpx.AsyncClient, policy: UrlPolicy
) -> np.ndarray[Any, np.dtype[np.int16]]:
    loop = asyncio.get_running_loop()
    if cfg.engine is TtsEngine.OFFLINE:
        samples = await loop.run_in_executor(executor, espeak, text, cfg.voice, cfg.speed)
        return _gain(samples, cfg.volume)
    assert cfg.url is not None
    body = {
        "model": cfg.model or "tts-1",
        "input": text,
        "voice": cfg.voice or "alloy",
        "response_format": "wav",
        "speed": cfg.speed,
    }
    headers = {"Content-Type": "application/json"}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    try:
        async with asyncio.timeout(30):
            resp = await policy.send(
                client, "POST", cfg.url, headers=headers, content=json.dumps(body).encode()
            )
    except (httpx.HTTPError, TimeoutError, ValueError) as exc:
        raise TtsError(f"speech endpoint unreachable: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise TtsError(f"speech endpoint answered HTTP {resp.status_code}")
    samples = await loop.run_in_executor(executor, decode_audio, resp.content)
    return _gain(samples, cfg.volume)
