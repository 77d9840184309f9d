"""Version guard for the aiortc internals roomcast.rtc patches, plus behaviour checks.

If this fails after an aiortc upgrade, read src/roomcast/rtc/aiortc_compat.py
before touching anything else: the SFU would otherwise decode (or drop) media.
"""

from __future__ import annotations

import asyncio

import av
import pytest
from aiortc import RTCPeerConnection

from roomcast.rtc import aiortc_compat as compat
from roomcast.rtc.testing import ColorVideoTrack

pytestmark = pytest.mark.timeout(20)


def test_internals_unchanged() -> None:
    problems = compat.check_internals()
    assert problems == [], "aiortc internals changed:\n" + "\n".join(problems)


def test_h264_keyframe_detection() -> None:
    sps = b"\x00\x00\x00\x01\x67\x42\xc0\x1f"
    pps = b"\x00\x00\x00\x01\x68\xce\x3c\x80"
    idr = b"\x00\x00\x00\x01\x65\x88\x84"
    non_idr = b"\x00\x00\x00\x01\x41\x9a\x00"
    assert compat.h264_is_keyframe(sps + pps + idr)  # as depayloaded from STAP-A + FU-A
    assert compat.h264_is_keyframe(idr)
    assert not compat.h264_is_keyframe(non_idr)
    assert not compat.h264_is_keyframe(pps + non_idr)
    assert compat.h264_is_keyframe(b"\x00\x00\x01\x65\x00")  # 3-byte start code
    assert not compat.h264_is_keyframe(b"")


def test_vp8_keyframe_detection_and_resolution() -> None:
    key = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0xA0, 0x00, 0x78, 0x00])
    assert compat.vp8_is_keyframe(key)
    assert compat.vp8_resolution(key) == (160, 120)
    assert not compat.vp8_is_keyframe(bytes([0x11, 0x02, 0x00]))
    assert compat.is_keyframe("audio/opus", b"\x01")


def test_ice_host_override() -> None:
    import aioice.ice

    before = compat.ice_host_addresses()
    try:
        compat.set_ice_host_addresses(["127.0.0.1", "::1"])
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    finally:
        compat.set_ice_host_addresses(before)


async def _pair(codecs: tuple[str, ...]) -> tuple[RTCPeerConnection, RTCPeerConnection, ColorVideoTrack]:
    compat.set_ice_host_addresses(["127.0.0.1"])
    sender_pc = RTCPeerConnection(compat.rtc_configuration())
    receiver_pc = RTCPeerConnection(compat.rtc_configuration())
    track = ColorVideoTrack()
    tr = sender_pc.addTransceiver(track, direction="sendonly")
    compat.prefer_codecs(tr, codecs)
    await sender_pc.setLocalDescription(await sender_pc.createOffer())
    await receiver_pc.setRemoteDescription(sender_pc.localDescription)
    rx = receiver_pc.getTransceivers()[0]
    assert compat.restrict_answer_codecs(rx, ("video/H264", "video/VP8")) == codecs[0]
    compat.enable_passthrough(rx.receiver)
    await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
    await sender_pc.setRemoteDescription(receiver_pc.localDescription)
    return sender_pc, receiver_pc, track


@pytest.mark.parametrize("codec", ["video/H264", "video/VP8"])
async def test_passthrough_and_pli_roundtrip(codec: str) -> None:
    sender_pc, receiver_pc, _ = await _pair((codec,))
    try:
        rx = receiver_pc.getTransceivers()[0]
        assert compat.is_passthrough(rx.receiver)
        assert [c.mimeType for c in compat.negotiated_codecs(rx) if not c.mimeType.endswith("rtx")] in (
            [codec],
            [codec, codec],
        )
        plis = []
        compat.on_keyframe_request(sender_pc.getTransceivers()[0].sender, lambda: plis.append(1))
        packets = []
        for _ in range(5):
            pkt = await asyncio.wait_for(rx.receiver.track.recv(), 5)
            assert isinstance(pkt, av.Packet)
            assert isinstance(pkt.opaque, compat.PacketInfo)
            assert pkt.opaque.codec.lower() == codec.lower()
            packets.append(pkt)
        assert packets[0].is_keyframe
        assert not all(p.is_keyframe for p in packets)
        assert packets[0].time_base == compat.VIDEO_TIME_BASE
        assert await compat.send_pli(rx.receiver)
        for _ in range(40):
            if plis:
                break
            await asyncio.sleep(0.05)
        assert plis, "PLI sent by the receiver did not reach the sender hook"
        # aiortc's own encoder still honours it: a keyframe follows.
        for _ in range(30):
            pkt = await asyncio.wait_for(rx.receiver.track.recv(), 5)
            if pkt.is_keyframe:
                break
        else:
            pytest.fail("no keyframe after PLI")
    finally:
        await sender_pc.close()
        await receiver_pc.close()


async def test_non_passthrough_receivers_still_decode() -> None:
    compat.set_ice_host_addresses(["127.0.0.1"])
    compat.install_receive_hooks()
    a = RTCPeerConnection(compat.rtc_configuration())
    b = RTCPeerConnection(compat.rtc_configuration())
    try:
        a.addTransceiver(ColorVideoTrack(), direction="sendonly")
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        frame = await asyncio.wait_for(b.getTransceivers()[0].receiver.track.recv(), 5)
        assert isinstance(frame, av.VideoFrame)
    finally:
        await a.close()
        await b.close()
