"""Class videos made after a recording: cameras and the whiteboard in their slots at the right
times, teacher first, audio summed, and splicing across a paused span with a filler image."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from roomcast.domain.layout import Color, Rect
from roomcast.domain.whiteboard import normalize_op
from roomcast.media.class_video import BOARD, ClassLayout, Clip, Slot, compose_class_video


def make_clip(path: Path, rgb: tuple[int, int, int], seconds: float, tone_hz: float | None) -> Path:
    """A 160x120 MP4 of one colour (and a tone) lasting ``seconds``."""
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=15)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        as_ = out.add_stream("aac", rate=48000, layout="stereo") if tone_hz else None
        img = np.zeros((120, 160, 3), np.uint8)
        img[:] = rgb
        for i in range(int(seconds * 15)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 15)
            out.mux(vs.encode(f))
        if as_ is not None:
            for i in range(int(seconds * 48000 / 960)):
                t = (np.arange(960) + i * 960) / 48000
                s = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.repeat(s, 2).reshape(1, -1), format="flt", layout="stereo")
                af.sample_rate, af.pts, af.time_base = 48000, i * 960, Fraction(1, 48000)
                out.mux(as_.encode(af))
            out.mux(as_.encode())
        out.mux(vs.encode())
    return path


def at(frames: list[np.ndarray], second: float, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(v) for v in frames[int(second * 15)][y, x])


def near(c: tuple[int, ...], want: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(c, want, strict=True))


def test_mixed_class_video(tmp_path: Path) -> None:
    t0 = 1_700_000_000_000
    student = make_clip(tmp_path / "s.mp4", (255, 0, 0), 3, 440)
    teacher = make_clip(tmp_path / "t.mp4", (0, 0, 255), 1.2, 880)
    layout = ClassLayout(
        width=480,
        height=240,
        slots=(
            Slot(Rect(0, 0, 320, 240), BOARD),
            Slot(Rect(320, 0, 160, 120)),
            Slot(Rect(320, 120, 160, 120)),
        ),
        background=Color(0x34, 0x36, 0x3B),
        teacher="teach",
    )
    line = normalize_op(
        {"op_id": "a", "kind": "rect", "page": "1", "points": [[0, 0], [1, 1]], "fill": "#00ff00"}
    )
    ops = [{**line, "seq": 1, "t": t0 + 1500, "user_id": "u"}]
    res = compose_class_video(
        tmp_path / "mix.mp4",
        layout,
        [Clip("stud", student, t0), Clip("teach", teacher, t0 + 1000)],
        [(t0, t0 + 3000)],
        board_ops=ops,
        ratio=(4, 3),
    )
    assert res.frames == 45 and (res.width, res.height) == (480, 240)
    with av.open(str(res.path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        c.seek(0)
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert len(frames) == 45
    assert near(at(frames, 0.5, 400, 180), (255, 0, 0))  # the student: the first slot is the teacher's
    assert near(at(frames, 0.5, 400, 60), (0x34, 0x36, 0x3B), 12)
    assert near(at(frames, 0.5, 160, 120), (255, 255, 255))  # the empty board
    assert near(at(frames, 1.4, 400, 180), (255, 0, 0))  # a slot is kept while its user is there
    assert near(at(frames, 1.4, 400, 60), (0, 0, 255))  # the teacher came: the teacher's slot
    assert near(at(frames, 2.0, 160, 120), (0, 255, 0))  # the board's rectangle, from 1.5 s
    assert near(at(frames, 2.6, 400, 60), (0x34, 0x36, 0x3B), 12)  # the teacher's clip ended
    assert np.abs(pcm).max() > 0.2  # the tones


def test_splice_across_a_pause_with_filler(tmp_path: Path) -> None:
    t0 = 1_700_000_000_000
    a = make_clip(tmp_path / "a.mp4", (255, 0, 0), 1, None)
    b = make_clip(tmp_path / "b.mp4", (0, 0, 255), 1, None)
    filler = np.zeros((10, 10, 4), np.uint8)
    filler[..., 1] = 255
    filler[..., 3] = 255
    layout = ClassLayout(160, 120, (Slot(Rect(0, 0, 160, 120)),), filler=True)
    res = compose_class_video(
        tmp_path / "spliced.mp4",
        layout,
        [Clip("u", a, t0), Clip("u", b, t0 + 3000)],
        [(t0, t0 + 1500), (t0 + 2500, t0 + 4000)],  # paused from 1.5 s to 2.5 s
        filler=filler,
        audio=False,
    )
    assert res.duration_ms == 3000
    with av.open(str(res.path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert near(at(frames, 0.5, 80, 60), (255, 0, 0))
    assert near(at(frames, 1.2, 80, 60), (0, 255, 0))  # no video (1.0-1.5 s, 2.5-3.0 s): the filler
    assert near(at(frames, 2.5, 80, 60), (0, 0, 255))  # wall time 3.5 s
