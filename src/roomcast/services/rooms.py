"""Room moderation, reachable from every dialect: remove users, dismiss rooms, block media.

With several nodes a room lives on one of them; calls on a room not served here go to its node
(:class:`RoomNodes`, implemented by ``cluster.node.Cluster``) and answer the same errors.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from roomcast.domain.errors import InvalidArgument, NotFound
from roomcast.log import event
from roomcast.rtc.room import Room, RoomManager

log = logging.getLogger("roomcast.rooms")

MAX_REMOVE = 10


class RoomNodes(Protocol):
    async def call_room_node(self, app_key: str, room_id: str, method: str, params: dict[str, Any]) -> Any:
        """Run ``method`` on the node serving the room; NotFound(room) if none serves it."""
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
