"""H.264 SEI messages inserted into an encoded stream (relay: volume layout and pass-through).

:func:`sei_nal` builds one SEI NAL unit (Annex-B, emulation prevention applied);
:func:`insert_sei` puts NAL units in an access unit before its first slice; :class:`SeiScheduler`
decides when a message is due (every ``interval_ms``, and on every keyframe with ``follow_idr``);
:func:`parse_sei` reads messages back (tests, and anyone checking a stream).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from roomcast.media.outputs import EncodedPacket

__all__ = ["SeiMessage", "SeiScheduler", "insert_sei", "iter_nals", "parse_sei", "sei_nal"]

USER_DATA_UNREGISTERED = 5


def _escape(rbsp: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _unescape(ebsp: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for b in ebsp:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _ff_coded(value: int) -> bytes:
    out = bytearray()
    while value >= 255:
        out.append(255)
        value -= 255
    out.append(value)
    return bytes(out)


def sei_nal(payload_type: int, payload: bytes, uuid: bytes | None = None) -> bytes:
    """One SEI NAL unit with one message, as Annex-B (4-byte start code)."""
    if payload_type == USER_DATA_UNREGISTERED:
        if uuid is None or len(uuid) != 16:
            raise ValueError("user_data_unregistered needs a 16-byte UUID")
        payload = uuid + payload
    rbsp = _ff_coded(payload_type) + _ff_coded(len(payload)) + payload + b"\x80"
    return b"\x00\x00\x00\x01\x06" + _escape(rbsp)


def iter_nals(data: bytes) -> Iterator[tuple[int, int]]:
    """(start of the start code, start of the NAL header) of each NAL unit of Annex-B data."""
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        code = i - 1 if i > 0 and data[i - 1] == 0 else i
        yield code, i + 3
        i = data.find(b"\x00\x00\x01", i + 3)


def insert_sei(access_unit: bytes, nals: list[bytes]) -> bytes:
    """``access_unit`` with ``nals`` placed before its first slice (after AUD/SPS/PPS)."""
    if not nals:
        return access_unit
    for code, header in iter_nals(access_unit):
        if header < len(access_unit) and access_unit[header] & 0x1F in (1, 5):
            return access_unit[:code] + b"".join(nals) + access_unit[code:]
    return access_unit + b"".join(nals)


@dataclass(frozen=True, slots=True)
class SeiMessage:
    payload_type: int
    payload: bytes
    uuid: bytes | None = None


def parse_sei(nal: bytes) -> list[SeiMessage]:
    """The messages of one SEI NAL unit (``nal`` starts with its header byte)."""
    rbsp = _unescape(nal[1:])
    out: list[SeiMessage] = []
    i = 0
    while i < len(rbsp) and rbsp[i] != 0x80:
        pt = 0
        while rbsp[i] == 255:
            pt += 255
            i += 1
        pt += rbsp[i]
        i += 1
        size = 0
        while rbsp[i] == 255:
            size += 255
            i += 1
        size += rbsp[i]
        i += 1
        body = rbsp[i : i + size]
        i += size
        if pt == USER_DATA_UNREGISTERED:
            out.append(SeiMessage(pt, body[16:], body[:16]))
        else:
            out.append(SeiMessage(pt, body))
    return out


@dataclass(slots=True)
class _Due:
    interval_s: float
    follow_idr: bool
    last: float | None = None

    def due(self, t: float, keyframe: bool) -> bool:
        if (self.follow_idr and keyframe) or self.last is None or t - self.last >= self.interval_s - 1e-6:
            self.last = t
            return True
        return False


class SeiScheduler:
    """Adds the due SEI messages to video packets (a :class:`~roomcast.media.rtmp.RtmpFanout`
    transform).  Each source is ``(payload_type, uuid, interval_ms, follow_idr, make_payload)``."""

    def __init__(self) -> None:
        self._sources: list[tuple[int, bytes | None, _Due, Callable[[], bytes]]] = []

    def add(
        self,
        payload_type: int,
        make_payload: Callable[[], bytes],
        *,
        interval_ms: int,
        follow_idr: bool,
        uuid: bytes | None = None,
    ) -> None:
        self._sources.append((payload_type, uuid, _Due(interval_ms / 1000, follow_idr), make_payload))

    def __call__(self, pkt: EncodedPacket) -> EncodedPacket:
        if not self._sources:
            return pkt
        t = pkt.pts / 90_000
        nals = [
            sei_nal(pt, make(), uuid) for pt, uuid, due, make in self._sources if due.due(t, pkt.keyframe)
        ]
        if not nals:
            return pkt
        return replace(pkt, data=insert_sei(pkt.data, nals))
