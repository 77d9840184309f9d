"""Room moderation, reachable from every dialect: remove users, dismiss rooms, block media."""

from __future__ import annotations

import logging

from roomcast.domain.errors import InvalidArgument, NotFound
from roomcast.log import event
from roomcast.rtc.room import Room, RoomManager

log = logging.getLogger("roomcast.rooms")

MAX_REMOVE = 10


class RoomService:
    def __init__(self, sfu: RoomManager) -> None:
        self._sfu = sfu

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
        room = self._room(app_key, room_id)
        removed = await room.remove(user_ids, reason)
        event(log, "room.users_removed", app_key=app_key, room_id=room_id, users=removed)
        return removed

    async def dismiss(self, app_key: str, room_id: str, reason: str = "dismissed") -> None:
        room = self._room(app_key, room_id)
        await room.dismiss(reason)
        event(log, "room.dismissed", app_key=app_key, room_id=room_id)

    def set_blocked(self, app_key: str, room_id: str, user_id: str, *, audio: bool, video: bool) -> None:
        """Block (True) or unblock (False) forwarding of a user's audio and video."""
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
