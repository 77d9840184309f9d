"""Whiteboard rendering and class-video benchmark (what a TIW recording costs after its stop).

Run: ``.venv/bin/python bench/whiteboard.py`` (under a minute; ``--help`` for the knobs).

Prints, in CPU time of this process (so a busy shared box does not inflate it):

* the renderer: milliseconds per board frame at the whiteboard size with a board of ``--shapes``
  pen strokes (what each change of the board costs; unchanged frames are reused);
* the whiteboard video: seconds of CPU per minute of recorded class (``write_board_video``,
  10 fps, one operation a second);
* the mixed class video (ModelId 2, 1624x1000, 15 fps, two 320x240 cameras): seconds of CPU per
  minute of class.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from roomcast.api.tiw.params import _model_layout
from roomcast.domain.whiteboard import Board, normalize_op
from roomcast.media.class_video import Clip, compose_class_video
from roomcast.media.whiteboard import BoardRenderer, write_board_video


def strokes(n: int, t0: int, step_ms: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        x, y = rng.random(), rng.random()
        pts = [[min(1, x + k * 0.01), min(1, y + 0.02 * np.sin(k / 3))] for k in range(40)]
        op = normalize_op({"op_id": f"o{i}", "kind": "pen", "page": "1", "points": pts, "width": 4})
        out.append({**op, "seq": i + 1, "t": t0 + i * step_ms, "user_id": "u"})
    return out


def camera_clip(path: Path, seconds: float, rgb: tuple[int, int, int]) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=15)
        vs.width, vs.height, vs.pix_fmt = 320, 240, "yuv420p"
        img = np.zeros((240, 320, 3), np.uint8)
        img[:] = rgb
        for i in range(int(seconds * 15)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 15)
            out.mux(vs.encode(f))
        out.mux(vs.encode())
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0, help="class length for the video figures")
    args = ap.parse_args()
    rng = random.Random(7)

    renderer = BoardRenderer(1280, 960, (4, 3))
    board = Board.replay(strokes(args.shapes, 0, 0, rng))
    renderer.render(board)
    n = 20
    t = time.process_time()
    for _ in range(n):
        renderer.render(board)
    print(f"render 1280x960, {args.shapes} strokes: {(time.process_time() - t) / n * 1000:.1f} ms/frame")

    t0 = 1_700_000_000_000
    span = [(t0, t0 + int(args.seconds * 1000))]
    ops = strokes(int(args.seconds), t0, 1000, rng)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t = time.process_time()
        write_board_video(d / "wb.mp4", ops, span, BoardRenderer(1280, 960, (4, 3)))
        cpu = time.process_time() - t
        print(f"whiteboard video 1280x960 10 fps: {cpu / args.seconds * 60:.1f} s CPU per minute of class")

        clips = [
            Clip("teacher", camera_clip(d / "a.mp4", args.seconds, (200, 40, 40)), t0),
            Clip("student", camera_clip(d / "b.mp4", args.seconds, (40, 40, 200)), t0),
        ]
        t = time.process_time()
        compose_class_video(
            d / "mix.mp4", _model_layout(2, "teacher"), clips, span, board_ops=ops, ratio=(4, 3)
        )
        cpu = time.process_time() - t
        print(
            f"mixed video 1624x1000 15 fps (ModelId 2): {cpu / args.seconds * 60:.1f} s CPU"
            " per minute of class"
        )


if __name__ == "__main__":
    main()
