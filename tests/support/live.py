"""A real roomcast server on 127.0.0.1 in a background thread, for API and end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from roomcast.config import Settings
from roomcast.runtime import Runtime
from roomcast.server import create_app

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    settings: Settings
    app: FastAPI
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, body: Callable[[Runtime], Awaitable[T]]) -> T:
        """Run ``body`` against the server's data (own engine, same database) from the test thread."""

        async def main() -> T:
            rt = await Runtime.open(self.settings)
            try:
                return await body(rt)
            finally:
                await rt.close()

        return asyncio.run(main())


@contextmanager
def live_server(data_dir: Path, **settings: Any) -> Iterator[LiveServer]:
    port = free_port()
    settings.setdefault("allow_private_urls", True)  # receivers and image servers run on 127.0.0.1
    cfg = Settings(data_dir=data_dir, port=port, **settings)
    app = create_app(cfg)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="roomcast-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()
        yield LiveServer(cfg, app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def serve_process(data_dir: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    """``roomcast serve`` as a real process on 127.0.0.1:``port`` (settings as ``ROOMCAST_*``
    variables in ``env``); returns once ``/healthz`` answers."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ROOMCAST_")}
    environ.update(ROOMCAST_LOG_LEVEL="warning", **env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "roomcast", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            assert proc.poll() is None, "the server died at start-up"
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start")
