"""The normalized relay request: what is pushed (a mix, or one user's stream) and where (RTMP URLs).

Plain frozen dataclasses, no I/O, no vendor names.  A relay is a task like a recording
(``services/relays.py``); its spec is stored as versioned JSON (:func:`relay_to_json`) and read
back on restart or take-over.  The mix part reuses :class:`~roomcast.domain.recording.RecordingSpec`
(mode ``mixed``: users, layout, encodings, extra rooms), so the mixer runs unchanged.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import InvalidArgument
from .jsondata import decode, encode
from .recording import MediaSelection, RecordingMode, RecordingSpec, validate_spec

__all__ = [
    "MAX_OUTPUTS",
    "RELAY_SPEC_VERSION",
    "FeedbackRoom",
    "LayoutSei",
    "PassThroughSei",
    "RelaySource",
    "RelaySpec",
    "SeiSettings",
    "SingleStream",
    "relay_from_json",
    "relay_to_json",
    "validate_relay",
]

MAX_OUTPUTS: Final = 10
RELAY_SPEC_VERSION: Final = 1
RTMP_SCHEMES: Final = ("rtmp://", "rtmps://")


class RelaySource(enum.StrEnum):
    MIX = "mix"  # the mixer's picture and audio mix, encoded by the relay
    SINGLE = "single"  # one user's stream: H.264 copied, audio to AAC


@dataclass(frozen=True, slots=True)
class SingleStream:
    user_id: str
    room_id: str | None = None  # None: the task's room
    stream: str = "camera"  # camera | screen


@dataclass(frozen=True, slots=True)
class LayoutSei:
    """The volume-layout SEI: JSON with the canvas, each mixed user's region and volume."""

    app_data: str = ""
    payload_type: int = 100
    interval_ms: int = 1000
    follow_idr: bool = False


@dataclass(frozen=True, slots=True)
class PassThroughSei:
    """A fixed payload sent as SEI; ``uuid`` (16 bytes as 32 hex digits) for payload type 5."""

    payload: str
    payload_type: int
    uuid: str | None = None
    interval_ms: int = 1000
    follow_idr: bool = False


@dataclass(frozen=True, slots=True)
class SeiSettings:
    layout: LayoutSei | None = None
    pass_through: PassThroughSei | None = None

    @property
    def enabled(self) -> bool:
        return self.layout is not None or self.pass_through is not None


@dataclass(frozen=True, slots=True)
class FeedbackRoom:
    """A room (same app) the relay is published into, by the robot ``user_id``."""

    room_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class RelaySpec:
    source: RelaySource = RelaySource.MIX
    mix: RecordingSpec = field(default_factory=lambda: RecordingSpec(mode=RecordingMode.MIXED))
    """Users, layout, video/audio encodings and media selection (mode ``mixed``).  A single
    stream relay uses its ``audio`` encoding and ``media`` only."""
    single: SingleStream | None = None
    outputs: tuple[str, ...] = ()
    """RTMP(S) URLs the stream is pushed to."""
    sei: SeiSettings = SeiSettings()
    audio_in_layout_only: bool = False
    """Mix: only users the layout places are heard (a custom layout whose slots are all taken
    neither shows nor plays anyone else)."""
    feedback: tuple[FeedbackRoom, ...] = ()
    """Rooms the relay is published into as a robot participant (mix relays only)."""
    max_idle_s: float = 30.0
    """The task ends when no mixed user has been in the room(s) for this long."""

    @property
    def media(self) -> MediaSelection:
        return self.mix.media


def relay_to_json(spec: RelaySpec) -> dict[str, Any]:
    return {"v": RELAY_SPEC_VERSION, **encode(RelaySpec, spec, "relay")}


def relay_from_json(data: Mapping[str, Any]) -> RelaySpec:
    if not isinstance(data, Mapping) or data.get("v") != RELAY_SPEC_VERSION:
        raise InvalidArgument("unsupported relay spec version", subject="relay.v")
    spec: RelaySpec = decode(RelaySpec, {k: v for k, v in data.items() if k != "v"}, "relay")
    return spec


_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")


def _fail(subject: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, subject=subject)


def validate_relay(spec: RelaySpec) -> RelaySpec:
    """Check a relay spec; ``InvalidArgument.subject`` names the field."""
    if spec.mix.mode is not RecordingMode.MIXED:
        raise _fail("mix.mode", "a relay's mix settings use the mixed mode")
    validate_spec(spec.mix)
    if spec.source is RelaySource.SINGLE:
        if spec.single is None or not spec.single.user_id:
            raise _fail("single", "a single-stream relay names its user")
        if spec.single.stream not in ("camera", "screen"):
            raise _fail("single.stream", "the stream is camera or screen")
    if not spec.outputs and not spec.feedback:
        raise _fail("outputs", "a relay pushes to RTMP URLs, feedback rooms or both")
    if len(spec.feedback) > MAX_OUTPUTS:
        raise _fail("feedback", f"at most {MAX_OUTPUTS} feedback rooms")
    if len({f.room_id for f in spec.feedback}) != len(spec.feedback):
        raise _fail("feedback", "feedback rooms repeat")
    if any(not f.room_id or not f.user_id for f in spec.feedback):
        raise _fail("feedback", "a feedback room needs a room id and a robot user id")
    if spec.feedback and spec.source is not RelaySource.MIX:
        raise _fail("feedback", "only a mix is published into rooms")
    if len(spec.outputs) > MAX_OUTPUTS:
        raise _fail("outputs", f"at most {MAX_OUTPUTS} RTMP URLs")
    if len(set(spec.outputs)) != len(spec.outputs):
        raise _fail("outputs", "RTMP URLs repeat")
    for url in spec.outputs:
        if not url.lower().startswith(RTMP_SCHEMES):
            raise _fail("outputs", "only rtmp:// and rtmps:// URLs are pushed to")
    for name, sei in (("sei.layout", spec.sei.layout), ("sei.pass_through", spec.sei.pass_through)):
        if sei is None:
            continue
        if not (sei.payload_type == 5 or 100 <= sei.payload_type <= 254) or sei.payload_type == 244:
            raise _fail(f"{name}.payload_type", "SEI payload types are 5 or 100-254 (244 is reserved)")
        if not 100 <= sei.interval_ms <= 600_000:
            raise _fail(f"{name}.interval_ms", "the SEI interval is 100 ms to 10 minutes")
    pt = spec.sei.pass_through
    if pt is not None and pt.payload_type == 5 and not (pt.uuid and _HEX32.match(pt.uuid)):
        raise _fail("sei.pass_through.uuid", "payload type 5 needs a 32-digit hexadecimal UUID")
    if spec.sei.layout is not None and spec.sei.layout.payload_type == 5:
        raise _fail("sei.layout.payload_type", "the layout SEI uses payload types 100-254")
    if not 5 <= spec.max_idle_s <= 86400:
        raise _fail("max_idle_s", "the idle time is 5 s to 24 h")
    return spec
