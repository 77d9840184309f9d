"""Track identities and the encoded packet type that flows through the SFU."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av


class TrackKind(enum.StrEnum):
    AUDIO = "audio"
    CAMERA = "camera"
    SCREEN = "screen"

    @property
    def media(self) -> str:
        """The WebRTC media kind ("audio" or "video")."""
        return "audio" if self is TrackKind.AUDIO else "video"

    @property
    def stream(self) -> StreamType:
        return StreamType.SUB if self is TrackKind.SCREEN else StreamType.MAIN


class StreamType(enum.StrEnum):
    """The vendor-neutral "main" (camera + microphone) and "sub" (screen) streams."""

    MAIN = "main"
    SUB = "sub"


def track_id(user_id: str, kind: TrackKind) -> str:
    """Track ids are stable and readable: ``<user_id>/<kind>``."""
    return f"{user_id}/{kind.value}"


def parse_track_id(value: str) -> tuple[str, TrackKind]:
    user_id, _, kind = value.rpartition("/")
    if not user_id:
        raise ValueError(f"bad track id {value!r}")
    return user_id, TrackKind(kind)


@dataclass(frozen=True, slots=True)
class TrackInfo:
    app_key: str
    room_id: str
    user_id: str
    kind: TrackKind
    codec: str  # MIME type, e.g. "video/H264"

    @property
    def track_id(self) -> str:
        return track_id(self.user_id, self.kind)

    @property
    def media(self) -> str:
        return self.kind.media


@dataclass(frozen=True, slots=True)
class SenderReport:
    """The latest RTCP sender report of a publisher track, mapped onto the track's pts.

    ``ntp_time`` is the sender's wall clock (seconds since the Unix epoch) at the moment its RTP
    clock read ``pts`` (in the track's time base).  All tracks sent by one peer connection share
    that clock, which is what lip sync needs; the clock itself may be off from ours.
    """

    ntp_time: float
    pts: int


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One encoded frame (video) or packet (audio) as received from a publisher.

    ``pts`` is in ``time_base`` units (the RTP clock, starting near 0 for the
    track). ``arrival`` is ``time.monotonic()`` and ``wallclock`` ``time.time()``
    when the SFU finished re-assembling the frame.
    """

    packet: av.Packet[Any]
    track: TrackInfo
    pts: int
    time_base: Fraction
    arrival: float
    wallclock: float
    keyframe: bool
    sender_report: SenderReport | None = None  # latest RTCP SR, when the publisher sent one

    @property
    def data(self) -> bytes:
        return bytes(self.packet)

    @property
    def size(self) -> int:
        return self.packet.size
