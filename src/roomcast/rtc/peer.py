"""Server-side peer connections: one that receives a participant's tracks and
one that sends it the tracks it subscribed to.

Media never gets decoded: the publisher side enables aiortc passthrough, the
subscriber side feeds aiortc senders with the same ``av.Packet``s (aiortc
packs pre-encoded packets itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from . import aiortc_compat as compat
from .errors import NegotiationError
from .forwarder import PacketSubscription, TrackEnded, TrackForwarder
from .track import TrackInfo, TrackKind

log = logging.getLogger(__name__)


class SlotTrack(MediaStreamTrack):
    """An outbound track whose upstream can be re-pointed without renegotiation.

    aiortc ends a sender for good when its track ends, so each sending
    transceiver keeps one SlotTrack for life and the SFU attaches/detaches
    subscriptions to it.  While detached, the sender simply waits.
    Timestamps are kept continuous across re-attachments.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._sub: PacketSubscription | None = None
        self._changed = asyncio.Event()
        self._offset = 0
        self._rebase = False
        self._last_out: int | None = None
        self.sent = 0

    @property
    def subscription(self) -> PacketSubscription | None:
        return self._sub

    def attach(self, sub: PacketSubscription) -> None:
        self.detach()
        self._sub = sub
        self._rebase = True
        self._changed.set()

    def detach(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    def request_keyframe(self) -> None:
        if self._sub is not None:
            self._sub.request_keyframe()

    def stop(self) -> None:
        self.detach()
        super().stop()
        self._changed.set()

    async def recv(self) -> av.Packet[Any]:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            sub = self._sub
            if sub is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                pkt = await sub.recv()
            except TrackEnded:
                if self._sub is sub:
                    self._sub = None
                continue
            if sub is not self._sub:
                continue
            step = 3000 if self.kind == "video" else 960
            if self._rebase:
                self._rebase = False
                self._offset = 0 if self._last_out is None else self._last_out + step - pkt.pts
            out_pts = pkt.pts + self._offset
            if self._last_out is not None and out_pts <= self._last_out:
                # Never go backwards (publisher restarts, RTP wrap handled upstream).
                self._offset += self._last_out + step - out_pts
                out_pts = self._last_out + step
            self._last_out = out_pts
            self.sent += 1
            if self._offset == 0:
                return pkt.packet
            packet = av.Packet(bytes(pkt.packet))
            packet.pts = out_pts
            packet.dts = out_pts
            packet.time_base = pkt.time_base
            packet.is_keyframe = pkt.keyframe
            return packet


def _rtc_peer() -> RTCPeerConnection:
    return RTCPeerConnection(compat.rtc_configuration())


@dataclass
class IncomingTrack:
    kind: TrackKind
    codec: str
    transceiver: RTCRtpTransceiver


class PublisherPeer:
    """Receives a participant's media. The client offers; the server answers."""

    def __init__(self, label: str, video_codecs: Sequence[str], on_state: Callable[[str], None]) -> None:
        self.label = label
        self.pc = _rtc_peer()
        self._video_codecs = tuple(video_codecs)
        self._known: dict[str, IncomingTrack] = {}  # mid -> track
        self._released: dict[str, IncomingTrack] = {}  # mid -> track unpublished, may come back
        self._lock = asyncio.Lock()

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            on_state(self.pc.connectionState)

    async def handle_offer(
        self, sdp: str, kinds_by_mid: dict[str, TrackKind] | None = None
    ) -> tuple[str, list[IncomingTrack]]:
        """Apply a (re-)offer; return the answer and the newly announced tracks.

        ``kinds_by_mid`` says which m-line carries what; without it audio is
        AUDIO, the first video is CAMERA and a second video SCREEN.
        """
        async with self._lock:
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as exc:
                raise NegotiationError(f"bad offer: {exc}") from exc
            new: list[IncomingTrack] = []
            used = {t.kind for t in self._known.values()}
            for tr in self.pc.getTransceivers():
                mid = tr.mid
                if mid is None or mid in self._known or tr.receiver.track is None:
                    continue
                again = self._released.get(mid)
                if again is not None:
                    # Published again on the m-line it used before (a browser's second screen share).
                    if (kinds_by_mid or {}).get(mid) == again.kind and again.kind not in used:
                        del self._released[mid]
                        self._known[mid] = again
                        used.add(again.kind)
                        new.append(again)
                    continue
                kind = (kinds_by_mid or {}).get(mid) or _default_kind(tr.kind, used)
                if kind is None or kind.media != tr.kind or kind in used:
                    tr.direction = "inactive"
                    continue
                mimes = compat.AUDIO_CODECS if tr.kind == "audio" else self._video_codecs
                codec = compat.restrict_answer_codecs(tr, mimes)
                if codec is None:
                    raise NegotiationError(f"no supported {tr.kind} codec offered (want {', '.join(mimes)})")
                tr.direction = "recvonly"
                compat.enable_passthrough(tr.receiver)
                incoming = IncomingTrack(kind=kind, codec=codec, transceiver=tr)
                self._known[mid] = incoming
                used.add(kind)
                new.append(incoming)
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
            return self.pc.localDescription.sdp, new

    def release(self, kind: TrackKind) -> None:
        """Forget an unpublished kind, so a later offer may publish it again.

        Its m-line is only taken back when a re-offer names it with the same kind.
        """
        for mid, incoming in list(self._known.items()):
            if incoming.kind == kind:
                del self._known[mid]
                self._released[mid] = incoming

    async def close(self) -> None:
        await self.pc.close()


def _default_kind(media: str, used: set[TrackKind]) -> TrackKind | None:
    if media == "audio":
        return TrackKind.AUDIO
    for kind in (TrackKind.CAMERA, TrackKind.SCREEN):
        if kind not in used:
            return kind
    return None


@dataclass
class Slot:
    transceiver: RTCRtpTransceiver
    track: SlotTrack
    codec: str
    track_id: str | None = None
    forwarder: TrackForwarder | None = None
    pending: bool = field(default=False)  # assigned, attach once negotiated


class SubscriberPeer:
    """Sends subscribed tracks to one participant.

    Two ways to negotiate: the server offers (WebSocket clients,
    :meth:`prepare_offer` / :meth:`apply_answer`), or the client offers
    receive-only m-lines (WHEP, :meth:`answer_offer`).
    """

    def __init__(
        self,
        label: str,
        queue_sizes: tuple[int, int],
        on_state: Callable[[str], None],
    ) -> None:
        self.label = label
        self.pc = _rtc_peer()
        self.slots: list[Slot] = []
        self._audio_q, self._video_q = queue_sizes
        self.lock = asyncio.Lock()
        self.awaiting_answer = False

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            on_state(self.pc.connectionState)

    def mapping(self) -> dict[str, str]:
        """mid -> track id for slots that carry a track."""
        return {s.transceiver.mid: s.track_id for s in self.slots if s.track_id and s.transceiver.mid}

    def assigned(self) -> dict[str, TrackForwarder]:
        return {s.track_id: s.forwarder for s in self.slots if s.track_id and s.forwarder}

    def _queue_size(self, media: str) -> int:
        return self._audio_q if media == "audio" else self._video_q

    def _new_slot(self, info: TrackInfo) -> Slot:
        track = SlotTrack(info.media)
        tr = self.pc.addTransceiver(track, direction="sendonly")
        mimes = [info.codec] if info.media == "video" else list(compat.AUDIO_CODECS)
        compat.prefer_codecs(tr, mimes)
        compat.on_keyframe_request(tr.sender, track.request_keyframe)
        slot = Slot(transceiver=tr, track=track, codec=info.codec)
        self.slots.append(slot)
        return slot

    def _release(self, slot: Slot) -> None:
        slot.track.detach()
        slot.track_id = None
        slot.forwarder = None
        slot.pending = False

    def _attach(self, slot: Slot) -> None:
        if slot.forwarder is None or not slot.pending:
            return
        slot.pending = False
        try:
            sub = slot.forwarder.subscribe(
                maxsize=self._queue_size(slot.forwarder.info.media), name=f"{self.label}<-{slot.track_id}"
            )
        except TrackEnded:
            self._release(slot)
            return
        slot.track.attach(sub)

    def assign(self, wanted: dict[str, TrackForwarder]) -> bool:
        """Point slots at ``wanted`` (track id -> forwarder).  True if an offer is needed."""
        need_offer = False
        for slot in self.slots:
            fwd = wanted.get(slot.track_id) if slot.track_id else None
            if slot.track_id and (fwd is None or fwd is not slot.forwarder):
                self._release(slot)
        have = {s.track_id for s in self.slots if s.track_id}
        for tid, fwd in wanted.items():
            if tid in have:
                continue
            found = next(
                (
                    s
                    for s in self.slots
                    if s.track_id is None
                    and s.transceiver.kind == fwd.info.media
                    and s.codec.lower() == fwd.info.codec.lower()
                    and s.transceiver.mid is not None
                ),
                None,
            )
            if found is None:
                slot = self._new_slot(fwd.info)
                need_offer = True
            else:
                slot = found
            slot.track_id = tid
            slot.forwarder = fwd
            slot.pending = True
        return need_offer

    def attach_pending(self) -> None:
        for slot in self.slots:
            self._attach(slot)

    async def prepare_offer(self) -> str:
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        self.awaiting_answer = True
        return self.pc.localDescription.sdp

    async def apply_answer(self, sdp: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            raise NegotiationError(f"bad answer: {exc}") from exc
        finally:
            self.awaiting_answer = False
        self.attach_pending()

    async def answer_offer(self, sdp: str, tracks: Sequence[TrackForwarder]) -> str:
        """Answer a receive-only offer, filling its m-lines in order with ``tracks``."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            raise NegotiationError(f"bad offer: {exc}") from exc
        remaining = list(tracks)
        for tr in self.pc.getTransceivers():
            if any(s.transceiver is tr for s in self.slots):
                continue
            offered = {c.mimeType.lower() for c in compat.negotiated_codecs(tr)}
            fwd = next(
                (f for f in remaining if f.info.media == tr.kind and f.info.codec.lower() in offered),
                None,
            )
            if fwd is None:
                tr.direction = "inactive"
                continue
            remaining.remove(fwd)
            compat.restrict_answer_codecs(tr, [fwd.info.codec])
            track = SlotTrack(tr.kind)
            tr.sender.replaceTrack(track)
            tr.direction = "sendonly"
            compat.on_keyframe_request(tr.sender, track.request_keyframe)
            self.slots.append(
                Slot(
                    transceiver=tr,
                    track=track,
                    codec=fwd.info.codec,
                    track_id=fwd.info.track_id,
                    forwarder=fwd,
                    pending=True,
                )
            )
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        self.attach_pending()
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        for slot in self.slots:
            slot.track.detach()
        with contextlib.suppress(Exception):
            await self.pc.close()
