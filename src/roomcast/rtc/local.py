"""Publishers that live in this process (stream ingest): a participant with no peer connection.

Their encoded packets enter the room's forwarders directly, so subscribers, recorders and relays
see them like any publisher's, without a loopback WebRTC hop (no ICE, DTLS, SRTP or jitter buffer
between the producer and the SFU).
"""

from __future__ import annotations

import asyncio
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .auth import Identity, Permission
from .events import LeaveReason
from .forwarder import KeyframeRequester
from .participant import Participant
from .room import RoomManager
from .track import TrackKind


class LocalTrack(MediaStreamTrack):
    """A passthrough source: ``push`` encoded packets (``av.Packet`` with pts, time base and
    ``opaque`` = :class:`roomcast.rtc.aiortc_compat.PacketInfo`), the forwarder reads them."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue()

    def push(self, packet: av.Packet[Any]) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(packet)

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()

    async def recv(self) -> av.Packet[Any]:
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        return packet


class LocalPublisher:
    """One in-process participant that publishes :class:`LocalTrack`s."""

    def __init__(self, sfu: RoomManager, app_key: str, room_id: str, user_id: str) -> None:
        self._sfu = sfu
        publish = frozenset({Permission.PUBLISH})
        self.identity = Identity(app_key, room_id, user_id, permissions=publish, user_agent="roomcast-ingest")
        self.participant: Participant | None = None
        self.tracks: dict[TrackKind, LocalTrack] = {}

    def in_room(self) -> bool:
        """Whether someone with this user id is in the room already (this publisher or not)."""
        room = self._sfu.get_room(self.identity.app_key, self.identity.room_id)
        return room is not None and self.identity.user_id in room.participants

    async def join(self) -> Participant:
        self.participant = await self._sfu.join(self.identity)
        return self.participant

    @property
    def left(self) -> bool:
        return self.participant is None or not self.participant.active

    async def publish(
        self, kind: TrackKind, codec: str, track: LocalTrack, request_keyframe: KeyframeRequester | None
    ) -> None:
        """Publish ``track`` (packets pushed before this are kept and forwarded)."""
        p = self.participant
        if p is None or not p.active:
            track.stop()
            return
        self.tracks[kind] = track
        await p.room.add_local_track(p, kind, codec, track, request_keyframe)

    async def leave(self, reason: LeaveReason = LeaveReason.LEFT, detail: str = "") -> None:
        for track in self.tracks.values():
            track.stop()
        p = self.participant
        if p is not None and p.active:
            await p.room.leave(p, reason, detail)
