"""Room moderation, reachable from every dialect: remove users, dismiss rooms, block media.

With several nodes a room lives on one of them; calls on a room not served here go to its node
(:class:`RoomNodes`, implemented by ``cluster.node.Cluster``) and answer the same errors.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from roomcast.domain.errors import InvalidArgument, NotFound
from roomcast.log import event
from roomcast.rtc.events import MediaType
from roomcast.rtc.room import Room, RoomManager

log = logging.getLogger("roomcast.rooms")

MAX_REMOVE = 10


@dataclass(frozen=True)
class TrackView:
    track_id: str
    kind: str
    codec: str
    muted: bool
    blocked: bool


@dataclass(frozen=True)
class ParticipantView:
    user_id: str
    session_id: str
    tracks: list[TrackView]
    blocked: list[str]
    """Media (audio, video) a moderator blocked for this user."""


@dataclass(frozen=True)
class RoomView:
    """A live room as data (it may be served by another node): visible participants only."""

    room_id: str
    created_at: float
    participants: list[ParticipantView]

    @classmethod
    def of(cls, room: Room) -> RoomView:
        people = []
        for p in room.participants.values():
            if p.hidden:
                continue
            blocked = room.blocked.get(p.user_id, set())
            tracks = [
                TrackView(
                    track_id=pt.info.track_id,
                    kind=pt.info.kind.value,
                    codec=pt.info.codec,
                    muted=pt.info.kind in p.muted,
                    blocked=MediaType(pt.info.media) in blocked,
                )
                for pt in p.published.values()
            ]
            people.append(ParticipantView(p.user_id, p.session_id, tracks, sorted(m.value for m in blocked)))
        return cls(room.room_id, room.created_at, people)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoomView:
        return cls(
            str(data["room_id"]),
            float(data["created_at"]),
            [
                ParticipantView(
                    str(p["user_id"]),
                    str(p["session_id"]),
                    [TrackView(**t) for t in p["tracks"]],
                    [str(m) for m in p["blocked"]],
                )
                for p in data["participants"]
            ],
        )


class RoomNodes(Protocol):
    async def call_room_node(self, app_key: str, room_id: str, method: str, params: dict[str, Any]) -> Any:
        """Run ``method`` on the node serving the room; NotFound(room) if none serves it."""
        ...

    async def call_other_nodes(self, method: str, params: dict[str, Any]) -> list[Any]:
        """Run ``method`` on every other alive node; the answers of those that answered."""
        ...


class RoomService:
    def __init__(self, sfu: RoomManager, nodes: RoomNodes | None = None) -> None:
        self._sfu = sfu
        self._nodes = nodes

    def _elsewhere(self, app_key: str, room_id: str) -> bool:
        return self._nodes is not None and not self.exists(app_key, room_id)

    def _room(self, app_key: str, room_id: str) -> Room:
        room = self._sfu.get_room(app_key, room_id)
        if room is None or room.closed:
            raise NotFound(f"room {room_id} does not exist", subject="room")
        return room

    def exists(self, app_key: str, room_id: str) -> bool:
        room = self._sfu.get_room(app_key, room_id)
        return room is not None and not room.closed

    def users(self, app_key: str, room_id: str) -> list[str]:
        return sorted(self._room(app_key, room_id).participants)

    def local_views(self, app_key: str) -> list[RoomView]:
        return [RoomView.of(r) for r in self._sfu.rooms() if r.app_key == app_key and not r.closed]

    async def view(self, app_key: str, room_id: str) -> RoomView:
        """The open room, wherever it is served. NotFound(room) if it is not open."""
        if self._nodes is not None and self._elsewhere(app_key, room_id):
            data = await self._nodes.call_room_node(app_key, room_id, "rooms.view", {})
            return RoomView.from_json(data)
        return RoomView.of(self._room(app_key, room_id))

    async def views(self, app_key: str) -> list[RoomView]:
        """The app's open rooms on every node (a node that does not answer is left out)."""
        rooms = self.local_views(app_key)
        if self._nodes is not None:
            for answer in await self._nodes.call_other_nodes("rooms.views", {"app_key": app_key}):
                rooms.extend(RoomView.from_json(r) for r in answer)
        return sorted(rooms, key=lambda r: r.room_id)

    async def publishing(self, app_key: str, room_id: str) -> set[str]:
        """Users publishing in the room, wherever it is served (empty if it is not open)."""
        try:
            room = await self.view(app_key, room_id)
        except NotFound:
            return set()
        return {p.user_id for p in room.participants if p.tracks}

    def calls(self) -> dict[str, Any]:
        """What other nodes may ask of this one about its rooms (cluster RPC methods)."""

        async def remove_users(p: dict[str, Any]) -> list[str]:
            return await self.remove_users(**p)

        async def dismiss(p: dict[str, Any]) -> None:
            await self.dismiss(**p)

        async def set_blocked(p: dict[str, Any]) -> None:
            await self.set_blocked(**p)

        async def view(p: dict[str, Any]) -> dict[str, Any]:
            return asdict(RoomView.of(self._room(str(p["app_key"]), str(p["room_id"]))))

        async def views(p: dict[str, Any]) -> list[dict[str, Any]]:
            return [asdict(v) for v in self.local_views(str(p["app_key"]))]

        return {
            "rooms.remove_users": remove_users,
            "rooms.dismiss": dismiss,
            "rooms.set_blocked": set_blocked,
            "rooms.view": view,
            "rooms.views": views,
        }

    async def remove_users(
        self,
        app_key: str,
        room_id: str,
        user_ids: list[str],
        reason: str = "removed",
        limit: int = MAX_REMOVE,
    ) -> list[str]:
        """Disconnect users; users not in the room are skipped. Returns who was removed."""
        if not user_ids:
            raise InvalidArgument("no users to remove", subject="user_ids")
        if len(user_ids) > limit:
            raise InvalidArgument(f"at most {limit} users at a time", subject="user_ids")
        if self._nodes is not None and self._elsewhere(app_key, room_id):
            removed = await self._nodes.call_room_node(
                app_key,
                room_id,
                "rooms.remove_users",
                {"user_ids": user_ids, "reason": reason, "limit": limit},
            )
            return [str(u) for u in removed]
        room = self._room(app_key, room_id)
        removed = await room.remove(user_ids, reason)
        event(log, "room.users_removed", app_key=app_key, room_id=room_id, users=removed)
        return removed

    async def dismiss(self, app_key: str, room_id: str, reason: str = "dismissed") -> None:
        if self._nodes is not None and self._elsewhere(app_key, room_id):
            await self._nodes.call_room_node(app_key, room_id, "rooms.dismiss", {"reason": reason})
            return
        room = self._room(app_key, room_id)
        await room.dismiss(reason)
        event(log, "room.dismissed", app_key=app_key, room_id=room_id)

    async def set_blocked(
        self, app_key: str, room_id: str, user_id: str, *, audio: bool, video: bool
    ) -> None:
        """Block (True) or unblock (False) forwarding of a user's audio and video."""
        if self._nodes is not None and self._elsewhere(app_key, room_id):
            await self._nodes.call_room_node(
                app_key, room_id, "rooms.set_blocked", {"user_id": user_id, "audio": audio, "video": video}
            )
            return
        room = self._room(app_key, room_id)
        if user_id not in room.participants:
            raise NotFound(f"user {user_id} is not in room {room_id}", subject="user")
        room.set_blocked(user_id, audio=audio, video=video)
        event(
            log,
            "room.media_blocked",
            app_key=app_key,
            room_id=room_id,
            user_id=user_id,
            audio=audio,
            video=video,
        )
