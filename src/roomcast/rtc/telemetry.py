"""Client telemetry over signalling: what only a client knows about its call.

A ``telemetry`` message (see docs/signalling.md) carries the client's device description, a few
getStats-style samples (about itself, ``peer`` "", or about what it receives from one peer) and
device events. :func:`parse_report` keeps only known fields with sane values, so a buggy or
hostile client can neither crash the server nor store junk; the result is published on the
event bus as a :class:`~roomcast.rtc.events.ClientReport`.
"""

from __future__ import annotations

import math
import time
from typing import Any

MAX_SAMPLES = 30
MAX_EVENTS = 30
MAX_TEXT = 64
PAST_S = 120.0
FUTURE_S = 5.0

DEVICE_FIELDS = ("device_type", "os", "sdk_version", "network_type")
NETWORK_TYPES = ("none", "wifi", "4g", "3g", "2g", "wired", "unknown")
# sample field -> (low, high)
SAMPLE_FIELDS: dict[str, tuple[float, float]] = {
    "capture_fps": (0, 240),
    "send_fps": (0, 240),
    "decode_fps": (0, 240),
    "audio_stall_ms": (0, 3_600_000),
    "video_stall_ms": (0, 3_600_000),
    "app_cpu": (0, 100 * 256),
    "sys_cpu": (0, 100),
    "rtt_ms": (0, 60_000),
}
# event name -> allowed values (None: see _event_value)
EVENT_VALUES: dict[str, tuple[Any, ...] | None] = {
    "network": NETWORK_TYPES,
    "foreground": (True, False),
    "microphone": ("started", "muted", "stopped", "unmuted"),
    "camera": ("front", "rear"),
    "camera_failed": ("front", "rear"),
    "capture_resolution": None,
    "video_upstream": (True, False),
    "decode_failed": None,
    "signalling": ("up", "down"),
    "transport": ("up", "down"),
}


class TelemetryError(ValueError):
    pass


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT or not value.isprintable():
        raise TelemetryError(f"{name} must be 1 to {MAX_TEXT} printable characters")
    return value


def _at(value: object, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TelemetryError("at must be a Unix time in seconds")
    # a client clock far off the server's is not trusted: the sample is timed on arrival
    return float(value) if now - PAST_S <= value <= now + FUTURE_S else now


def _number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TelemetryError(f"{name} must be a number")
    if not low <= value <= high:
        raise TelemetryError(f"{name} must be between {low:g} and {high:g}")
    return float(value)


def _event_value(name: str, value: object) -> Any:
    allowed = EVENT_VALUES[name]
    if allowed is not None:
        if isinstance(value, bool) != isinstance(allowed[0], bool) or value not in allowed:
            raise TelemetryError(f"event {name}: value must be one of {', '.join(map(str, allowed))}")
        return value
    if name == "capture_resolution":
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 16384 for v in value)
        ):
            raise TelemetryError("event capture_resolution: value must be [width, height]")
        return list(value)
    return int(_number(value, f"event {name}", 0, 10_000))


def parse_report(msg: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """``{"device": {...}, "samples": [...], "events": [...]}`` with only valid content."""
    now = time.time() if now is None else now
    device: dict[str, str] = {}
    raw_device = msg.get("device") or {}
    if not isinstance(raw_device, dict):
        raise TelemetryError("device must be an object")
    for key in DEVICE_FIELDS:
        if raw_device.get(key) is not None:
            device[key] = _text(raw_device[key], f"device.{key}")
    if "network_type" in device and device["network_type"] not in NETWORK_TYPES:
        raise TelemetryError(f"device.network_type must be one of {', '.join(NETWORK_TYPES)}")
    raw_samples = msg.get("samples") or []
    raw_events = msg.get("events") or []
    if not isinstance(raw_samples, list) or len(raw_samples) > MAX_SAMPLES:
        raise TelemetryError(f"samples must be a list of at most {MAX_SAMPLES}")
    if not isinstance(raw_events, list) or len(raw_events) > MAX_EVENTS:
        raise TelemetryError(f"events must be a list of at most {MAX_EVENTS}")
    samples = []
    for s in raw_samples:
        if not isinstance(s, dict):
            raise TelemetryError("a sample must be an object")
        peer = s.get("peer") or ""
        sample: dict[str, Any] = {"at": _at(s.get("at"), now), "peer": _text(peer, "peer") if peer else ""}
        for key, (low, high) in SAMPLE_FIELDS.items():
            if s.get(key) is not None:
                sample[key] = _number(s[key], key, low, high)
        if len(sample) > 2:
            samples.append(sample)
    events = []
    for e in raw_events:
        if not isinstance(e, dict) or e.get("name") not in EVENT_VALUES:
            raise TelemetryError(f"an event needs a name among {', '.join(EVENT_VALUES)}")
        name = str(e["name"])
        events.append(
            {"at": _at(e.get("at"), now), "name": name, "value": _event_value(name, e.get("value"))}
        )
    return {"device": device, "samples": samples, "events": events}
