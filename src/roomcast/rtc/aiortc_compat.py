"""Every aiortc/aioice internal the SFU relies on, in one place.

aiortc (pinned to 1.16.*) has no public API for receiving encoded frames, for
sending a PLI from a receiver, or for observing PLI/FIR arriving at a sender.
This module patches exactly those points; ``tests/unit/test_rtc_aiortc_compat.py``
checks that the internals still look the way this code expects, so an upgrade
fails loudly instead of silently decoding (or dropping) media.

Internals touched:

* ``aioice.ice.get_host_addresses`` - replaced (opt-in) to offer loopback host
  candidates, which aioice skips.
* ``aiortc.rtcrtpreceiver.get_decoder`` / ``decoder_worker`` - the decoder
  thread of each receiver; replaced by a dispatcher that returns a passthrough
  "decoder" for receivers registered with :func:`enable_passthrough`.
* ``RTCRtpReceiver._send_rtcp_pli`` and the name-mangled SSRC tables - to send
  PLI upstream.
* ``RTCRtpSender._send_keyframe`` - called by aiortc on incoming PLI/FIR;
  wrapped per sender instance.
* ``RTCRtpReceiver._handle_rtcp_packet`` (wrapped per passthrough receiver) and the
  receiver's ``__timestamp_mapper`` - to turn RTCP sender reports into a
  :class:`~roomcast.rtc.track.SenderReport` on the packets' own pts scale (lip sync).
* ``RTCRtpTransceiver._codecs`` - narrowed after ``setRemoteDescription`` so an
  answer carries exactly one video codec (the one the SFU will forward).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import aioice.ice
import aiortc
import aiortc.rtcrtpreceiver as _receiver_mod
import av
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtp import RtcpSrPacket

from .track import SenderReport

TESTED_AIORTC_SERIES = "1.16."

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_TIME_BASE = Fraction(1, 48000)

# Codec order the SFU asks for: H.264 first (per-user recordings can copy it
# into MP4), then VP8.  Audio is always Opus.
DEFAULT_VIDEO_CODECS: tuple[str, ...] = ("video/H264", "video/VP8")
AUDIO_CODECS: tuple[str, ...] = ("audio/opus",)


# --------------------------------------------------------------------------- ICE


_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_host_override: list[str] | None = None


def _patched_get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _host_override is None:
        return _original_get_host_addresses(use_ipv4, use_ipv6)
    return [a for a in _host_override if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def set_ice_host_addresses(addresses: Sequence[str] | None) -> None:
    """Offer exactly ``addresses`` as ICE host candidates (``None`` restores aioice's list).

    aioice never offers 127.0.0.1, so loopback tests and loopback-only
    deployments need ``["127.0.0.1"]`` here.  Process-wide.
    """
    global _host_override
    _host_override = list(addresses) if addresses is not None else None
    aioice.ice.get_host_addresses = _patched_get_host_addresses


def ice_host_addresses() -> list[str] | None:
    return list(_host_override) if _host_override is not None else None


def rtc_configuration(ice_servers: Sequence[RTCIceServer] = ()) -> RTCConfiguration:
    """A configuration with no default STUN server (aiortc adds Google's otherwise) and max-bundle."""
    return RTCConfiguration(iceServers=list(ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# ------------------------------------------------------------------ keyframes


def h264_is_keyframe(data: bytes) -> bool:
    """True if Annex-B ``data`` holds an IDR slice (5) or an SPS (7).

    aiortc's depayloader emits Annex-B with 4-byte start codes, including for
    the NAL units it unpacks from STAP-A, so scanning start codes is enough.
    """
    n = len(data)
    i = 0
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= n:
            return False
        nal_type = data[i + 3] & 0x1F
        if nal_type in (5, 7):
            return True
        i += 3


def vp8_is_keyframe(data: bytes) -> bool:
    """VP8 frame tag: bit 0 of the first byte is 0 for key frames (RFC 6386 9.1)."""
    return len(data) > 0 and (data[0] & 0x01) == 0


def is_keyframe(mime_type: str, data: bytes) -> bool:
    mime = mime_type.lower()
    if mime == "video/h264":
        return h264_is_keyframe(data)
    if mime == "video/vp8":
        return vp8_is_keyframe(data)
    return True  # audio: every packet is independently decodable


def vp8_resolution(data: bytes) -> tuple[int, int] | None:
    """Width/height from a VP8 key frame header, if ``data`` is one."""
    if len(data) < 10 or not vp8_is_keyframe(data) or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


class _Bits:
    """An RBSP bit reader with Exp-Golomb codes (H.264 7.2 / 9.1)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3]  # IndexError past the end: the caller gives up
        self.pos += 1
        return (byte >> (7 - ((self.pos - 1) & 7))) & 1

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        v = self.ue()
        return (v + 1) // 2 if v & 1 else -(v // 2)


def _sps_size(nal: bytes) -> tuple[int, int] | None:
    rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")
    r = _Bits(rbsp)
    profile = r.bits(8)
    r.bits(16)  # constraint flags, level
    r.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = r.ue()
        if chroma == 3:
            r.bit()
        r.ue()
        r.ue()
        r.bit()
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if r.bit():
                    last = nxt = 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt or last
    r.ue()  # log2_max_frame_num_minus4
    poc = r.ue()
    if poc == 0:
        r.ue()
    elif poc == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()
    r.bit()  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if r.bit():
        crop = (r.ue(), r.ue(), r.ue(), r.ue())
    sub_w, sub_h = (2, 2) if chroma == 1 else ((2, 1) if chroma == 2 else (1, 1))
    crop_x = sub_w if chroma else 1
    crop_y = (sub_h if chroma else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - crop_y * (crop[2] + crop[3])
    return (width, height) if width > 0 and height > 0 else None


def h264_resolution(data: bytes) -> tuple[int, int] | None:
    """Width/height from the first SPS in Annex-B ``data``, if it holds one."""
    i = 0
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= len(data):
            return None
        if data[i + 3] & 0x1F == 7:
            end = data.find(b"\x00\x00\x01", i + 3)
            nal = data[i + 3 : end if end >= 0 else len(data)]
            try:
                return _sps_size(nal)
            except (IndexError, ValueError):
                return None
        i += 3


def video_resolution(mime_type: str, data: bytes) -> tuple[int, int] | None:
    """Width/height from a key frame of ``mime_type`` (VP8 or H.264), if ``data`` carries them."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return vp8_resolution(data)
    if mime == "video/h264":
        return h264_resolution(data)
    return None


# ---------------------------------------------------------- receive passthrough


@dataclass(slots=True)
class PacketInfo:
    """Attached to each passthrough ``av.Packet`` as ``packet.opaque``."""

    codec: str
    arrival: float  # time.monotonic() when the frame left the jitter buffer
    wallclock: float  # time.time() at the same moment
    sender_report: SenderReport | None = None  # the receiver's latest RTCP SR, if any


class PassthroughDecoder:
    """Stands in for aiortc's decoder: returns the re-assembled frame as an ``av.Packet``."""

    def __init__(self, codec: RTCRtpCodecParameters, reports: _ReportBox | None = None) -> None:
        self.reports = reports
        self.mime = codec.mimeType
        self.kind = codec.mimeType.split("/")[0].lower()
        self.time_base = VIDEO_TIME_BASE if self.kind == "video" else Fraction(1, codec.clockRate)

    def decode(self, encoded_frame: Any) -> list[av.Packet[Any]]:
        data: bytes = encoded_frame.data
        packet = av.Packet(data)
        packet.pts = encoded_frame.timestamp
        packet.dts = encoded_frame.timestamp
        packet.time_base = self.time_base
        packet.is_keyframe = is_keyframe(self.mime, data)
        report = self.reports.latest if self.reports is not None else None
        packet.opaque = PacketInfo(
            codec=self.mime, arrival=time.monotonic(), wallclock=time.time(), sender_report=report
        )
        return [packet]


class _ReportBox:
    """The latest sender report of one receiver (written on the loop, read by its decoder thread)."""

    __slots__ = ("latest",)

    def __init__(self) -> None:
        self.latest: SenderReport | None = None


NTP_UNIX_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def sender_report_pts(receiver: RTCRtpReceiver, rtp_timestamp: int) -> int | None:
    """Map a raw 32-bit RTP timestamp onto the rebased pts aiortc gives the frames (None if
    no frame has been mapped yet)."""
    mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
    origin = getattr(mapper, "_origin", None)
    last = getattr(mapper, "_last", None)
    if origin is None or last is None:
        return None
    pts = int(rtp_timestamp) - int(origin)
    last_pts = int(last) - int(origin)
    # bring it to within half the RTP range of the latest mapped timestamp
    pts = last_pts + ((pts - last_pts + (1 << 31)) % (1 << 32)) - (1 << 31)
    return pts


def _hook_sender_reports(receiver: RTCRtpReceiver, box: _ReportBox) -> None:
    original: Callable[[Any], Any] = receiver._handle_rtcp_packet

    async def _handle_rtcp_packet(packet: Any) -> None:
        await original(packet)
        if isinstance(packet, RtcpSrPacket) and packet.ssrc in receiver_media_ssrcs(receiver):
            info = packet.sender_info
            pts = sender_report_pts(receiver, info.rtp_timestamp)
            if pts is not None:
                ntp = info.ntp_timestamp / float(1 << 32) - NTP_UNIX_OFFSET
                box.latest = SenderReport(ntp_time=ntp, pts=pts)

    receiver._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]


_original_get_decoder: Callable[[RTCRtpCodecParameters], Any] = _receiver_mod.get_decoder  # type: ignore[attr-defined]
_original_decoder_worker: Callable[..., None] = _receiver_mod.decoder_worker
# output queue of a receiver's track -> kinds ("audio", "video") to pass through
_passthrough: weakref.WeakKeyDictionary[asyncio.Queue[Any], frozenset[str]] = weakref.WeakKeyDictionary()
_report_boxes: weakref.WeakKeyDictionary[asyncio.Queue[Any], _ReportBox] = weakref.WeakKeyDictionary()
_worker_state = threading.local()
_installed = False


def _dispatch_get_decoder(codec: RTCRtpCodecParameters) -> Any:
    queue = getattr(_worker_state, "output_q", None)
    kinds = _passthrough.get(queue) if queue is not None else None
    if kinds and codec.mimeType.split("/")[0].lower() in kinds:
        return PassthroughDecoder(codec, _report_boxes.get(queue) if queue is not None else None)
    return _original_get_decoder(codec)


def _dispatch_decoder_worker(
    loop: asyncio.AbstractEventLoop, input_q: Any, output_q: asyncio.Queue[Any], decode_error: Any
) -> None:
    # Runs in the receiver's decoder thread; remember whose thread this is so
    # that get_decoder (called lazily on the first frame) can choose.
    _worker_state.output_q = output_q
    try:
        _original_decoder_worker(loop, input_q, output_q, decode_error)
    finally:
        _worker_state.output_q = None


def install_receive_hooks() -> None:
    """Replace aiortc's decoder lookup with a per-receiver dispatcher (idempotent, process-wide).

    Receivers not registered with :func:`enable_passthrough` keep decoding.
    """
    global _installed
    if _installed:
        return
    _receiver_mod.get_decoder = _dispatch_get_decoder  # type: ignore[attr-defined]
    _receiver_mod.decoder_worker = _dispatch_decoder_worker
    _installed = True


def enable_passthrough(receiver: RTCRtpReceiver, kinds: Iterable[str] = ("audio", "video")) -> None:
    """Make ``receiver.track.recv()`` return encoded ``av.Packet``s instead of decoded frames.

    Must be called before the first frame is decoded, i.e. from the
    peer connection's ``track`` event (or right after ``setRemoteDescription``).
    Each packet has ``pts``/``time_base`` (RTP clock, rebased to start at 0),
    ``is_keyframe`` and ``opaque`` set to a :class:`PacketInfo`.
    """
    install_receive_hooks()
    track = receiver.track
    if track is None:
        raise RuntimeError("receiver has no track yet (call after setRemoteDescription)")
    queue = _track_queue(track)
    _passthrough[queue] = frozenset(kinds)
    if queue not in _report_boxes:
        box = _ReportBox()
        _report_boxes[queue] = box
        _hook_sender_reports(receiver, box)


def is_passthrough(receiver: RTCRtpReceiver) -> bool:
    track = receiver.track
    return track is not None and _track_queue(track) in _passthrough


def _track_queue(track: Any) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = track._queue  # RemoteStreamTrack's frame queue
    return queue


# --------------------------------------------------------------- RTCP feedback


def receiver_media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """SSRCs of the media (not RTX) streams a receiver has seen packets on."""
    streams: dict[int, Any] = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})
    rtx: dict[int, int] = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    return [ssrc for ssrc in streams if ssrc not in rtx]


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Send an RTCP PLI to the remote sender of ``receiver``'s media.

    Returns False when no media SSRC is known yet (nothing received).
    """
    ssrcs = receiver_media_ssrcs(receiver)
    for ssrc in ssrcs:
        await receiver._send_rtcp_pli(ssrc)
    return bool(ssrcs)


KeyframeCallback = Callable[[], None]


def on_keyframe_request(sender: RTCRtpSender, callback: KeyframeCallback) -> None:
    """Call ``callback`` whenever ``sender`` receives RTCP PLI or FIR.

    aiortc only honours PLI/FIR when it encodes the frames itself; for
    forwarded packets the SFU must pass the request upstream, so it hooks
    here.  aiortc's own behaviour (forcing a keyframe on its encoder) is kept.
    """
    original: Callable[[], None] = sender._send_keyframe

    def _send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = _send_keyframe  # type: ignore[method-assign]


# ---------------------------------------------------------------------- codecs


def codec_capabilities(kind: str, mime_types: Sequence[str]) -> list[RTCRtpCodecCapability]:
    """aiortc's capabilities for ``mime_types`` in that order, plus RTX for video."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    wanted = [m.lower() for m in mime_types]
    out: list[RTCRtpCodecCapability] = []
    for mime in wanted:
        out.extend(c for c in caps if c.mimeType.lower() == mime)
    if kind == "video":
        out.extend(c for c in caps if c.mimeType.lower() == "video/rtx")
    return out


def prefer_codecs(transceiver: RTCRtpTransceiver, mime_types: Sequence[str]) -> None:
    """Public-API codec preference (for offers we create)."""
    transceiver.setCodecPreferences(codec_capabilities(transceiver.kind, mime_types))


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    return codecs


def restrict_answer_codecs(transceiver: RTCRtpTransceiver, mime_order: Sequence[str]) -> str | None:
    """Narrow a transceiver's negotiated codecs to the first of ``mime_order`` the remote offered.

    Call after ``setRemoteDescription(offer)`` and before ``createAnswer()``.
    aiortc computes the codec list during setRemoteDescription, so
    ``setCodecPreferences`` at that point has no effect; this edits the result.
    Keeps every payload type of the chosen codec and their RTX.  Returns the
    chosen MIME type, or None if none was offered (the list is left as is).
    """
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    for mime in mime_order:
        chosen = [c for c in codecs if c.mimeType.lower() == mime.lower()]
        if not chosen:
            continue
        pts = {c.payloadType for c in chosen}
        keep = [
            c
            for c in codecs
            if c.payloadType in pts
            or (c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in pts)
        ]
        transceiver._codecs = keep
        return chosen[0].mimeType
    return None


# --------------------------------------------------------------------- guard


def check_internals() -> list[str]:
    """Return a description of every internal this module relies on that looks different."""
    problems: list[str] = []
    if not aiortc.__version__.startswith(TESTED_AIORTC_SERIES):
        problems.append(f"aiortc {aiortc.__version__} is not the tested {TESTED_AIORTC_SERIES}*")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is gone")
    for name in ("get_decoder", "decoder_worker"):
        if not callable(getattr(_receiver_mod, name, None)):
            problems.append(f"aiortc.rtcrtpreceiver.{name} is gone")
    import inspect

    try:
        params = list(inspect.signature(_original_decoder_worker).parameters)
        if params != ["loop", "input_q", "output_q", "decode_error"]:
            problems.append(f"decoder_worker signature changed: {params}")
        src = inspect.getsource(_original_decoder_worker)
        if "get_decoder(codec)" not in src:
            problems.append("decoder_worker no longer calls get_decoder(codec)")
        recv_src = inspect.getsource(RTCRtpReceiver.receive)
        if "decoder_worker" not in recv_src or "self._track._queue" not in recv_src:
            problems.append("RTCRtpReceiver.receive no longer starts decoder_worker with the track queue")
        send_src = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
        if "self._send_keyframe()" not in send_src:
            problems.append("RTCRtpSender no longer calls _send_keyframe on PLI/FIR")
        next_src = inspect.getsource(RTCRtpSender._next_encoded_frame)
        if ".pack(data)" not in next_src:
            problems.append("RTCRtpSender no longer packs pre-encoded packets")
        rx_init = inspect.getsource(RTCRtpReceiver.__init__)
        for attr in ("self.__remote_streams", "self.__rtx_ssrc"):
            if attr not in rx_init:
                problems.append(f"RTCRtpReceiver lost {attr}")
    except (OSError, TypeError) as exc:  # pragma: no cover - source not available
        problems.append(f"cannot inspect aiortc source: {exc}")
    if not callable(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)):
        problems.append("RTCRtpReceiver._send_rtcp_pli is gone")
    if not callable(getattr(RTCRtpReceiver, "_handle_rtcp_packet", None)):
        problems.append("RTCRtpReceiver._handle_rtcp_packet is gone")
    try:
        if "self.__timestamp_mapper" not in inspect.getsource(RTCRtpReceiver.__init__):
            problems.append("RTCRtpReceiver lost its __timestamp_mapper")
    except (OSError, TypeError):  # pragma: no cover
        pass
    if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):
        problems.append("RTCRtpSender._send_keyframe is gone")
    if "_codecs" not in RTCRtpTransceiver.__init__.__code__.co_names:
        problems.append("RTCRtpTransceiver._codecs is gone")
    return problems
