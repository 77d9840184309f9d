"""Helpers for tests and bots: a loopback SFU server and cheap synthetic tracks."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from collections.abc import AsyncIterator

import numpy as np
import uvicorn
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame
from fastapi import FastAPI

from . import aiortc_compat as compat
from .auth import Authenticator
from .room import RoomManager
from .signalling import create_signalling_router
from .whip import create_whip_router


def build_app(manager: RoomManager, authenticator: Authenticator) -> FastAPI:
    app = FastAPI()
    app.include_router(create_signalling_router(manager, authenticator))
    app.include_router(create_whip_router(manager, authenticator))
    return app


@contextlib.asynccontextmanager
async def serve_sfu(manager: RoomManager, authenticator: Authenticator) -> AsyncIterator[str]:
    """Run the signalling app with uvicorn on 127.0.0.1 (free port) in this loop; yield its base URL.

    Also switches ICE to loopback host candidates.
    """
    compat.set_ice_host_addresses(["127.0.0.1"])
    await manager.start()
    config = uvicorn.Config(
        build_app(manager, authenticator), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await manager.close()
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, 5.0)


class ColorVideoTrack(MediaStreamTrack):
    """A small solid-colour video (default 160x120 @ 15 fps) whose luma ramps with time."""

    kind = "video"

    def __init__(
        self, width: int = 160, height: int = 120, fps: int = 15, color: tuple[int, int] = (90, 200)
    ):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._uv = color
        self._start: float | None = None
        self._n = 0
        self.sent = 0

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._n / self.fps
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        y = np.full((self.height, self.width), 16 + (self._n * 4) % 220, dtype=np.uint8)
        u = np.full((self.height // 2, self.width // 2), self._uv[0], dtype=np.uint8)
        v = np.full((self.height // 2, self.width // 2), self._uv[1], dtype=np.uint8)
        planes = np.concatenate([y, u.reshape(-1, self.width), v.reshape(-1, self.width)])
        frame = VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = int(self._n * 90000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self._n += 1
        self.sent += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A sine tone, 20 ms mono s16 frames at 48 kHz."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, rate: int = 48000) -> None:
        super().__init__()
        self.frequency = frequency
        self.rate = rate
        self._samples = rate // 50
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._n * 0.02
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(self._samples) + self._n * self._samples) / self.rate
        pcm = (np.sin(2 * math.pi * self.frequency * t) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._n * self._samples
        frame.time_base = fractions.Fraction(1, self.rate)
        self._n += 1
        return frame
