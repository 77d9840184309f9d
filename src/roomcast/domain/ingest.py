"""Stream ingest tasks: what to pull, how to play it and how to encode it (no vendor fields)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from roomcast.domain.errors import InvalidArgument

SPEC_VERSION = 1
FOREVER = -1
MAX_REPEATS = 1000
MAX_DURATION_S = 10080 * 60


@dataclass(frozen=True)
class VideoEncoding:
    """Transcode video to this (None fields: keep the source's)."""

    width: int | None = None
    height: int | None = None
    fps: int | None = None
    bitrate_kbps: int | None = None
    gop_s: int | None = None


@dataclass(frozen=True)
class AudioEncoding:
    sample_rate: int | None = None  # Opus always runs at 48 kHz; 44100 is accepted and ignored
    channels: int | None = None
    bitrate_kbps: int | None = None


@dataclass(frozen=True)
class IngestSpec:
    url: str
    repeats: int = 1  # plays of a file; FOREVER loops until stopped or max_duration_s
    seek_s: float = 0.0  # the first play starts here
    max_duration_s: float | None = None  # with repeats == FOREVER
    volume: int = 100  # percent of the source's level
    paused: bool = False
    video: VideoEncoding | None = None  # None: forward H.264 as it is where possible
    audio: AudioEncoding = field(default_factory=AudioEncoding)


def validate(spec: IngestSpec) -> None:
    if not (spec.repeats == FOREVER or 1 <= spec.repeats <= MAX_REPEATS):
        raise InvalidArgument(f"repeats must be -1 or 1 to {MAX_REPEATS}", subject="repeats")
    if spec.seek_s < 0:
        raise InvalidArgument("the start position must not be negative", subject="seek")
    if spec.max_duration_s is not None and not 0 < spec.max_duration_s <= MAX_DURATION_S:
        raise InvalidArgument("max duration out of range", subject="max_duration")
    if not 0 <= spec.volume <= 100:
        raise InvalidArgument("volume must be 0 to 100", subject="volume")


def spec_to_json(spec: IngestSpec) -> dict[str, Any]:
    return {"version": SPEC_VERSION, **asdict(spec)}


def spec_from_json(data: dict[str, Any]) -> IngestSpec:
    d = dict(data)
    version = d.pop("version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise ValueError(f"unknown ingest spec version {version}")
    video = d.pop("video", None)
    audio = d.pop("audio", None) or {}
    return IngestSpec(
        **d,
        video=VideoEncoding(**video) if video is not None else None,
        audio=AudioEncoding(**audio),
    )


def updated(spec: IngestSpec, *, url: str | None, volume: int | None, paused: bool | None) -> IngestSpec:
    """``spec`` with what an update changes (None: unchanged). A new URL plays from its start."""
    out = spec
    if url is not None:
        out = replace(out, url=url, seek_s=0.0)
    if volume is not None:
        out = replace(out, volume=volume)
    if paused is not None:
        out = replace(out, paused=paused)
    validate(out)
    return out
