"""Relay building blocks without a network: SEI messages, the relay spec, push URL rules."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

import pytest

from roomcast.domain.errors import InvalidArgument
from roomcast.domain.recording import RecordingMode, RecordingSpec, VideoEncoding
from roomcast.domain.relay import (
    LayoutSei,
    PassThroughSei,
    RelaySource,
    RelaySpec,
    SeiSettings,
    SingleStream,
    relay_from_json,
    relay_to_json,
    validate_relay,
)
from roomcast.media.outputs import EncodedPacket
from roomcast.media.sei import SeiScheduler, insert_sei, iter_nals, parse_sei, sei_nal
from roomcast.net.stream_urls import check_stream_url, parse_stream_url
from roomcast.net.urls import UrlPolicy, UrlRefused

IDR = (
    b"\x00\x00\x00\x01\x67\x42\x00\x1f"
    + b"\x00\x00\x00\x01\x68\xce\x3c\x80"
    + b"\x00\x00\x01\x65\x88\x84\x00"
)


def sei_messages(au: bytes) -> list[Any]:
    out = []
    for _, h in iter_nals(au):
        if au[h] & 0x1F == 6:
            end = au.find(b"\x00\x00\x01", h)
            nal = au[h : end if end >= 0 else len(au)].rstrip(b"\x00")
            out += parse_sei(nal)
    return out


def test_sei_round_trip_with_emulation_prevention() -> None:
    payload = b"\x00\x00\x01\x00\x00\x03" + bytes(range(256)) * 2  # > 255 bytes, needs escaping
    nal = sei_nal(100, payload)
    body = nal[4:]
    assert b"\x00\x00\x01" not in body and b"\x00\x00\x00" not in body
    assert parse_sei(body) == [type(parse_sei(body)[0])(100, payload)]
    uuid = bytes(range(16))
    m = parse_sei(sei_nal(5, b"hi", uuid)[4:])[0]
    assert (m.payload_type, m.uuid, m.payload) == (5, uuid, b"hi")
    with pytest.raises(ValueError):
        sei_nal(5, b"x")


def test_sei_goes_before_the_first_slice() -> None:
    au = insert_sei(IDR, [sei_nal(100, b"x")])
    types = [au[h] & 0x1F for _, h in iter_nals(au)]
    assert types == [7, 8, 6, 5]


def test_scheduler_interval_and_follow_idr() -> None:
    sched = SeiScheduler()
    sched.add(100, lambda: b"a", interval_ms=1000, follow_idr=False)
    sched.add(101, lambda: b"b", interval_ms=1000, follow_idr=True)
    seen: list[tuple[float, set[int]]] = []
    for k in range(60):  # 4 s at 15 fps, an IDR every 0.5 s
        pkt = EncodedPacket("video", IDR, k * 6000, keyframe=k % 8 == 0)
        pts = {m.payload_type for m in sei_messages(sched(pkt).data)}
        if pts:
            seen.append((k / 15, pts))
    a_times = [t for t, p in seen if 100 in p]
    b_times = [t for t, p in seen if 101 in p]
    assert len(a_times) == 4 and all(b - a >= 0.99 for a, b in itertools.pairwise(a_times))
    assert len(b_times) >= 8  # every IDR (8 of them) at least


def _spec(**kw: Any) -> RelaySpec:
    base = RelaySpec(
        mix=RecordingSpec(mode=RecordingMode.MIXED, video=VideoEncoding(640, 360)),
        outputs=("rtmp://cdn/live/a",),
    )
    return replace(base, **kw)


def test_relay_spec_round_trip_and_rules() -> None:
    spec = _spec(
        sei=SeiSettings(LayoutSei("app", 120, 500, True), PassThroughSei("x", 5, "ab" * 16)),
        source=RelaySource.SINGLE,
        single=SingleStream("u1", None, "screen"),
    )
    doc = json.loads(json.dumps(relay_to_json(spec)))
    assert relay_from_json(doc) == spec
    validate_relay(spec)
    bad = [
        _spec(outputs=("http://cdn/live/a",)),
        _spec(outputs=tuple(f"rtmp://cdn/live/{i}" for i in range(11))),
        _spec(outputs=("rtmp://cdn/live/a", "rtmp://cdn/live/a")),
        _spec(sei=SeiSettings(layout=LayoutSei(payload_type=244))),
        _spec(sei=SeiSettings(pass_through=PassThroughSei("x", 5, None))),
        _spec(max_idle_s=1.0),
        _spec(source=RelaySource.SINGLE, single=None),
    ]
    for b in bad:
        with pytest.raises(InvalidArgument):
            validate_relay(b)
    with pytest.raises(InvalidArgument):
        relay_from_json({"v": 99})


def test_stream_url_rules() -> None:
    assert parse_stream_url("rtmp://cdn.example/live/a?k=1").port == 1935
    assert parse_stream_url("rtmps://cdn.example/live/a").port == 443
    for url in ("http://cdn/live/a", "rtmp://", "rtmp://cdn", "rtmp://cdn/live/a b", ""):
        with pytest.raises(UrlRefused):
            parse_stream_url(url)


async def test_stream_url_policy() -> None:
    strict = UrlPolicy(allow_private=False)
    for url in (
        "rtmp://127.0.0.1/live/a",
        "rtmp://10.0.0.1/live/a",
        "rtmp://localhost/live/a",
        "rtmp://169.254.169.254/x/y",
    ):
        with pytest.raises(InvalidArgument) as info:
            await check_stream_url(strict, url, field="PublishCdnUrl")
        assert info.value.subject == "PublishCdnUrl"
    await check_stream_url(strict, "rtmp://8.8.8.8/live/a", field="f")
    await check_stream_url(UrlPolicy(allow_private=True), "rtmp://127.0.0.1/live/a", field="f")
    with pytest.raises(InvalidArgument):
        await check_stream_url(UrlPolicy(allow_private=True), "https://127.0.0.1/live/a", field="f")
