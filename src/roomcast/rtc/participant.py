"""A participant: one user's session in a room, its peer connections and tracks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiortc import RTCRtpReceiver

from .auth import Identity, Permission
from .errors import NotFoundError, PermissionDeniedError, RoomClosedError
from .events import LeaveReason
from .forwarder import TrackForwarder
from .peer import PublisherPeer, SubscriberPeer
from .track import TrackInfo, TrackKind

if TYPE_CHECKING:
    from .room import Room

SignalSender = Callable[[dict[str, Any]], Awaitable[None]]
CustomHandler = Callable[[str, int, str], None]
"""An in-process participant's receiver of custom messages: (sender, cmd_id, data)."""


@dataclass
class PublishedTrack:
    info: TrackInfo
    forwarder: TrackForwarder
    receiver: RTCRtpReceiver | None  # None: produced in this process (rtc.local, a robot's voice)
    peer: PublisherPeer | None


@dataclass
class Resource:
    """A WHIP or WHEP session (one peer connection), addressable for DELETE."""

    resource_id: str
    peer: PublisherPeer | SubscriberPeer
    kinds: list[TrackKind] = field(default_factory=list)


class Participant:
    """Created by :meth:`Room.join`; all mutations go through the room so events stay consistent."""

    def __init__(self, room: Room, identity: Identity) -> None:
        self.room = room
        self.identity = identity
        self.user_id = identity.user_id
        self.session_id = uuid.uuid4().hex
        self.hidden = identity.hidden
        self.published: dict[TrackKind, PublishedTrack] = {}
        self.muted: set[TrackKind] = set()
        self.publisher: PublisherPeer | None = None  # the WebSocket client's publishing PC
        self.subscriber: SubscriberPeer | None = None  # the WebSocket client's receiving PC
        self.resources: dict[str, Resource] = {}
        self.auto_subscribe = False
        self.wanted: set[str] = set()  # explicit subscriptions (track ids)
        self.signal: SignalSender | None = None
        self.on_custom: CustomHandler | None = None  # in-process participants (robots)
        self.closed = asyncio.Event()
        self.leave_reason: LeaveReason | None = None
        self.leave_detail = ""
        self.resync_needed = False

    def __repr__(self) -> str:
        return f"Participant({self.room.app_key}/{self.room.room_id}/{self.user_id})"

    @property
    def active(self) -> bool:
        return not self.closed.is_set()

    def _check(self, permission: Permission | None = None) -> None:
        if not self.active:
            raise RoomClosedError("participant has left")
        if permission is not None and not self.identity.can(permission):
            raise PermissionDeniedError(f"{self.user_id} may not {permission.value}")

    # ----------------------------------------------------------- publishing

    async def publish(self, sdp: str, kinds_by_mid: dict[str, TrackKind] | None = None) -> str:
        """Offer/answer on this participant's publishing peer connection (first offer or re-offer)."""
        self._check(Permission.PUBLISH)
        if self.publisher is None:
            self.publisher = self.room._new_publisher_peer(self, None)
        answer, new = await self.publisher.handle_offer(sdp, kinds_by_mid)
        for incoming in new:
            await self.room._add_track(self, incoming, self.publisher)
        return answer

    async def publish_resource(self, sdp: str, kinds: list[TrackKind] | None = None) -> tuple[str, Resource]:
        """WHIP: a separate peer connection per ingest session."""
        self._check(Permission.PUBLISH)
        resource_id = uuid.uuid4().hex
        peer = self.room._new_publisher_peer(self, resource_id)
        res = Resource(resource_id=resource_id, peer=peer)
        self.resources[resource_id] = res
        mapping: dict[str, TrackKind] | None = None
        if kinds:
            # Map the offer's m-lines in order onto the requested kinds per media type.
            mapping = {}
            from .sdp_utils import media_sections

            pending = list(kinds)
            for mid, media in media_sections(sdp):
                kind = next((k for k in pending if k.media == media), None)
                if kind is not None:
                    pending.remove(kind)
                    mapping[mid] = kind
        try:
            answer, new = await peer.handle_offer(sdp, mapping)
            for incoming in new:
                if incoming.kind in self.published:
                    await self.room._remove_track(self, incoming.kind)
                await self.room._add_track(self, incoming, peer)
                res.kinds.append(incoming.kind)
        except BaseException:
            self.resources.pop(resource_id, None)
            await peer.close()
            raise
        return answer, res

    async def unpublish(self, kind: TrackKind) -> None:
        self._check()
        pt = self.published.get(kind)
        if pt is None:
            raise NotFoundError(f"{self.user_id} does not publish {kind.value}")
        await self.room._remove_track(self, kind)
        if self.publisher is not None and pt.peer is self.publisher:
            self.publisher.release(kind)

    async def set_muted(self, kind: TrackKind, muted: bool) -> None:
        self._check()
        await self.room._set_muted(self, kind, muted)

    # ---------------------------------------------------------- subscribing

    async def subscribe(self, track_ids: list[str] | None = None, *, all_tracks: bool = False) -> None:
        """Add subscriptions (``all_tracks``: every current and future track of others)."""
        self._check(Permission.SUBSCRIBE)
        if all_tracks:
            self.auto_subscribe = True
        self.wanted.update(track_ids or [])
        await self.room._sync_subscriptions(self)

    async def unsubscribe(self, track_ids: list[str] | None = None, *, all_tracks: bool = False) -> None:
        self._check()
        if all_tracks:
            self.auto_subscribe = False
            self.wanted.clear()
        self.wanted.difference_update(track_ids or [])
        await self.room._sync_subscriptions(self)

    async def apply_answer(self, sdp: str) -> None:
        """The client's answer to the last subscriber offer."""
        self._check()
        if self.subscriber is None:
            raise NotFoundError("no subscriber offer pending")
        async with self.subscriber.lock:
            await self.subscriber.apply_answer(sdp)
        if self.resync_needed:
            self.resync_needed = False
            await self.room._sync_subscriptions(self)

    async def subscribe_resource(
        self, sdp: str, publisher_id: str | None, kinds: list[TrackKind] | None
    ) -> tuple[str, Resource]:
        """WHEP: answer a receive-only offer with the tracks of ``publisher_id`` (or everyone's)."""
        self._check(Permission.SUBSCRIBE)
        tracks = [
            pt.forwarder
            for pt in self.room.published_tracks()
            if pt.info.user_id != self.user_id
            and (publisher_id is None or pt.info.user_id == publisher_id)
            and (kinds is None or pt.info.kind in kinds)
        ]
        if publisher_id is not None and not tracks:
            raise NotFoundError(f"{publisher_id} publishes nothing in this room")
        tracks.sort(key=lambda f: (f.info.user_id, list(TrackKind).index(f.info.kind)))
        resource_id = uuid.uuid4().hex
        peer = self.room._new_subscriber_peer(self, resource_id)
        res = Resource(resource_id=resource_id, peer=peer)
        self.resources[resource_id] = res
        try:
            answer = await peer.answer_offer(sdp, tracks)
        except BaseException:
            self.resources.pop(resource_id, None)
            await peer.close()
            raise
        return answer, res

    async def delete_resource(self, resource_id: str) -> None:
        res = self.resources.get(resource_id)
        if res is None:
            raise NotFoundError("no such resource")
        await self.room._close_resource(self, res)

    def subscriptions(self) -> dict[str, str]:
        """mid -> track id on the WebSocket subscriber connection."""
        return self.subscriber.mapping() if self.subscriber else {}

    async def leave(self, reason: LeaveReason = LeaveReason.LEFT, detail: str = "") -> None:
        await self.room.leave(self, reason, detail)
