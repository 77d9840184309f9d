"""Typed room events and an in-process async event bus.

The lead's services subscribe to the bus to store events, fire callbacks and
push them over signalling.  Publishing never blocks the media plane: each
subscriber has its own bounded queue; when a subscriber falls behind, the
oldest events are dropped and counted.

Subscriptions and handlers are indexed by room and event type: a subscription
made with ``room=(app_key, room_id)`` and/or ``types=(...)`` is only offered the
events it can want, so publishing costs what is delivered, not the number of
subscriptions (``bench/eventbus.py``: 200 rooms x 6 users, one signalling
subscription per user).  A ``filter`` still runs, after the index, on what is left.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .track import TrackKind

log = logging.getLogger(__name__)


class LeaveReason(enum.StrEnum):
    LEFT = "left"  # the client said goodbye
    DISCONNECTED = "disconnected"  # signalling or media connection lost
    REMOVED = "removed"  # a moderator removed the participant
    DISMISSED = "dismissed"  # the whole room was dismissed
    REPLACED = "replaced"  # the same user joined again elsewhere
    SERVER_SHUTDOWN = "server_shutdown"


class MediaType(enum.StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


@dataclass(frozen=True, kw_only=True)
class RoomEvent:
    app_key: str
    room_id: str
    at: float = field(default_factory=time.time)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def type(self) -> str:
        return _TYPE_NAMES[type(self)]


@dataclass(frozen=True, kw_only=True)
class RoomOpened(RoomEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class RoomClosed(RoomEvent):
    """The room is gone (empty past its grace period, dismissed, or server shutdown)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class RoomDismissed(RoomEvent):
    reason: str


@dataclass(frozen=True, kw_only=True)
class ParticipantJoined(RoomEvent):
    user_id: str
    session_id: str
    hidden: bool = False
    ip: str | None = None
    user_agent: str | None = None
    join_ms: float | None = None
    """From the client's signalling connection to its entry (None: not measured, e.g. WHIP)."""


@dataclass(frozen=True, kw_only=True)
class JoinRefused(RoomEvent):
    """An authenticated client could not enter the room (full, closed, too many rooms)."""

    user_id: str
    code: str


@dataclass(frozen=True, kw_only=True)
class ParticipantLeft(RoomEvent):
    user_id: str
    session_id: str
    reason: LeaveReason
    detail: str = ""
    hidden: bool = False


@dataclass(frozen=True, kw_only=True)
class ParticipantRemoved(RoomEvent):
    user_id: str
    session_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class TrackPublished(RoomEvent):
    user_id: str
    kind: TrackKind
    codec: str
    track_id: str


@dataclass(frozen=True, kw_only=True)
class TrackUnpublished(RoomEvent):
    user_id: str
    kind: TrackKind
    track_id: str


@dataclass(frozen=True, kw_only=True)
class TrackMuted(RoomEvent):
    user_id: str
    kind: TrackKind
    track_id: str


@dataclass(frozen=True, kw_only=True)
class TrackUnmuted(RoomEvent):
    user_id: str
    kind: TrackKind
    track_id: str


@dataclass(frozen=True, kw_only=True)
class MediaBlocked(RoomEvent):
    """A moderator stopped forwarding a user's audio and/or video."""

    user_id: str
    media: frozenset[MediaType]


@dataclass(frozen=True, kw_only=True)
class MediaUnblocked(RoomEvent):
    user_id: str
    media: frozenset[MediaType]


@dataclass(frozen=True, kw_only=True)
class TrackStats(RoomEvent):
    """A periodic sample for one publisher track (direction "in") or one
    subscription (direction "out", ``subscriber_id`` set).  Unknown values are None."""

    user_id: str
    kind: TrackKind
    track_id: str
    direction: str
    subscriber_id: str | None = None
    interval: float = 0.0
    bitrate_bps: float | None = None
    packets_received: int | None = None
    packets_lost: int | None = None
    fraction_lost: float | None = None
    jitter_ms: float | None = None
    rtt_ms: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    frames_dropped: int | None = None
    keyframe_requests: int | None = None


@dataclass(frozen=True, kw_only=True)
class WhiteboardOp(RoomEvent):
    """An operation accepted on the room's whiteboard (see docs/whiteboard.md)."""

    user_id: str
    op: dict[str, object]


@dataclass(frozen=True, kw_only=True)
class WhiteboardDraft(RoomEvent):
    """A shape still being drawn (not stored; the finished operation follows with its op_id)."""

    user_id: str
    op: dict[str, object]


@dataclass(frozen=True, kw_only=True)
class ClientReport(RoomEvent):
    """Telemetry a client sent about its own call (validated by :mod:`roomcast.rtc.telemetry`):
    ``device`` fields, getStats-style ``samples`` and device ``events``. Kept server-side."""

    user_id: str
    session_id: str
    device: dict[str, str] = field(default_factory=dict)
    samples: tuple[dict[str, Any], ...] = ()
    events: tuple[dict[str, Any], ...] = ()


_TYPE_NAMES: dict[type[RoomEvent], str] = {
    RoomEvent: "event",
    RoomOpened: "room_opened",
    RoomClosed: "room_closed",
    RoomDismissed: "room_dismissed",
    ParticipantJoined: "participant_joined",
    JoinRefused: "join_refused",
    ParticipantLeft: "participant_left",
    ParticipantRemoved: "participant_removed",
    TrackPublished: "track_published",
    TrackUnpublished: "track_unpublished",
    TrackMuted: "track_muted",
    TrackUnmuted: "track_unmuted",
    MediaBlocked: "media_blocked",
    MediaUnblocked: "media_unblocked",
    TrackStats: "track_stats",
    WhiteboardOp: "wb_op",
    WhiteboardDraft: "wb_draft",
    ClientReport: "client_report",
}


