"""The room whiteboard: operations, their validation, and the board they build when replayed.

Pure data, no I/O. The wire format is documented in docs/whiteboard.md (protocol version
:data:`PROTOCOL_VERSION`). Coordinates are fractions of the page (``x`` of its width, ``y`` of
its height, both in [0, 1]) so a board renders the same at any size; lengths (``width``,
``size``) are thousandths of the page width.

Order: the server gives each accepted operation the room's next ``seq`` and its time ``t``
(milliseconds since the epoch); every client and the renderer replay operations in ``seq``
order, so all of them build the same board. ``op_id`` (chosen by the client) makes sending an
operation again harmless: the server keeps the first and answers with its ``seq``.

Undo and redo are per user: ``undo`` hides the user's latest visible drawing (or clear), ``redo``
brings back what the user's last undo hid, until the user draws something new.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import InvalidArgument

PROTOCOL_VERSION: Final = 1
FIRST_PAGE: Final = "1"

SHAPES: Final = frozenset({"pen", "line", "rect", "ellipse", "text", "eraser"})
KINDS: Final = SHAPES | {"undo", "redo", "clear", "page_add", "page_switch", "background"}
MAX_POINTS: Final = 5000
MAX_TEXT: Final = 1000
MAX_PAGES: Final = 200
MAX_URL: Final = 2048
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PAGE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_TWO_POINTS: Final = frozenset({"line", "rect", "ellipse"})


def _fail(subject: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, subject=f"whiteboard.{subject}")


def _number(op: Mapping[str, Any], name: str, lo: float, hi: float, default: float | None = None) -> float:
    value = op.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise _fail(name, f"{name} must be a number")
    if not lo <= value <= hi:
        raise _fail(name, f"{name} must be in [{lo}, {hi}]")
    return float(value)


def _points(op: Mapping[str, Any], count: int | None) -> list[list[float]]:
    raw = op.get("points")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_POINTS:
        raise _fail("points", f"points must be a list of 1 to {MAX_POINTS} [x, y] pairs")
    if count is not None and len(raw) != count:
        raise _fail("points", f"a {op['kind']} takes exactly {count} points")
    out: list[list[float]] = []
    for p in raw:
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise _fail("points", "each point is [x, y]")
        xy = []
        for v in p:
            if isinstance(v, bool) or not isinstance(v, int | float) or not -0.5 <= v <= 1.5:
                raise _fail("points", "coordinates are fractions of the page, in [-0.5, 1.5]")
            xy.append(round(float(v), 5))
        out.append(xy)
    return out


def _colour(op: Mapping[str, Any], name: str, default: str | None) -> str | None:
    value = op.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str) or not _COLOUR.match(value):
        raise _fail(name, f"{name} must be a colour #rrggbb")
    return value.lower()


def _page_id(op: Mapping[str, Any]) -> str:
    value = op.get("page")
    if not isinstance(value, str) or not _PAGE.match(value):
        raise _fail("page", "page must be an id of 1 to 32 characters [A-Za-z0-9_.-]")
    return value


def _url(op: Mapping[str, Any]) -> str | None:
    value = op.get("url")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL or not value.startswith(("http://", "https://")):
        raise _fail("url", "url must be an http(s) URL of at most 2048 characters, or null")
    return value


def parse_ratio(text: str | None, default: tuple[int, int] = (16, 9)) -> tuple[int, int]:
    """``"16:9"`` -> (16, 9); anything else -> ``default``."""
    if not text or ":" not in text:
        return default
    a, _, b = text.partition(":")
    if not (a.strip().isdigit() and b.strip().isdigit()):
        return default
    w, h = int(a), int(b)
    return (w, h) if 0 < w <= 100 and 0 < h <= 100 else default


def normalize_op(op: Any) -> dict[str, Any]:
    """A client's operation checked and reduced to its documented fields (``InvalidArgument``
    names the field otherwise). The server adds ``seq``, ``t`` and ``user_id`` afterwards."""
    if not isinstance(op, Mapping):
        raise _fail("op", "an operation is a JSON object")
    op_id = op.get("op_id")
    if not isinstance(op_id, str) or not _ID.match(op_id):
        raise _fail("op_id", "op_id must be 1 to 64 characters [A-Za-z0-9_.:-]")
    kind = op.get("kind")
    if kind not in KINDS:
        raise _fail("kind", f"kind must be one of {', '.join(sorted(KINDS))}")
    out: dict[str, Any] = {"op_id": op_id, "kind": kind}
    if kind in SHAPES:
        out["page"] = _page_id(op)
        out["points"] = _points(op, 2 if kind in _TWO_POINTS else 1 if kind == "text" else None)
        if kind == "text":
            text = op.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise _fail("text", f"text must be 1 to {MAX_TEXT} characters")
            out["text"] = text
            out["size"] = _number(op, "size", 5, 300, 40)
        else:
            out["width"] = _number(op, "width", 0.5, 200, 4)
        if kind != "eraser":
            out["color"] = _colour(op, "color", "#000000")
        if kind in ("rect", "ellipse"):
            out["fill"] = _colour(op, "fill", None)
    elif kind in ("clear", "page_add", "page_switch"):
        out["page"] = _page_id(op)
        if kind == "page_add":
            out["url"] = _url(op)
    elif kind == "background":
        out["page"] = _page_id(op)
        out["url"] = _url(op)
    return out


@dataclass
class Page:
    page_id: str
    background: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    """Shapes and clears on this page, in ``seq`` order (undone ones included)."""


@dataclass
class Board:
    """The board that a sequence of operations builds (replay them in ``seq`` order)."""

    pages: dict[str, Page] = field(default_factory=lambda: {FIRST_PAGE: Page(FIRST_PAGE)})
    current: str = FIRST_PAGE
    seq: int = 0
    undone: set[str] = field(default_factory=set)
    _done: dict[str, list[str]] = field(default_factory=dict)  # user -> their undoable op ids
    _redo: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def replay(cls, ops: Iterable[Mapping[str, Any]]) -> Board:
        board = cls()
        for op in ops:
            board.apply(op)
        return board

    def check(self, op: Mapping[str, Any]) -> None:
        """Refuse an operation that does not fit this board (unknown page, too many pages)."""
        kind = op["kind"]
        if kind == "page_add":
            if op["page"] in self.pages:
                raise _fail("page", f"page {op['page']!r} exists already")
            if len(self.pages) >= MAX_PAGES:
                raise _fail("page", f"a board has at most {MAX_PAGES} pages")
        elif "page" in op and op["page"] not in self.pages:
            raise _fail("page", f"no page {op['page']!r} on this board")

    def apply(self, op: Mapping[str, Any]) -> None:
        """Apply an accepted operation (one with ``seq`` and ``user_id``)."""
        self.seq = max(self.seq, int(op.get("seq", self.seq + 1)))
        kind = op["kind"]
        user = str(op.get("user_id", ""))
        if kind in SHAPES or kind == "clear":
            page = self.pages.get(op["page"])
            if page is None:
                return
            page.items.append(dict(op))
            self._done.setdefault(user, []).append(op["op_id"])
            self._redo.pop(user, None)
        elif kind == "undo":
            done = self._done.get(user, [])
            if done:
                op_id = done.pop()
                self.undone.add(op_id)
                self._redo.setdefault(user, []).append(op_id)
        elif kind == "redo":
            redo = self._redo.get(user, [])
            if redo:
                op_id = redo.pop()
                self.undone.discard(op_id)
                self._done.setdefault(user, []).append(op_id)
        elif kind == "page_add":
            if op["page"] not in self.pages and len(self.pages) < MAX_PAGES:
                self.pages[op["page"]] = Page(op["page"], background=op.get("url"))
                self.current = op["page"]
        elif kind == "page_switch":
            if op["page"] in self.pages:
                self.current = op["page"]
        elif kind == "background" and op["page"] in self.pages:
            self.pages[op["page"]].background = op.get("url")

    def visible(self, page_id: str | None = None) -> list[dict[str, Any]]:
        """The shapes shown on a page (the current one by default), in drawing order."""
        page = self.pages.get(page_id or self.current)
        if page is None:
            return []
        live = [i for i in page.items if i["op_id"] not in self.undone]
        start = 0
        for n, item in enumerate(live):
            if item["kind"] == "clear":
                start = n + 1
        return live[start:]
