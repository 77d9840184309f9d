"""Speech recognition: offline pocketsphinx (en-US model shipped on PyPI) or an OpenAI-compatible
``/v1/audio/transcriptions`` endpoint (whisper-style multipart upload of a WAV file).

The offline recognizer decodes while the user speaks (interim text) and is used from one worker
thread; the remote one gets the whole utterance when it ends, from the event loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import wave
from typing import Any

import httpx

from roomcast.domain.ai import AsrConfig
from roomcast.net.urls import UrlPolicy

log = logging.getLogger("roomcast.ai.asr")

RATE = 16000


class AsrError(Exception):
    """The recognizer could not transcribe (the endpoint failed or refused)."""


_MODEL_LOCK = threading.Lock()


def _decoder(**options: Any) -> Any:
    import pocketsphinx  # loaded on first use: about 1 s and 40 MB per decoder

    with _MODEL_LOCK:
        return pocketsphinx.Decoder(samprate=RATE, loglevel="FATAL", **options)


class StreamingRecognizer:
    """Interim text while a user speaks: one utterance at a time, fed incrementally, with the
    first search pass only (cheap; the final text comes from :class:`OfflineRecognizer`). One per
    speaker, used from one thread."""

    def __init__(self) -> None:
        self._decoder: Any = None
        self._in_utt = False

    def start(self) -> None:
        if self._decoder is None:
            self._decoder = _decoder(fwdflat=False, bestpath=False)
        if self._in_utt:
            self._decoder.end_utt()
        self._decoder.start_utt()
        self._in_utt = True

    def feed(self, pcm: bytes) -> None:
        if not self._in_utt:
            self.start()
        self._decoder.process_raw(pcm, False, False)

    def partial(self) -> str:
        if not self._in_utt:
            return ""
        hyp = self._decoder.hyp()
        return str(hyp.hypstr) if hyp is not None else ""

    def end(self) -> None:
        if self._in_utt:
            self._decoder.end_utt()
            self._in_utt = False


class OfflineRecognizer:
    """Final text of a whole utterance in one full pass (batch cepstral mean normalization and the
    second search passes: clearly more accurate than the interim text). Not thread-safe: a robot
    keeps one and uses it from its own recognition thread."""

    def __init__(self) -> None:
        self._decoder: Any = None

    def recognize(self, utterance: bytes) -> str:
        if self._decoder is None:
            self._decoder = _decoder()
        d = self._decoder
        d.start_utt()
        d.process_raw(utterance, False, True)
        d.end_utt()
        hyp = d.hyp()
        return str(hyp.hypstr).strip() if hyp is not None else ""


def wav_bytes(pcm: bytes, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def _multipart(fields: dict[str, str], audio: bytes) -> tuple[bytes, str]:
    boundary = "roomcast-asr-boundary-7d1c"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n".encode()
        + audio
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def transcribe_remote(
    client: httpx.AsyncClient, policy: UrlPolicy, cfg: AsrConfig, pcm: bytes, timeout_s: float = 30.0
) -> str:
    """POST the utterance to ``cfg.url`` (the full ``.../audio/transcriptions`` URL)."""
    assert cfg.url is not None
    fields = {"model": cfg.model or "whisper-1", "response_format": "json"}
    if cfg.language:
        fields["language"] = cfg.language.split("-")[0]
    body, ctype = _multipart(fields, wav_bytes(pcm))
    headers = {"Content-Type": ctype}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    try:
        async with asyncio.timeout(timeout_s):
            resp = await policy.send(client, "POST", cfg.url, headers=headers, content=body)
    except (httpx.HTTPError, TimeoutError, ValueError) as exc:
        raise AsrError(f"transcription endpoint unreachable: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise AsrError(f"transcription endpoint answered HTTP {resp.status_code}")
    try:
        data = resp.json()
    except json.JSONDecodeError:
        return resp.text.strip()
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise AsrError("transcription endpoint answered without text")
    return text.strip()
