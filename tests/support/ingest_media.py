"""Media for stream ingest tests: files with a colour per second and a beep per second, an HLS
playlist, and a local HTTP server that serves them (with byte ranges, as players expect)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import numpy as np

# Second k shows COLOURS[k % len(COLOURS)]; far apart in RGB so a subscriber tells them apart.
COLOURS: tuple[tuple[int, int, int], ...] = (
    (220, 30, 30),
    (30, 200, 40),
    (40, 60, 230),
    (230, 220, 30),
    (220, 40, 220),
    (30, 210, 220),
    (250, 250, 250),
    (120, 60, 10),
)
BEEP_HZ = 1000
BEEP_S = 0.1


def make_media(
    path: Path,
    seconds: int,
    *,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
    codec: str = "libx264",
    b_frames: bool = False,
    audio_codec: str = "aac",
    fmt: str | None = None,
) -> Path:
    """A clip where second ``k`` is ``COLOURS[k]`` with a beep starting at ``k`` s (1 s GOP)."""
    width, height = size
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        vs.time_base = Fraction(1, fps)
        vs.codec_context.gop_size = fps
        if codec == "libx264":
            vs.codec_context.options = {"preset": "ultrafast", "bf": "2" if b_frames else "0"}
            if b_frames:
                vs.codec_context.options = {"preset": "medium", "bf": "2"}
        rate = 48000 if audio_codec == "libopus" else 44100
        as_ = out.add_stream(audio_codec, rate=rate)
        as_.layout = "stereo"
        for i in range(seconds * fps):
            rgb = np.zeros((height, width, 3), np.uint8)
            rgb[:, :] = COLOURS[(i // fps) % len(COLOURS)]
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        chunk = 1024
        total = seconds * rate
        t = np.arange(total) / rate
        tone = (0.5 * np.sin(2 * np.pi * BEEP_HZ * t) * ((t % 1.0) < BEEP_S)).astype(np.float32)
        fmt_name = as_.codec_context.format.name if as_.codec_context.format else "fltp"
        for start in range(0, total, chunk):
            seg = tone[start : start + chunk]
            planar = np.vstack([seg, seg])
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
            frame.sample_rate = rate
            frame.pts = start
            if fmt_name != "fltp":
                frame = av.AudioResampler(format=fmt_name, layout="stereo", rate=rate).resample(frame)[0]
                frame.pts = start
            for p in as_.encode(frame):
                out.mux(p)
        for p in as_.encode():
            out.mux(p)
    return path


def make_hls(directory: Path, source: Path, segment_s: int = 1) -> Path:
    """An HLS VOD playlist (MPEG-TS segments) remuxed from ``source``."""
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / "index.m3u8"
    with av.open(str(source)) as inp:
        options = {"hls_time": str(segment_s), "hls_playlist_type": "vod", "hls_list_size": "0"}
        with av.open(str(playlist), "w", format="hls", options=options) as out:
            streams = {}
            for s in (inp.streams.video[0], inp.streams.audio[0]):
                streams[s.index] = out.add_stream_from_template(s)
            for packet in inp.demux():
                if packet.dts is None:
                    continue
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return playlist


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        """Byte ranges (``Range: bytes=a-``), which FFmpeg uses to seek in MP4 over HTTP."""
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file() or not rng.startswith("bytes="):
            return super().send_head()
        size = path.stat().st_size
        first, _, last = rng[6:].partition("-")
        start = int(first or 0)
        end = min(int(last) if last else size - 1, size - 1)
        if start >= size:
            self.send_error(416)
            return None
        f = path.open("rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Limited(f, end - start + 1)


class _Limited:
    def __init__(self, f: object, n: int) -> None:
        self._f = f
        self._left = n

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size < 0 else min(size, self._left)
        data: bytes = self._f.read(want)  # type: ignore[attr-defined]
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()  # type: ignore[attr-defined]


@contextmanager
def media_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1; yields the base URL."""
    handler = partial(_Quiet, directory=str(directory))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
