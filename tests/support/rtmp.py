"""A real RTMP server for relay tests: Debian's nginx with libnginx-mod-rtmp on 127.0.0.1.

``rtmp_server()`` starts nginx in the foreground on a free loopback port with a private
configuration in a temporary directory and stops it afterwards.  ``capture`` records a stream
played back with PyAV into a file (for ``tests.support.avcheck``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.live import free_port

MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


@dataclass
class RtmpServer:
    port: int
    directory: Path

    def url(self, stream: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{stream}"

    @property
    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _nginx() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe is None or not MODULE.exists():
        pytest.skip("nginx with libnginx-mod-rtmp is not installed (scripts/test installs it)")
    return exe


@contextmanager
def rtmp_server() -> Iterator[RtmpServer]:
    exe = _nginx()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rtmp-") as tmp:
        d = Path(tmp)
        (d / "logs").mkdir()
        (d / "nginx.conf").write_text(
            f"load_module {MODULE};\n"
            f"worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log info;\n"
            "events { worker_connections 64; }\n"
            f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; record off; }} }} }}\n"
        )
        proc = subprocess.Popen(
            [exe, "-c", str(d / "nginx.conf"), "-p", str(d), "-e", str(d / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("nginx did not start: " + (d / "error.log").read_text()) from None
                    time.sleep(0.05)
            yield RtmpServer(port, d)
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def capture(
    url: str, path: Path, *, seconds: float, timeout: float = 10.0
) -> list[tuple[float, bytes, bool]]:
    """Remux ``seconds`` of ``url`` into ``path`` (Matroska), from its first video keyframe (at
    time 0 in the file); returns the video packets as (pts seconds, AVCC data, keyframe)."""
    packets: list[tuple[float, bytes, bool]] = []
    with av.open(url, timeout=timeout) as src, av.open(str(path), "w", format="matroska") as dst:
        mapping: dict[int, Any] = {}
        for s in (*src.streams.video, *src.streams.audio):
            mapping[s.index] = dst.add_stream_from_template(s)
        start: float | None = None
        started = not src.streams.video
        for pkt in src.demux(*[s for s in src.streams if s.index in mapping]):
            if pkt.pts is None or pkt.time_base is None or pkt.size == 0:
                continue
            t = float(pkt.pts * pkt.time_base)
            is_video = pkt.stream.type == "video"
            if not started:
                if not (is_video and pkt.is_keyframe):
                    continue
                started = True
            if start is None:
                start = t
            if t - start > seconds:
                break
            if is_video:
                packets.append((t, bytes(pkt), bool(pkt.is_keyframe)))
            if t < start:
                continue  # audio from before the first keyframe
            shift = round(start / pkt.time_base)  # the file starts at 0
            pkt.pts -= shift
            if pkt.dts is not None:
                pkt.dts -= shift
            pkt.stream = mapping[pkt.stream.index]
            dst.mux(pkt)
    return packets


def avcc_nals(data: bytes) -> list[bytes]:
    """The NAL units of an AVCC (4-byte length-prefixed) access unit, as FLV carries them."""
    out: list[bytes] = []
    i = 0
    while i + 4 <= len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        out.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    return out
