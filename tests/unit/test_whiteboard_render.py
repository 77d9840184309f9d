"""The whiteboard renderer (Skia): shapes where the protocol puts them, eraser, undo, pages,
backgrounds, letterboxing by ratio, and the board's timeline as a video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from roomcast.domain.errors import InvalidArgument
from roomcast.domain.whiteboard import Board, normalize_op
from roomcast.media.whiteboard import BoardRenderer, parse_ratio, write_board_video


def ops(*raw: dict[str, Any], user: str = "u", t0: int = 0, step: int = 0) -> list[dict[str, Any]]:
    """Accepted operations (seq from 1, one every ``step`` ms from ``t0``); shapes on page 1."""
    out = []
    for n, r in enumerate(raw, 1):
        body = {"op_id": f"o{n}", **r}
        if r["kind"] not in ("undo", "redo"):
            body.setdefault("page", "1")
        out.append({**normalize_op(body), "seq": n, "t": t0 + n * step, "user_id": user})
    return out


def px(frame: np.ndarray, x: float, y: float, r: BoardRenderer) -> tuple[int, int, int]:
    """The pixel at page fraction (x, y)."""
    X = int(r.page.left() + x * r.page.width())
    Y = int(r.page.top() + y * r.page.height())
    return tuple(int(v) for v in frame[Y, X])  # type: ignore[return-value]


def close(c: tuple[int, int, int], want: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(c, want, strict=True))


def test_shapes_land_where_the_protocol_says() -> None:
    r = BoardRenderer(640, 360)
    board = Board.replay(
        ops(
            {"kind": "pen", "points": [[0.1, 0.2], [0.4, 0.2]], "color": "#ff0000", "width": 10},
            {
                "kind": "rect",
                "points": [[0.5, 0.5], [0.9, 0.9]],
                "color": "#0000ff",
                "width": 4,
                "fill": "#00ff00",
            },
            {"kind": "ellipse", "points": [[0.1, 0.5], [0.3, 0.9]], "color": "#000000", "width": 4},
            {"kind": "text", "points": [[0.6, 0.05]], "text": "Hi", "size": 60, "color": "#000000"},
        )
    )
    f = r.render(board)
    assert f.shape == (360, 640, 3)
    assert close(px(f, 0.25, 0.2, r), (255, 0, 0))
    assert close(px(f, 0.25, 0.3, r), (255, 255, 255))
    assert close(px(f, 0.7, 0.7, r), (0, 255, 0))  # the fill
    assert close(px(f, 0.5, 0.7, r), (0, 0, 255), 80)  # the border
    assert close(px(f, 0.2, 0.5, r), (0, 0, 0), 120)  # top of the ellipse
    assert close(px(f, 0.2, 0.7, r), (255, 255, 255))  # inside it, unfilled
    text = f[int(0.05 * 360) : int(0.15 * 360), int(0.6 * 640) : int(0.7 * 640)]
    assert (text.min(axis=2) < 80).sum() > 50  # dark glyph pixels
    # Anti-aliased: the stroke's edge has intermediate shades.
    column = f[int(0.2 * 360) - 8 : int(0.2 * 360) + 8, int(0.25 * 640), 1]
    assert any(20 < v < 235 for v in column)


def test_eraser_undo_clear_pages_and_background() -> None:
    bg = np.zeros((90, 160, 4), np.uint8)
    bg[..., 2] = 255  # blue
    bg[..., 3] = 255
    r = BoardRenderer(320, 180, images=lambda url: bg if url == "https://x/bg.png" else None)
    log = ops(
        {"kind": "background", "url": "https://x/bg.png"},
        {"kind": "line", "points": [[0.1, 0.5], [0.9, 0.5]], "color": "#ff0000", "width": 20},
        {"kind": "eraser", "points": [[0.5, 0.3], [0.5, 0.7]], "width": 40},
    )
    f = r.render(Board.replay(log))
    assert close(px(f, 0.2, 0.5, r), (255, 0, 0))
    assert close(px(f, 0.5, 0.5, r), (0, 0, 255))  # erased down to the background, not white
    f = r.render(Board.replay([*log, {**ops({"kind": "undo"})[0], "seq": 4, "op_id": "u1"}]))
    assert close(px(f, 0.5, 0.5, r), (255, 0, 0))  # the eraser undone
    more = [
        *log,
        {**normalize_op({"op_id": "c", "kind": "clear", "page": "1"}), "seq": 4, "t": 0, "user_id": "u"},
    ]
    f = r.render(Board.replay(more))
    assert close(px(f, 0.2, 0.5, r), (0, 0, 255))
    more.append(
        {**normalize_op({"op_id": "p", "kind": "page_add", "page": "2"}), "seq": 5, "t": 0, "user_id": "u"}
    )
    assert close(px(r.render(Board.replay(more)), 0.2, 0.5, r), (255, 255, 255))


def test_ratio_letterbox() -> None:
    r = BoardRenderer(400, 400, parse_ratio("4:3"))
    f = r.render(Board())
    assert close(tuple(f[200, 200]), (255, 255, 255), 1)  # type: ignore[arg-type]
    assert close(tuple(f[5, 200]), (224, 224, 224), 1)  # type: ignore[arg-type]
    assert r.page.height() == pytest.approx(300)
    assert parse_ratio("x:y") == (16, 9) and parse_ratio("1:1") == (1, 1)


def test_invalid_ops_are_refused() -> None:
    for bad in (
        {"kind": "pen", "op_id": "a b", "page": "1", "points": [[0, 0]]},
        {"kind": "pen", "op_id": "a", "page": "1", "points": [[0, 0]], "width": 0},
        {"kind": "pen", "op_id": "a", "page": "1", "points": [[True, 0]]},
        {"kind": "background", "op_id": "a", "page": "1", "url": "file:///etc/passwd"},
    ):
        with pytest.raises(InvalidArgument):
            normalize_op(bad)


def test_timeline_video(tmp_path: Path) -> None:
    log = ops(
        {"kind": "rect", "points": [[0, 0], [1, 1]], "color": "#ff0000", "width": 1, "fill": "#ff0000"},
        {"kind": "rect", "points": [[0, 0], [1, 1]], "color": "#0000ff", "width": 1, "fill": "#0000ff"},
        t0=0,
        step=1000,
    )  # red at 1 s, blue at 2 s
    r = BoardRenderer(160, 90)
    res = write_board_video(tmp_path / "wb.mp4", log, [(0, 1500), (2000, 3000)], r, fps=10)
    assert res.frames == 25 and res.duration_ms == 2500 and res.size > 0
    with av.open(str(res.path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 25
    mid = [tuple(int(v) for v in f[45, 80]) for f in frames]
    assert close(mid[5], (255, 255, 255))  # 0.5 s: empty
    assert close(mid[12], (255, 0, 0))  # 1.2 s: red
    assert close(mid[20], (0, 0, 255))  # 2.5 s (after the skipped span): blue
