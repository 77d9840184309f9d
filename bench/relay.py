"""Relay benchmark: CPU of one 720p30 transcoded mix relay and of one single-stream (copy) relay,
and the publisher-to-RTMP-viewer latency of each, against a real nginx-rtmp on loopback.

Run: ``.venv/bin/python bench/relay.py`` (about 40 s; needs nginx with libnginx-mod-rtmp).

What it does:

* Pre-encodes ``--seconds`` of two synthetic users (``media.testpattern``, H.264 640x360@15 and
  Opus) once, with **one** white flash (0.5 s) for user u1 at ``--flash`` seconds (no other flashes).
* A replay source (bench/mixing.py) hands the packets out in real time, as the SFU would.
* Runs a :class:`~roomcast.media.relay.RelayJob`: a grid mix at ``--size`` (libx264 veryfast,
  AAC) or u1's stream copied (H.264 as is, Opus to AAC), pushed to nginx through the ffmpeg
  client process; CPU is this process plus its children (the RTMP client), from ``getrusage``.
* A PyAV player reads the stream back from nginx and decodes it; the latency is the time from
  the replay source handing out the flash frame to the player decoding it (u1's pane in the mix).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mixing import Encoded, ReplaySource, encode_inputs
from tests.support.rtmp import rtmp_server

from roomcast.domain.recording import MediaSelection, RecordingMode, RecordingSpec, VideoEncoding
from roomcast.domain.relay import RelaySource, RelaySpec, SingleStream
from roomcast.media.relay import RelayJob
from roomcast.media.testpattern import PatternVideoTrack
from roomcast.rtc.track import TrackInfo, TrackKind


def with_one_flash(inputs: list[Encoded], flash_s: float, seconds: float) -> list[Encoded]:
    """u1's video again, without the pattern's flashes but with one white frame at ``flash_s``."""
    out = [e for e in inputs if not (e.info.user_id == "u1" and e.info.kind is TrackKind.CAMERA)]
    fps = 15
    track = PatternVideoTrack("u1", width=640, height=360, fps=fps, realtime=False, flash=False)
    enc: Any = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 640, 360, "yuv420p"
    enc.time_base = Fraction(1, 90_000)
    enc.framerate = fps
    enc.bit_rate = 600_000
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": f"keyint={fps * 2}"}
    white = av.VideoFrame.from_ndarray(np.full((360, 640, 3), 255, np.uint8), format="rgb24").reformat(
        format="yuv420p"
    )
    pkts: list[tuple[bytes, int, bool]] = []
    for i in range(round(seconds * fps)):
        frame = track.render(i)
        if round(flash_s * fps) <= i < round((flash_s + 0.5) * fps):  # 0.5 s: survives a late frame
            white.pts, white.time_base = frame.pts, frame.time_base
            frame = white
        for p in enc.encode(frame):
            pkts.append((bytes(p), int(p.pts), bool(p.is_keyframe)))
    for p in enc.encode(None):
        pkts.append((bytes(p), int(p.pts), bool(p.is_keyframe)))
    info = TrackInfo("bench", "room", "u1", TrackKind.CAMERA, "video/H264")
    out.append(Encoded(info, pkts, Fraction(1, 90_000), 1 / fps))
    return out


def watch(url: str, region: tuple[float, float, float, float], until: float) -> None:
    """The player (run as a child process, so that its decoding is not counted): decodes ``url``
    and prints the ``time.monotonic()`` (system-wide) of the first mostly white ``region``."""
    # No probing (it would buffer seconds of stream before the first frame is decoded).
    low_delay = {"fflags": "nobuffer", "probesize": "500000", "analyzeduration": "500000"}
    while True:  # the stream may not be there yet (a loaded machine starts the client late)
        try:
            c = av.open(url, timeout=10, options=low_delay)
            break
        except av.error.FFmpegError:
            if time.monotonic() > until:
                return
            time.sleep(0.2)
    with c:
        frames: Any = (f for pkt in c.demux() if pkt.stream.type == "video" for f in pkt.decode())
        for frame in frames:
            plane: Any = frame.planes[0]  # luma (limited range: white is 235), read in place
            img = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
            h, w = img.shape
            x, y, rw, rh = region
            part = img[int(y * h) : int((y + rh) * h), int(x * w) : int((x + rw) * w)]
            if float((part > 210).mean()) > 0.6:
                print(time.monotonic(), flush=True)
                return
            if time.monotonic() > until:
                return


async def run(
    kind: str, inputs: list[Encoded], args: argparse.Namespace, url: str
) -> tuple[float, float | None]:
    w, h = (int(v) for v in args.size.split("x"))
    if kind == "mix":
        spec = RelaySpec(
            source=RelaySource.MIX,
            mix=RecordingSpec(
                mode=RecordingMode.MIXED, video=VideoEncoding(w, h, args.fps, args.bitrate, 2.0, "veryfast")
            ),
            outputs=(url,),
        )
        region = (0.05, 0.3, 0.4, 0.4)  # u1's half of the grid
    else:
        spec = RelaySpec(
            source=RelaySource.SINGLE,
            mix=RecordingSpec(
                mode=RecordingMode.MIXED, media=MediaSelection.AUDIO_VIDEO, video=VideoEncoding(640, 360)
            ),
            single=SingleStream("u1"),
            outputs=(url,),
        )
        region = (0.2, 0.2, 0.6, 0.6)
    source = ReplaySource(inputs)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    rc0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    job = RelayJob(f"bench-{kind}", "bench", "room", spec, source)
    await job.start()
    await asyncio.sleep(1.5)
    until = source.start + args.seconds - 1
    player = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--watch",
        url,
        *(str(v) for v in region),
        str(until),
        stdout=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(max(0.0, until - time.monotonic()))
    await job.stop()
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    rc1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the RTMP clients, not the player yet
    cpu = sum(
        getattr(b, f) - getattr(a, f) for a, b in ((ru0, ru1), (rc0, rc1)) for f in ("ru_utime", "ru_stime")
    )
    out, _ = await player.communicate()
    text = out.decode().strip()
    latency = float(text) - (source.start + args.flash) if text else None
    return cpu / wall, latency


async def main() -> None:
    if sys.argv[1:2] == ["--watch"]:
        url, x, y, w, h, until = sys.argv[2:8]
        watch(url, (float(x), float(y), float(w), float(h)), float(until))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=2000, help="kbps")
    ap.add_argument("--seconds", type=float, default=14.0)
    ap.add_argument("--flash", type=float, default=8.0, help="when u1 flashes (s)")
    args = ap.parse_args()
    print("inputs: 2 x H.264 640x360@15 + Opus, replayed in real time")
    inputs = encode_inputs(640, 360, 15, args.seconds + 2)
    inputs = [e for e in inputs if e.info.user_id in ("u1", "u2")]
    inputs = with_one_flash(inputs, args.flash, args.seconds + 2)
    with rtmp_server() as srv:
        for kind in ("mix", "copy"):
            cpu, latency = await run(kind, inputs, args, srv.url(f"bench-{kind}"))
            what = (
                f"mix {args.size}@{args.fps} veryfast" if kind == "mix" else "copy of u1 (H.264 as is, AAC)"
            )
            lat = f"{latency * 1000:.0f} ms" if latency is not None else "flash not seen"
            print(f"{what:40s} CPU {cpu * 100:5.1f} % of a core   publisher->viewer latency {lat}")


if __name__ == "__main__":
    asyncio.run(main())
