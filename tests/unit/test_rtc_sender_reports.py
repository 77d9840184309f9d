"""RTCP sender reports reach passthrough packets, mapped onto the packets' own pts."""

from __future__ import annotations

import asyncio
import time

import av
import pytest
from aiortc import RTCPeerConnection

from roomcast.rtc import aiortc_compat as compat
from roomcast.rtc.testing import ColorVideoTrack, ToneAudioTrack

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize("kind", ["video", "audio"])
async def test_sender_report_on_packets(kind: str) -> None:
    compat.set_ice_host_addresses(["127.0.0.1"])
    sender = RTCPeerConnection(compat.rtc_configuration())
    receiver = RTCPeerConnection(compat.rtc_configuration())
    try:
        sender.addTransceiver(
            ColorVideoTrack() if kind == "video" else ToneAudioTrack(), direction="sendonly"
        )
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        rx = receiver.getTransceivers()[0]
        compat.enable_passthrough(rx.receiver)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        deadline = time.monotonic() + 8
        report = None
        while report is None and time.monotonic() < deadline:
            pkt = await asyncio.wait_for(rx.receiver.track.recv(), 5)
            assert isinstance(pkt, av.Packet)
            info = pkt.opaque
            assert isinstance(info, compat.PacketInfo)
            report = info.sender_report
        assert report is not None, "no RTCP sender report within 8 s"
        # sender and receiver share this machine's clock: the SR-derived send time of the packet
        # is a little before its arrival
        assert pkt.pts is not None and pkt.time_base is not None
        sent = report.ntp_time + float((pkt.pts - report.pts) * pkt.time_base)
        assert isinstance(info, compat.PacketInfo)
        assert -0.05 < info.wallclock - sent < 0.5
    finally:
        await sender.close()
        await receiver.close()
