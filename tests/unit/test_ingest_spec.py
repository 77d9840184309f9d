"""The ingest spec: JSON round trip, validation, updates, and how TRTC's fields map onto it."""

from __future__ import annotations

import pytest

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.ingest import StartStreamIngestParams, spec_of
from roomcast.domain.errors import InvalidArgument
from roomcast.domain.ingest import (
    FOREVER,
    AudioEncoding,
    IngestSpec,
    VideoEncoding,
    spec_from_json,
    spec_to_json,
    updated,
    validate,
)
from roomcast.net.urls import MEDIA_SCHEMES, UrlRefused, parse_http_url


def params(**extra: object) -> StartStreamIngestParams:
    base = {"SdkAppId": 1, "RoomId": "1", "UserId": "u", "UserSig": "s", "StreamUrl": "https://a.b/c.mp4"}
    return StartStreamIngestParams.model_validate({**base, **extra})


def test_json_round_trip() -> None:
    spec = IngestSpec(
        url="https://a.b/c.mp4",
        repeats=FOREVER,
        seek_s=3.0,
        max_duration_s=120.0,
        volume=40,
        paused=True,
        video=VideoEncoding(width=640, fps=15),
        audio=AudioEncoding(channels=1, bitrate_kbps=32),
    )
    data = spec_to_json(spec)
    assert data["version"] == 1
    assert spec_from_json(data) == spec
    assert spec_from_json(spec_to_json(IngestSpec(url="x"))) == IngestSpec(url="x")
    with pytest.raises(ValueError):
        spec_from_json({**data, "version": 99})


@pytest.mark.parametrize(
    "bad",
    [
        IngestSpec(url="x", repeats=0),
        IngestSpec(url="x", repeats=1001),
        IngestSpec(url="x", seek_s=-1),
        IngestSpec(url="x", volume=101),
        IngestSpec(url="x", max_duration_s=0),
    ],
)
def test_validation(bad: IngestSpec) -> None:
    with pytest.raises(InvalidArgument):
        validate(bad)


def test_update_keeps_what_is_not_given_and_a_new_url_starts_at_zero() -> None:
    spec = IngestSpec(url="a", seek_s=5.0, volume=50)
    assert updated(spec, url=None, volume=None, paused=True) == IngestSpec(
        url="a", seek_s=5.0, volume=50, paused=True
    )
    assert updated(spec, url="b", volume=None, paused=None) == IngestSpec(url="b", volume=50)
    with pytest.raises(InvalidArgument):
        updated(spec, url=None, volume=150, paused=None)


def test_trtc_fields() -> None:
    assert spec_of(params()) == IngestSpec(url="https://a.b/c.mp4")
    # MaxDuration (minutes) counts only with RepeatNum -1, as documented.
    assert spec_of(params(RepeatNum=-1, MaxDuration=2)).max_duration_s == 120.0
    assert spec_of(params(RepeatNum=3, MaxDuration=2)).max_duration_s is None
    s = spec_of(params(SeekSecond=7, Volume=0, VideoEncodeParams={"Width": 0, "Height": 360, "Fps": 20}))
    assert (s.seek_s, s.volume, s.video) == (7.0, 0, VideoEncoding(height=360, fps=20))
    # The deprecated SourceUrl stands in for StreamUrl.
    assert spec_of(params(StreamUrl=None, SourceUrl=["https://x/y.flv"])).url == "https://x/y.flv"
    for bad in (params(StreamUrl=None), params(StreamUrl=None, SourceUrl=["a", "b"])):
        with pytest.raises(TrtcError) as ei:
            spec_of(bad)
        assert ei.value.code == "InvalidParameter.StreamUrl"
    with pytest.raises(TrtcError) as ei:
        spec_of(params(AudioEncodeParams={"SampleRate": 32000}))
    assert ei.value.code == "InvalidParameter.EncodeParams"


def test_media_url_schemes() -> None:
    assert parse_http_url("rtmp://live.example.com/app/key", MEDIA_SCHEMES).port == 1935
    assert parse_http_url("rtmps://live.example.com/app/key", MEDIA_SCHEMES).port == 443
    with pytest.raises(UrlRefused):
        parse_http_url("rtmp://live.example.com/app/key")  # other tenant URLs stay http(s)
    with pytest.raises(UrlRefused):
        parse_http_url("file:///etc/passwd", MEDIA_SCHEMES)
