"""Cost of ``select_stream_type`` on an individual recording: copying the H.264 stream as sent
(FHD) against scaling it down to the HD, SD and LD levels (decode + scale + libx264).

Prints figures, asserts nothing.  Run: ``.venv/bin/python bench/individual_scaling.py
[--seconds 10] [--size 1280x720]``.  Pre-encoded camera-like H.264 (a moving gradient, 15 fps,
a keyframe every 2 s) goes through the per-user pipeline (``_Lanes`` -> fragmented MP4, then
finalized) as fast as it can; CPU seconds per media second = cores per real-time recording.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from roomcast.api.sparkrtc.jobs import STREAM_LEVELS
from roomcast.domain.recording import FileNaming, OutputFormat, RecordingSpec, VideoEncoding, validate_spec
from roomcast.media.individual import _Item, _Lanes
from roomcast.media.outputs import OutputContext

FPS = 15


def camera_h264(width: int, height: int, seconds: float) -> list[tuple[bytes, int, bool]]:
    enc: Any = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = Fraction(1, 90000)
    enc.gop_size = 2 * FPS
    enc.bit_rate = 1_500_000
    enc.options = {"preset": "veryfast", "tune": "zerolatency"}
    yy, xx = np.mgrid[0:height, 0:width]
    out: list[tuple[bytes, int, bool]] = []
    for i in range(int(seconds * FPS)):
        luma = ((xx + yy + i * 4) % 220 + 16).astype(np.uint8)
        planes = np.concatenate([luma, np.full((height // 2, width), 128, np.uint8)])
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = i * 90000 // FPS
        out += [(bytes(p), int(p.pts), bool(p.is_keyframe)) for p in enc.encode(frame)]
    out += [(bytes(p), int(p.pts), bool(p.is_keyframe)) for p in enc.encode(None)]
    return out


def run(packets: list[tuple[bytes, int, bool]], level: str, root: Path) -> tuple[float, tuple[int, int]]:
    height, kbps = STREAM_LEVELS[level]
    video = VideoEncoding(max_height=height, bitrate_kbps=kbps) if height else VideoEncoding()
    spec = validate_spec(RecordingSpec(outputs=(OutputFormat.MP4,), video=video))

    def make_ctx() -> OutputContext:
        return OutputContext(root, FileNaming(f"{level}/{{user_id}}"), {"user_id": "u"}, time.time())

    lanes = _Lanes(spec, make_ctx, want_audio=False, want_video=True)
    items = [
        _Item(pts / 90000, i, "video", data, "h264", key, pts) for i, (data, pts, key) in enumerate(packets)
    ]
    start = time.process_time()
    for i in range(0, len(items), 30):
        lanes.process(items[i : i + 30])
    for key in list(lanes.sets):
        lanes._close_set(key, items[-1].t)
    cpu = time.process_time() - start
    (info,) = lanes.completed
    return cpu, (info.width or 0, info.height or 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    packets = camera_h264(width, height, args.seconds)
    print(f"source {width}x{height} {FPS} fps H.264, {args.seconds:.0f} s of media")
    with tempfile.TemporaryDirectory() as tmp:
        for level in ("FHD", "HD", "SD", "LD"):
            cpu, size = run(packets, level, Path(tmp))
            print(
                f"{level:>3}: recorded {size[0]}x{size[1]}, {cpu:.2f} CPU s, "
                f"{cpu / args.seconds:.3f} cores per real-time recording"
            )


if __name__ == "__main__":
    main()
