"""Client telemetry is validated before it reaches the statistics: junk is refused, clocks far off
are not trusted, unknown fields are dropped."""

from __future__ import annotations

from typing import Any

import pytest

from roomcast.rtc.telemetry import MAX_SAMPLES, TelemetryError, parse_report

NOW = 1_800_000_000.0


def test_keeps_known_fields_and_trusts_only_near_clocks() -> None:
    got = parse_report(
        {
            "device": {"device_type": "pc", "os": "Linux", "network_type": "wifi", "color": "red"},
            "samples": [
                {"at": NOW - 3, "capture_fps": 15, "app_cpu": 12.5, "mood": 3},
                {"at": NOW - 10_000, "peer": "alice", "decode_fps": 14},
                {"peer": "bob"},  # nothing measured: dropped
            ],
            "events": [
                {"name": "network", "value": "4g"},
                {"at": NOW, "name": "capture_resolution", "value": [640, 360]},
            ],
        },
        now=NOW,
    )
    assert got["device"] == {"device_type": "pc", "os": "Linux", "network_type": "wifi"}
    assert got["samples"] == [
        {"at": NOW - 3, "peer": "", "capture_fps": 15.0, "app_cpu": 12.5},
        {"at": NOW, "peer": "alice", "decode_fps": 14.0},  # a clock hours off: timed on arrival
    ]
    assert [(e["name"], e["value"]) for e in got["events"]] == [
        ("network", "4g"),
        ("capture_resolution", [640, 360]),
    ]


@pytest.mark.parametrize(
    "msg",
    [
        {"device": "pc"},
        {"device": {"os": "x" * 65}},
        {"device": {"network_type": "5g-ultra"}},
        {"samples": [{"capture_fps": -1}]},
        {"samples": [{"capture_fps": float("nan")}]},
        {"samples": [{"capture_fps": True}]},
        {"samples": [{"at": "yesterday", "capture_fps": 1}]},
        {"samples": [1]},
        {"samples": [{"capture_fps": 1}] * (MAX_SAMPLES + 1)},
        {"events": [{"name": "teleport"}]},
        {"events": [{"name": "foreground", "value": "yes"}]},
        {"events": [{"name": "capture_resolution", "value": [0, 10]}]},
        {"events": [{"name": "network", "value": True}]},
    ],
)
def test_refuses_junk(msg: dict[str, Any]) -> None:
    with pytest.raises(TelemetryError):
        parse_report(msg, now=NOW)
