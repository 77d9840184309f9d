"""Rooms and the RoomManager: the SFU's in-memory state and moderation API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

from . import aiortc_compat as compat
from .auth import ALL_PERMISSIONS, Identity, Permission
from .errors import BadRequestError, NotFoundError, RoomClosedError, RoomFullError, TooManyRoomsError
from .events import (
    EventBus,
    LeaveReason,
    MediaBlocked,
    MediaType,
    MediaUnblocked,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantRemoved,
    RoomClosed,
    RoomDismissed,
    RoomOpened,
    TrackMuted,
    TrackPublished,
    TrackUnmuted,
    TrackUnpublished,
)
from .forwarder import KeyframeRequester, PacketSubscription, TrackForwarder
from .participant import Participant, PublishedTrack, Resource
from .peer import IncomingTrack, PublisherPeer, SubscriberPeer
from .routing import JoinGate
from .stats import StatsSampler
from .track import TrackInfo, TrackKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SfuConfig:
    max_participants_per_room: int = 50
    max_rooms: int = 1000
    empty_room_grace: float = 30.0  # seconds an empty room stays open
    min_keyframe_interval: float = 0.5  # seconds between PLIs sent to one publisher
    video_queue_frames: int = 60  # per subscriber, before dropping to the next keyframe
    audio_queue_packets: int = 50
    stats_interval: float = 5.0  # 0 disables the sampler
    video_codecs: tuple[str, ...] = compat.DEFAULT_VIDEO_CODECS
    # ICE host candidates to offer, e.g. ("127.0.0.1",) for loopback; None = aioice's own list.
    ice_host_addresses: tuple[str, ...] | None = None


RoomKey = tuple[str, str]

MIN_CMD_ID, MAX_CMD_ID = 1, 10
MAX_CLIENT_CUSTOM_BYTES = 1024  # per message from a client, as TRTC's sendCustomCmdMsg allows
MAX_SERVER_CUSTOM_BYTES = 16384  # server-originated (transcripts of long sentences)


def check_custom(cmd_id: object, data: object, *, limit: int = MAX_CLIENT_CUSTOM_BYTES) -> None:
    """A custom message's command id is 1-10 and its data a string of at most ``limit`` bytes."""
    if not isinstance(cmd_id, int) or isinstance(cmd_id, bool) or not MIN_CMD_ID <= cmd_id <= MAX_CMD_ID:
        raise BadRequestError(f"cmd_id must be an integer from {MIN_CMD_ID} to {MAX_CMD_ID}")
    if not isinstance(data, str):
        raise BadRequestError("data must be a string")
    if len(data.encode()) > limit:
        raise BadRequestError(f"data is larger than {limit} bytes")


