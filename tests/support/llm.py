"""A stand-in for OpenAI-compatible endpoints on 127.0.0.1: ``POST /v1/chat/completions`` answers a
fixed reply, streamed as the real protocol does (server-sent events of ``chat.completion.chunk``,
then ``data: [DONE]``) or as one ``chat.completion``; ``/fail/...`` answers HTTP 500;
``/v1/audio/transcriptions`` answers a fixed text (keeping the upload) and ``/v1/audio/speech``
a fixed WAV."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.support.live import free_port


@dataclass
class StandInLlm:
    port: int = 0
    reply: str = "hello"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    chunk_delay_s: float = 0.05
    transcript: str = "hello from the endpoint"
    speech_wav: bytes = b""
    uploads: list[bytes] = field(default_factory=list)
    speech_requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    @property
    def asr_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/audio/transcriptions"

    @property
    def tts_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/audio/speech"

    @property
    def failing_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fail/v1/chat/completions"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            reply = self.reply
            created = int(time.time())
            if not body.get("stream"):
                return JSONResponse(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": created,
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                )

            async def events() -> AsyncIterator[bytes]:
                import asyncio

                def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
                    data = {
                        "id": "chatcmpl-1",
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": body.get("model"),
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }
                    return f"data: {json.dumps(data)}\n\n".encode()

                yield chunk({"role": "assistant", "content": ""})
                for word in reply.split(" "):
                    await asyncio.sleep(self.chunk_delay_s)
                    yield chunk({"content": word + " "})
                yield chunk({}, "stop")
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        @app.post("/v1/audio/transcriptions")
        async def transcriptions(request: Request) -> Response:
            self.uploads.append(await request.body())
            self.headers.append(dict(request.headers))
            return JSONResponse({"text": self.transcript})

        @app.post("/v1/audio/speech")
        async def speech(request: Request) -> Response:
            self.speech_requests.append(await request.json())
            self.headers.append(dict(request.headers))
            return Response(self.speech_wav, media_type="audio/wav")

        @app.post("/fail/v1/chat/completions")
        async def fail(request: Request) -> Response:
            self.requests.append(await request.json())
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=500)

        return app


@contextmanager
def stand_in_llm(reply: str = "hello") -> Iterator[StandInLlm]:
    llm = StandInLlm(port=free_port(), reply=reply)
    server = uvicorn.Server(uvicorn.Config(llm.app(), host="127.0.0.1", port=llm.port, log_config=None))
    thread = threading.Thread(target=server.run, name="stand-in-llm", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("stand-in LLM did not start")
        time.sleep(0.02)
    try:
        yield llm
    finally:
        server.should_exit = True
        thread.join(timeout=10)
