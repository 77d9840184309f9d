"""Usage tiers: a minute of presence is ``Audio`` or a video tier by the resolution received.

The tier of a moment is chosen by the *aggregate* resolution a participant receives: the sum of
width x height over every video stream delivered to it then (no video: ``Audio``). The bounds are
the areas of the reference resolutions, inclusive:

======== ========================= ===============
tier     reference resolution      area up to
======== ========================= ===============
SD       640 x 480                 307 200
HD       1280 x 720                921 600
FullHD   1920 x 1080               2 073 600
2K       2560 x 1440               3 686 400
4K       above 2K                  unbounded
======== ========================= ===============

Recording and transcoding use the same bounds on the recorded or encoded picture.
"""

from __future__ import annotations

TIERS: tuple[str, ...] = ("Audio", "SD", "HD", "FullHD", "2K", "4K")
AUDIO = "Audio"
_BOUNDS: tuple[tuple[int, str], ...] = (
    (640 * 480, "SD"),
    (1280 * 720, "HD"),
    (1920 * 1080, "FullHD"),
    (2560 * 1440, "2K"),
)


def tier_of_area(area: int) -> str:
    """The tier of an aggregate received area (0: audio only)."""
    if area <= 0:
        return AUDIO
    for bound, name in _BOUNDS:
        if area <= bound:
            return name
    return "4K"


def tier_of(sizes: list[tuple[int, int]]) -> str:
    """The tier of a set of received video sizes."""
    return tier_of_area(sum(max(0, w) * max(0, h) for w, h in sizes))