class Room:
    def __init__(self, manager: RoomManager, app_key: str, room_id: str) -> None:
        self.manager = manager
        self.app_key = app_key
        self.room_id = room_id
        self.created_at = time.time()
        self.participants: dict[str, Participant] = {}
        self.blocked: dict[str, set[MediaType]] = {}
        self.closed = False
        self._shutting_down = False
        self._close_timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"Room({self.app_key}/{self.room_id}, {len(self.participants)} participants)"

    @property
    def key(self) -> RoomKey:
        return (self.app_key, self.room_id)

    @property
    def config(self) -> SfuConfig:
        return self.manager.config

    def _emit(self, event_type: type, **fields: object) -> None:
        self.manager.events.publish(event_type(app_key=self.app_key, room_id=self.room_id, **fields))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%r: background task %s failed", self, task.get_name(), exc_info=task.exception())

    def visible_count(self) -> int:
        return sum(1 for p in self.participants.values() if not p.hidden)

    def published_tracks(self) -> list[PublishedTrack]:
        return [pt for p in self.participants.values() for pt in p.published.values()]

    def find_track(self, user_id: str, kind: TrackKind) -> PublishedTrack | None:
        p = self.participants.get(user_id)
        return p.published.get(kind) if p else None

    def snapshot(self) -> dict[str, object]:
        """A JSON-ready description of the room (for join replies and admin APIs)."""
        return {
            "app_key": self.app_key,
            "room_id": self.room_id,
            "participants": [
                {
                    "user_id": p.user_id,
                    "session_id": p.session_id,
                    "tracks": [
                        {
                            "track_id": pt.info.track_id,
                            "kind": pt.info.kind.value,
                            "codec": pt.info.codec,
                            "muted": pt.info.kind in p.muted,
                        }
                        for pt in p.published.values()
                    ],
                }
                for p in self.participants.values()
                if not p.hidden
            ],
        }

    # ---------------------------------------------------------- membership

    async def join(self, identity: Identity) -> Participant:
        if self.closed:
            raise RoomClosedError(f"room {self.room_id} is closed")
        old = self.participants.get(identity.user_id)
        if (
            old is None
            and not identity.hidden
            and self.visible_count() >= self.config.max_participants_per_room
        ):
            raise RoomFullError(
                f"room {self.room_id} is full ({self.config.max_participants_per_room} participants)"
            )
        if old is not None:
            await self.leave(old, LeaveReason.REPLACED, "joined again")
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        p = Participant(self, identity)
        self.participants[p.user_id] = p
        self._emit(
            ParticipantJoined,
            user_id=p.user_id,
            session_id=p.session_id,
            hidden=p.hidden,
            ip=identity.client_ip,
            user_agent=identity.user_agent,
            join_ms=(time.time() - identity.join_started) * 1000 if identity.join_started else None,
        )
        return p

    async def leave(self, p: Participant, reason: LeaveReason, detail: str = "") -> None:
        if p.closed.is_set():
            return
        p.leave_reason = reason
        p.leave_detail = detail
        p.closed.set()
        if self.participants.get(p.user_id) is p:
            del self.participants[p.user_id]
        for kind in list(p.published):
            await self._remove_track(p, kind)
        peers: list[PublisherPeer | SubscriberPeer] = [r.peer for r in p.resources.values()]
        peers += [x for x in (p.publisher, p.subscriber) if x is not None]
        p.resources.clear()
        for peer in peers:
            with contextlib.suppress(Exception):
                await peer.close()
        self._emit(
            ParticipantLeft,
            user_id=p.user_id,
            session_id=p.session_id,
            reason=reason,
            detail=detail,
            hidden=p.hidden,
        )
        if not self.participants:
            self._schedule_close()

    def _schedule_close(self) -> None:
        if self.closed or self.participants or self._shutting_down:
            return
        grace = self.config.empty_room_grace
        if grace <= 0:
            self.manager._close_room(self, "empty")
            return
        if self._close_timer is None:
            self._close_timer = asyncio.ensure_future(self._close_later(grace))

    async def _close_later(self, grace: float) -> None:
        await asyncio.sleep(grace)
        self._close_timer = None
        if not self.participants and not self.closed:
            self.manager._close_room(self, "empty")

    # -------------------------------------------------------------- tracks

    def _new_publisher_peer(self, p: Participant, resource_id: str | None) -> PublisherPeer:
        label = f"{self.room_id}/{p.user_id}/pub"
        holder: list[PublisherPeer] = []

        def on_state(state: str) -> None:
            if state in ("failed", "closed") and holder:
                self._spawn(self._peer_gone(p, holder[0], resource_id), f"{label} gone")

        peer = PublisherPeer(label, self.config.video_codecs, on_state)
        holder.append(peer)
        return peer

    def _new_subscriber_peer(self, p: Participant, resource_id: str | None) -> SubscriberPeer:
        label = f"{self.room_id}/{p.user_id}/sub"
        holder: list[SubscriberPeer] = []

        def on_state(state: str) -> None:
            if state in ("failed", "closed") and holder:
                self._spawn(self._peer_gone(p, holder[0], resource_id), f"{label} gone")

        peer = SubscriberPeer(
            label, (self.config.audio_queue_packets, self.config.video_queue_frames), on_state
        )
        holder.append(peer)
        return peer

    async def _peer_gone(
        self, p: Participant, peer: PublisherPeer | SubscriberPeer, resource_id: str | None
    ) -> None:
        if not p.active:
            return
        if resource_id is not None:
            res = p.resources.get(resource_id)
            if res is not None:
                await self._close_resource(p, res)
            return
        # The WebSocket client's connection failed: drop what it published.
        for kind, pt in list(p.published.items()):
            if pt.peer is peer:
                await self._remove_track(p, kind)

    async def _close_resource(self, p: Participant, res: Resource) -> None:
        p.resources.pop(res.resource_id, None)
        for kind, pt in list(p.published.items()):
            if pt.peer is res.peer:
                await self._remove_track(p, kind)
        with contextlib.suppress(Exception):
            await res.peer.close()
        if p.signal is None and not p.resources and p.active:
            # WHIP/WHEP-only participant: its last session ended.
            await self.leave(p, LeaveReason.LEFT, "resource deleted")

    async def _add_track(self, p: Participant, incoming: IncomingTrack, peer: PublisherPeer) -> None:
        receiver = incoming.transceiver.receiver

        async def request_keyframe() -> bool:
            return await compat.send_pli(receiver)

        await self._add_forwarder(
            p, incoming.kind, incoming.codec, receiver.track, request_keyframe, receiver=receiver, peer=peer
        )

    async def add_local_track(
        self,
        p: Participant,
        kind: TrackKind,
        codec: str,
        source: MediaStreamTrack,
        request_keyframe: KeyframeRequester | None,
    ) -> TrackForwarder:
        """Publish a track produced in this process (stream ingest, a robot's voice) as ``p``'s:
        subscribers, recorders and relays see it like any publisher's. ``source.recv()`` yields
        encoded ``av.Packet``s."""
        if not p.active:
            raise RoomClosedError("participant has left")
        p._check(Permission.PUBLISH)
        return await self._add_forwarder(p, kind, codec, source, request_keyframe, receiver=None, peer=None)

    async def _add_forwarder(
        self,
        p: Participant,
        kind: TrackKind,
        codec: str,
        source: MediaStreamTrack,
        request_keyframe: KeyframeRequester | None,
        *,
        receiver: RTCRtpReceiver | None,
        peer: PublisherPeer | None,
    ) -> TrackForwarder:
        if kind in p.published:
            await self._remove_track(p, kind)
        info = TrackInfo(
            app_key=self.app_key, room_id=self.room_id, user_id=p.user_id, kind=kind, codec=codec
        )
        fwd = TrackForwarder(
            info, source, request_keyframe, min_keyframe_interval=self.config.min_keyframe_interval
        )
        blocked = self.blocked.get(p.user_id, set())
        fwd.set_blocked(MediaType(info.media) in blocked)
        fwd.set_muted(info.kind in p.muted)
        fwd.start()
        p.published[info.kind] = PublishedTrack(info=info, forwarder=fwd, receiver=receiver, peer=peer)
        self._emit(
            TrackPublished, user_id=p.user_id, kind=info.kind, codec=info.codec, track_id=info.track_id
        )
        self._resync_all(exclude=p)
        return fwd

    async def _remove_track(self, p: Participant, kind: TrackKind) -> None:
        pt = p.published.pop(kind, None)
        if pt is None:
            return
        await pt.forwarder.stop()
        self._emit(TrackUnpublished, user_id=p.user_id, kind=kind, track_id=pt.info.track_id)
        self._resync_all(exclude=p)

    async def _set_muted(self, p: Participant, kind: TrackKind, muted: bool) -> None:
        if muted == (kind in p.muted):
            return
        if muted:
            p.muted.add(kind)
        else:
            p.muted.discard(kind)
        pt = p.published.get(kind)
        if pt is not None:
            pt.forwarder.set_muted(muted)
        tid = f"{p.user_id}/{kind.value}"
        self._emit(TrackMuted if muted else TrackUnmuted, user_id=p.user_id, kind=kind, track_id=tid)

    def _resync_all(self, exclude: Participant | None = None) -> None:
        for other in list(self.participants.values()):
            if other is not exclude and other.signal is not None and (other.auto_subscribe or other.wanted):
                self._spawn(self._sync_subscriptions(other), f"sync {other.user_id}")

    def _wanted_forwarders(self, p: Participant) -> dict[str, TrackForwarder]:
        out: dict[str, TrackForwarder] = {}
        for pt in self.published_tracks():
            if pt.info.user_id == p.user_id:
                continue
            if p.auto_subscribe or pt.info.track_id in p.wanted:
                out[pt.info.track_id] = pt.forwarder
        return out

    async def _sync_subscriptions(self, p: Participant) -> None:
        """Bring the WebSocket subscriber connection in line with what ``p`` wants."""
        if not p.active or p.signal is None:
            return
        wanted = self._wanted_forwarders(p)
        if p.subscriber is None:
            if not wanted:
                return
            p.subscriber = self._new_subscriber_peer(p, None)
        sub = p.subscriber
        async with sub.lock:
            if sub.awaiting_answer:
                p.resync_needed = True
                return
            need_offer = sub.assign(wanted)
            if need_offer:
                sdp = await sub.prepare_offer()
                msg: dict[str, object] = {"type": "offer", "sdp": sdp, "mapping": sub.mapping()}
            else:
                sub.attach_pending()
                msg = {"type": "subscriptions", "mapping": sub.mapping()}
        if p.signal is not None and p.active:
            await p.signal(msg)

    # ------------------------------------------------------ custom messages

    async def send_custom(
        self, sender: str, cmd_id: int, data: str, *, to: Iterable[str] | None = None
    ) -> int:
        """Deliver a custom message (TRTC's ``sendCustomCmdMsg``) to the room's other participants
        (or only to ``to``); returns how many received it. Order per receiver is kept."""
        check_custom(cmd_id, data, limit=MAX_SERVER_CUSTOM_BYTES)
        wanted = set(to) if to is not None else None
        msg: dict[str, object] = {
            "type": "custom_message",
            "app_key": self.app_key,
            "room_id": self.room_id,
            "sender": sender,
            "cmd_id": cmd_id,
            "data": data,
            "at": time.time(),
        }
        sends: list[Awaitable[None]] = []
        local = 0
        for p in list(self.participants.values()):
            if p.user_id == sender or (wanted is not None and p.user_id not in wanted) or not p.active:
                continue
            if p.on_custom is not None:
                p.on_custom(sender, cmd_id, data)
                local += 1
            elif p.signal is not None:
                sends.append(p.signal(msg))
        if sends:
            await asyncio.gather(*sends, return_exceptions=True)
        return local + len(sends)

    # ----------------------------------------------------------- moderation

    async def remove(self, user_ids: Iterable[str], reason: str) -> list[str]:
        removed: list[str] = []
        for uid in user_ids:
            p = self.participants.get(uid)
            if p is None:
                continue
            self._emit(ParticipantRemoved, user_id=uid, session_id=p.session_id, reason=reason)
            await self.leave(p, LeaveReason.REMOVED, reason)
            removed.append(uid)
        return removed

    async def dismiss(self, reason: str) -> None:
        if self.closed:
            return
        self._emit(RoomDismissed, reason=reason)
        self._shutting_down = True
        for p in list(self.participants.values()):
            await self.leave(p, LeaveReason.DISMISSED, reason)
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self.manager._close_room(self, "dismissed")

    def set_blocked(self, user_id: str, *, audio: bool | None = None, video: bool | None = None) -> None:
        """Block (True) / unblock (False) forwarding of a user's audio and/or video; None = unchanged.

        Applies to the user's current and future tracks while the room lives.
        """
        current = self.blocked.setdefault(user_id, set())
        newly_blocked: set[MediaType] = set()
        newly_unblocked: set[MediaType] = set()
        for media, flag in ((MediaType.AUDIO, audio), (MediaType.VIDEO, video)):
            if flag is True and media not in current:
                current.add(media)
                newly_blocked.add(media)
            elif flag is False and media in current:
                current.discard(media)
                newly_unblocked.add(media)
        p = self.participants.get(user_id)
        if p is not None:
            for pt in p.published.values():
                pt.forwarder.set_blocked(MediaType(pt.info.media) in current)
        if newly_blocked:
            self._emit(MediaBlocked, user_id=user_id, media=frozenset(newly_blocked))
        if newly_unblocked:
            self._emit(MediaUnblocked, user_id=user_id, media=frozenset(newly_unblocked))

    async def _close(self) -> None:
        self._shutting_down = True
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        for p in list(self.participants.values()):
            await self.leave(p, LeaveReason.SERVER_SHUTDOWN)
        for task in list(self._tasks):
            task.cancel()


