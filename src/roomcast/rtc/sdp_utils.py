"""Tiny SDP helpers (no full parser needed)."""

from __future__ import annotations


def media_sections(sdp: str) -> list[tuple[str, str]]:
    """``(mid, media)`` for each m-line that carries audio or video, in order."""
    out: list[tuple[str, str]] = []
    media: str | None = None
    index = -1
    mid: str | None = None

    def flush() -> None:
        if media in ("audio", "video"):
            out.append((mid if mid is not None else str(index), media))

    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if index >= 0:
                flush()
            index += 1
            media = line[2:].split(" ", 1)[0]
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[6:]
    if index >= 0:
        flush()
    return out
