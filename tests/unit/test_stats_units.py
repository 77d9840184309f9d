"""Small pure pieces of the statistics: usage tiers, bucket splitting, call ids, H.264 sizes."""

from __future__ import annotations

import fractions
from datetime import UTC, datetime, timedelta

import av
import numpy as np
import pytest

from roomcast.api.trtc.monitoring import quality_series
from roomcast.rtc.aiortc_compat import h264_resolution, video_resolution
from roomcast.stats.ledger import HOUR, MINUTE, split
from roomcast.stats.queries import Call, Sample, parse_comm_id, room_number
from roomcast.stats.tiers import tier_of, tier_of_area


def test_tiers_by_aggregate_area() -> None:
    assert tier_of([]) == "Audio"
    assert tier_of([(640, 480)]) == "SD"
    assert tier_of([(640, 480), (16, 16)]) == "HD"  # the sum counts
    assert tier_of([(1280, 720)]) == "HD"
    assert tier_of([(1920, 1080)]) == "FullHD"
    assert tier_of([(1280, 720), (1280, 720), (1280, 720)]) == "2K"
    assert tier_of([(3840, 2160)]) == "4K"
    assert tier_of_area(0) == "Audio"


def test_split_cuts_at_bucket_edges() -> None:
    t = datetime(2026, 1, 1, 10, 59, 30, tzinfo=UTC)
    parts = split(t, t + timedelta(seconds=90), MINUTE)
    assert parts == [
        (datetime(2026, 1, 1, 10, 59, tzinfo=UTC), 30.0),
        (datetime(2026, 1, 1, 11, 0, tzinfo=UTC), 60.0),
    ]
    hours = split(t, t + timedelta(seconds=90), HOUR)
    assert [s for _, s in hours] == [30.0, 60.0] and hours[1][0].hour == 11


def test_comm_ids() -> None:
    opened = datetime.fromtimestamp(1_590_065_777, UTC)
    assert Call("1400000001", "223", opened, None).comm_id == "1400000001_223_1590065777"
    assert room_number("abc") == room_number("abc") != room_number("abd")
    assert room_number("99999999999") != 99999999999  # too big for the numeric form
    assert parse_comm_id("1_2_3") == ("1", 2, 3)
    assert parse_comm_id("1_3") == ("1", None, 3)
    for bad in ("", "a_b_c", "1_2_3_4", "1__3", "1_-2_3"):
        assert parse_comm_id(bad) is None


def test_quality_series_skips_what_nobody_measured() -> None:
    at = datetime.fromtimestamp(100, UTC)
    samples = [
        Sample(at, "", "video", "server", {"width": 640.0, "fraction_lost": 0.25}),
        Sample(at, "bob", "audio", "server", {"bitrate_bps": 32000.0}),
        Sample(at, "", "client", "client", {"capture_fps": None}),
    ]
    got = quality_series("alice", samples, ["bigvWidth", "bigvLoss", "aBit", "bigvCapFps"])
    assert {(d["DataType"], d["PeerId"]) for d in got} == {
        ("bigvWidth", ""),
        ("bigvLoss", ""),
        ("aBit", "bob"),
    }
    loss = next(d for d in got if d["DataType"] == "bigvLoss")
    assert loss["Content"] == [{"Time": 100, "Value": 25.0}]


@pytest.mark.parametrize(
    ("width", "height", "profile"), [(320, 240, "baseline"), (960, 540, "high"), (176, 144, "main")]
)
def test_h264_sps_sizes(width: int, height: int, profile: str) -> None:
    c = av.CodecContext.create("libx264", "w")
    c.width, c.height, c.pix_fmt = width, height, "yuv420p"
    c.time_base = fractions.Fraction(1, 30)
    c.options = {"tune": "zerolatency", "profile": profile}
    frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
    frame = frame.reformat(format="yuv420p")
    frame.pts = 0
    packets = c.encode(frame) + c.encode(None)
    assert h264_resolution(bytes(packets[0])) == (width, height)
    assert video_resolution("video/H264", bytes(packets[0])) == (width, height)
    assert h264_resolution(b"\x00\x00\x01\x67\x42") is None  # truncated: no answer, no crash
    assert h264_resolution(b"\x00\x00\x01\x65\x88") is None  # no SPS