class RoomManager:
    """All rooms of this server, keyed by ``(app_key, room_id)``.

    Also the in-process media source for recorders and relays
    (:meth:`list_tracks`, :meth:`subscribe_track`) and the owner of the event
    bus (:attr:`events`).
    """

    def __init__(self, config: SfuConfig | None = None, events: EventBus | None = None) -> None:
        self.config = config or SfuConfig()
        self.events = events or EventBus()
        self._rooms: dict[RoomKey, Room] = {}
        self.gate: JoinGate | None = None
        """Several nodes: decides whether a room is served here (``rtc.routing``)."""
        self._stats: StatsSampler | None = None
        if self.config.ice_host_addresses is not None:
            compat.set_ice_host_addresses(self.config.ice_host_addresses)
        compat.install_receive_hooks()

    async def start(self) -> None:
        """Start background work (the stats sampler). Safe to call twice."""
        if self._stats is None and self.config.stats_interval > 0:
            self._stats = StatsSampler(self, self.config.stats_interval)
            self._stats.start()

    async def close(self) -> None:
        """Disconnect everyone (reason ``server_shutdown``) and stop background work."""
        if self._stats is not None:
            await self._stats.stop()
            self._stats = None
        for room in list(self._rooms.values()):
            await room._close()
            self._close_room(room, "server_shutdown")

    # -------------------------------------------------------------- rooms

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    def get_room(self, app_key: str, room_id: str) -> Room | None:
        return self._rooms.get((app_key, room_id))

    def room(self, app_key: str, room_id: str) -> Room:
        room = self.get_room(app_key, room_id)
        if room is None:
            raise NotFoundError(f"no room {room_id}")
        return room

    def _open_room(self, app_key: str, room_id: str) -> Room:
        room = self._rooms.get((app_key, room_id))
        if room is not None:
            return room
        if len(self._rooms) >= self.config.max_rooms:
            raise TooManyRoomsError(f"server limit of {self.config.max_rooms} rooms reached")
        room = Room(self, app_key, room_id)
        self._rooms[room.key] = room
        self.events.publish(RoomOpened(app_key=app_key, room_id=room_id))
        return room

    def _close_room(self, room: Room, reason: str) -> None:
        if room.closed:
            return
        room.closed = True
        if self._rooms.get(room.key) is room:
            del self._rooms[room.key]
        self.events.publish(RoomClosed(app_key=room.app_key, room_id=room.room_id, reason=reason))

    async def evict_room(self, app_key: str, room_id: str, reason: str) -> None:
        """Disconnect everyone (``server_shutdown``: they may join again, e.g. on another node)
        and close the room here."""
        room = self.get_room(app_key, room_id)
        if room is not None:
            await room._close()
            self._close_room(room, reason)

    # -------------------------------------------------------- participants

    async def join(self, identity: Identity) -> Participant:
        """Enter a room (opening it if needed).  A second join of the same user replaces the first."""
        if self.gate is not None:
            await self.gate(identity.app_key, identity.room_id)
        room = self._open_room(identity.app_key, identity.room_id)
        try:
            return await room.join(identity)
        except Exception:
            room._schedule_close()
            raise

    def participant(self, app_key: str, room_id: str, user_id: str) -> Participant:
        p = self.room(app_key, room_id).participants.get(user_id)
        if p is None:
            raise NotFoundError(f"{user_id} is not in room {room_id}")
        return p

    async def remove_participants(
        self, app_key: str, room_id: str, user_ids: Iterable[str], reason: str
    ) -> list[str]:
        """Moderation: disconnect users (event ``participant_removed`` then ``participant_left``)."""
        return await self.room(app_key, room_id).remove(user_ids, reason)

    async def dismiss_room(self, app_key: str, room_id: str, reason: str = "dismissed") -> None:
        await self.room(app_key, room_id).dismiss(reason)

    async def send_custom(
        self,
        app_key: str,
        room_id: str,
        sender: str,
        cmd_id: int,
        data: str,
        *,
        to: Iterable[str] | None = None,
    ) -> int:
        """A server-side custom message into a room (robots: subtitles, state); see Room.send_custom."""
        return await self.room(app_key, room_id).send_custom(sender, cmd_id, data, to=to)

    def set_media_blocked(
        self,
        app_key: str,
        room_id: str,
        user_id: str,
        *,
        audio: bool | None = None,
        video: bool | None = None,
    ) -> None:
        self.room(app_key, room_id).set_blocked(user_id, audio=audio, video=video)

    # ----------------------------------------------- source interface (recorders)

    def list_tracks(self, app_key: str, room_id: str) -> list[TrackInfo]:
        room = self.get_room(app_key, room_id)
        return [pt.info for pt in room.published_tracks()] if room else []

    def subscribe_track(
        self,
        app_key: str,
        room_id: str,
        user_id: str,
        kind: TrackKind,
        *,
        maxsize: int | None = None,
        name: str = "",
    ) -> PacketSubscription:
        """Receive a published track's packets in-process.  Raises NotFoundError if not published."""
        room = self.room(app_key, room_id)
        pt = room.find_track(user_id, kind)
        if pt is None:
            raise NotFoundError(f"{user_id} does not publish {kind.value} in {room_id}")
        size = maxsize or (
            self.config.audio_queue_packets if kind is TrackKind.AUDIO else self.config.video_queue_frames
        )
        return pt.forwarder.subscribe(maxsize=size, name=name or f"source<-{pt.info.track_id}")

    def request_keyframe(
        self, app_key: str, room_id: str, user_id: str, kind: TrackKind = TrackKind.CAMERA
    ) -> None:
        pt = self.room(app_key, room_id).find_track(user_id, kind)
        if pt is None:
            raise NotFoundError(f"{user_id} does not publish {kind.value}")
        pt.forwarder.request_keyframe()


def default_identity(app_key: str, room_id: str, user_id: str, *, hidden: bool = False) -> Identity:
    """An identity with every permission (for in-process bots and tests)."""
    return Identity(app_key, room_id, user_id, permissions=frozenset(ALL_PERMISSIONS), hidden=hidden)


__all__ = ["Permission", "Room", "RoomManager", "SfuConfig", "default_identity"]
