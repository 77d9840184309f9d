"""Media for stream ingest tests: files with a colour per second and a beep per second, an HLS
playlist, and a local HTTP server that serves them (with byte ranges, as players expect)."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
from aiortc.mediastreams import MediaStreamError

from roomcast.rtc.aiortc_compat import PacketInfo
from roomcast.rtc.client import MediaCounter, ReceivedTrack, RoomClient
from roomcast.rtc.track import SenderReport

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
    first_colour: int = 0,
    texture: bool = False,
    bitrate_kbps: int | None = None,
) -> Path:
    """A clip where second ``k`` is ``COLOURS[first_colour + k]`` with a beep starting at ``k`` s
    (1 s GOP)."""
    width, height = size
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        vs.time_base = Fraction(1, fps)
        vs.codec_context.gop_size = fps
        if bitrate_kbps:
            vs.bit_rate = bitrate_kbps * 1000
        if codec == "libx264":
            vs.codec_context.options = {"preset": "ultrafast", "bf": "2" if b_frames else "0"}
            if b_frames:
                vs.codec_context.options = {"preset": "medium", "bf": "2"}
        rate = 48000 if audio_codec == "libopus" else 44100
        as_ = out.add_stream(audio_codec, rate=rate)
        as_.layout = "stereo"
        # texture: a moving grain over the colour, so encoders work as on camera content.
        grain = np.random.default_rng(1).integers(-24, 24, (height + 64, width + 64, 1), dtype=np.int16)
        for i in range(seconds * fps):
            rgb = np.zeros((height, width, 3), np.uint8)
            rgb[:, :] = COLOURS[(first_colour + i // fps) % len(COLOURS)]
            if texture:
                dx, dy = (3 * i) % 64, (2 * i) % 64
                moved = rgb.astype(np.int16) + grain[dy : dy + height, dx : dx + width]
                rgb = np.clip(moved, 0, 255).astype(np.uint8)
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
    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

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


# ------------------------------------------------------------------ what a subscriber receives


@dataclass
class Received:
    """One packet as a WebRTC subscriber got it (passthrough: still encoded)."""

    arrival: float  # time.monotonic()
    packet: av.Packet
    sender_report: SenderReport | None


class Capture(MediaCounter):
    """A :class:`MediaCounter` that also keeps every packet, per track id (use ``decode=False``)."""

    def __init__(self, client: RoomClient) -> None:
        super().__init__(lambda tr: client.mapping.get(tr.mid or ""), decode=False)
        self.packets: dict[str, list[Received]] = {}

    async def _read(self, tr: Any, track: Any) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                key = self._key_for(tr)
                if key is None or not isinstance(frame, av.Packet):
                    continue
                info = frame.opaque
                sr = info.sender_report if isinstance(info, PacketInfo) else None
                self.packets.setdefault(key, []).append(Received(time.monotonic(), frame, sr))
                rt = self.tracks.setdefault(key, ReceivedTrack(key=key, kind=tr.kind))
                rt.frames += 1
                self._changed.set()

    def sender_time(self, key: str, rec: Received) -> float:
        """The sender's wall clock for a packet, from the track's latest sender report (the
        mapping browsers use for lip sync)."""
        last = next((r.sender_report for r in reversed(self.packets[key]) if r.sender_report), None)
        if last is None:
            raise AssertionError(f"{key}: no RTCP sender report received")
        rate = 90000 if rec.packet.time_base == Fraction(1, 90000) else 48000
        return last.ntp_time + (int(rec.packet.pts or 0) - last.pts) / rate


@dataclass
class Change:
    arrival: float
    sender_time: float
    colour: tuple[int, int, int]


def colour_index(rgb: tuple[int, int, int], max_distance: float = 80.0) -> int | None:
    best = min(range(len(COLOURS)), key=lambda i: math.dist(rgb, COLOURS[i]))
    return best if math.dist(rgb, COLOURS[best]) <= max_distance else None


def colour_changes(capture: Capture, key: str) -> list[tuple[int, Change]]:
    """Decoded video: each change to a palette colour, with when it arrived and was sent."""
    dec = av.CodecContext.create("h264", "r")
    out: list[tuple[int, Change]] = []
    for rec in capture.packets.get(key, []):
        try:
            frames = dec.decode(rec.packet)
        except av.error.InvalidDataError:
            continue
        for frame in frames:
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            c = tuple(
                int(x) for x in rgb[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).mean(axis=0)
            )
            idx = colour_index((c[0], c[1], c[2]))
            if idx is not None and (not out or out[-1][0] != idx):
                out.append((idx, Change(rec.arrival, capture.sender_time(key, rec), (c[0], c[1], c[2]))))
    return out


def _mono(frame: av.AudioFrame) -> np.ndarray:
    arr = frame.to_ndarray()
    x = arr[0] if frame.format.is_planar else arr.reshape(-1)[:: frame.layout.nb_channels]
    x = np.abs(x.astype(np.float32))
    return x / 32768.0 if frame.format.name.startswith("s16") else x


def beep_onsets(capture: Capture, key: str, threshold: float = 0.1) -> list[Change]:
    """Decoded audio: the start of each beep (to the sample), arrival and sender times."""
    dec = av.CodecContext.create("opus", "r")
    out: list[Change] = []
    quiet = 99
    for rec in capture.packets.get(key, []):
        for frame in dec.decode(rec.packet):
            loud = np.nonzero(_mono(frame) > threshold)[0]
            if loud.size and quiet >= 5:
                offset = loud[0] / frame.sample_rate
                out.append(Change(rec.arrival + offset, capture.sender_time(key, rec) + offset, (0, 0, 0)))
            quiet = 0 if loud.size else quiet + 1
    return out


def audio_level(capture: Capture, key: str, since: float, until: float) -> float:
    """Peak level (0..1) of the audio that arrived between two monotonic times."""
    dec = av.CodecContext.create("opus", "r")
    peak = 0.0
    for rec in capture.packets.get(key, []):
        for frame in dec.decode(rec.packet):
            if since <= rec.arrival <= until:
                peak = max(peak, float(_mono(frame).max()))
    return peak


@contextmanager
def rtmp_server(source: Path, port: int, connections: int = 3) -> Iterator[str]:
    """An RTMP server on 127.0.0.1 that plays ``source`` in real time to each client (FFmpeg's
    ``-listen 1`` takes one client, so a new one is started after each); yields its URL."""
    url = f"rtmp://127.0.0.1:{port}/live/stream"
    stop = threading.Event()
    procs: list[subprocess.Popen[bytes]] = []

    def serve() -> None:
        for _ in range(connections):
            if stop.is_set():
                return
            cmd = ["ffmpeg", "-nostdin", "-loglevel", "quiet", "-re", "-i", str(source)]
            cmd += ["-c", "copy", "-f", "flv", "-listen", "1", url]
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
            procs.append(proc)
            proc.wait()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    time.sleep(0.5)
    try:
        yield url
    finally:
        stop.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        thread.join(timeout=5)