EVENT_TYPES: tuple[type[RoomEvent], ...] = tuple(t for t in _TYPE_NAMES if t is not RoomEvent)
"""Every concrete event type (what ``types=`` may name)."""

RoomKey = tuple[str, str]
"""``(app_key, room_id)``."""


def event_to_dict(event: RoomEvent) -> dict[str, object]:
    """A JSON-ready dict with a ``type`` field (enums as values, sets as sorted lists)."""
    out: dict[str, object] = {"type": event.type}
    for name in event.__dataclass_fields__:
        value = getattr(event, name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, frozenset):
            value = sorted(str(v) for v in value)
        out[name] = value
    return out


class EventSubscription:
    """An async iterator over events; ``close()`` (or leaving ``async with``) unsubscribes."""

    def __init__(
        self,
        bus: EventBus,
        maxsize: int,
        filter_: Callable[[RoomEvent], bool] | None,
        keys: tuple[tuple[RoomKey | None, type[RoomEvent] | None], ...] = ((None, None),),
    ) -> None:
        self._bus = bus
        self._keys = keys
        self._queue: asyncio.Queue[RoomEvent | None] = asyncio.Queue()
        self._maxsize = maxsize
        self._filter = filter_
        self.dropped = 0
        self.closed = False

    def _offer(self, event: RoomEvent) -> None:
        if self.closed or (self._filter is not None and not self._filter(event)):
            return
        while self._queue.qsize() >= self._maxsize:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> RoomEvent:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def __aiter__(self) -> AsyncIterator[RoomEvent]:
        return self

    async def __anext__(self) -> RoomEvent:
        return await self.get()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._unindex(self._keys, self)
            self._queue.put_nowait(None)

    async def __aenter__(self) -> EventSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


EventHandler = Callable[[RoomEvent], Awaitable[None] | None]
_Key = tuple[RoomKey | None, type[RoomEvent] | None]


def _keys(room: RoomKey | None, types: Iterable[type[RoomEvent]] | None) -> tuple[_Key, ...]:
    if types is None:
        return ((room, None),)
    wanted: list[type[RoomEvent] | None] = []
    for t in types:
        if t is RoomEvent:
            return ((room, None),)
        if t not in _TYPE_NAMES:
            raise ValueError(f"not an event type: {t!r}")
        if t not in wanted:
            wanted.append(t)
    return tuple((room, t) for t in wanted)


class EventBus:
    def __init__(self) -> None:
        # (room or None = every room, type or None = every type) -> subscriptions / handlers
        self._index: dict[_Key, dict[EventSubscription, None]] = {}
        self._handler_index: dict[_Key, list[EventHandler]] = {}
        self._handler_keys: dict[EventHandler, tuple[_Key, ...]] = {}

    def subscribe(
        self,
        *,
        maxsize: int = 10000,
        filter: Callable[[RoomEvent], bool] | None = None,
        room: RoomKey | None = None,
        types: Iterable[type[RoomEvent]] | None = None,
    ) -> EventSubscription:
        """A subscription to the events of ``room`` (``(app_key, room_id)``; None: every room)
        of ``types`` (None: every type), further narrowed by ``filter`` if given."""
        keys = _keys(room, types)
        sub = EventSubscription(self, maxsize, filter, keys)
        for key in keys:
            self._index.setdefault(key, {})[sub] = None
        return sub

    def _unindex(self, keys: tuple[_Key, ...], sub: EventSubscription) -> None:
        for key in keys:
            subs = self._index.get(key)
            if subs is not None:
                subs.pop(sub, None)
                if not subs:
                    del self._index[key]

    @property
    def subscriptions(self) -> int:
        return len({s for subs in self._index.values() for s in subs})

    def add_handler(
        self,
        handler: EventHandler,
        *,
        room: RoomKey | None = None,
        types: Iterable[type[RoomEvent]] | None = None,
    ) -> None:
        """Call ``handler(event)`` for each event of ``room`` / ``types`` (None: all) (sync, or
        async run as a task). Exceptions are logged."""
        if handler in self._handler_keys:
            raise ValueError("handler already added")
        keys = _keys(room, types)
        self._handler_keys[handler] = keys
        for key in keys:
            self._handler_index.setdefault(key, []).append(handler)

    def remove_handler(self, handler: EventHandler) -> None:
        for key in self._handler_keys.pop(handler):
            handlers = self._handler_index[key]
            handlers.remove(handler)
            if not handlers:
                del self._handler_index[key]

    def _candidates(self, event: RoomEvent) -> tuple[_Key, ...]:
        room = (event.app_key, event.room_id)
        kind = type(event)
        return ((room, kind), (room, None), (None, kind), (None, None))

    def publish(self, event: RoomEvent) -> None:
        keys = self._candidates(event)
        for key in keys:
            subs = self._index.get(key)
            if subs:
                for sub in list(subs):
                    sub._offer(event)
        handlers = [h for key in keys for h in self._handler_index.get(key, ())]
        for handler in handlers:
            try:
                result = handler(event)
                if result is not None:
                    task = asyncio.ensure_future(result)
                    task.add_done_callback(_log_handler_failure)
            except Exception:
                log.exception("event handler failed for %s", event.type)


def _log_handler_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("async event handler failed", exc_info=task.exception())
