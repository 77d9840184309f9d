"""TRTC room management: RemoveUser(ByStrRoomId), DismissRoom(ByStrRoomId), SetUserBlocked(ByStrRoomId).

Integer and string room ids share one namespace in roomcast (room ``1234`` and ``"1234"`` are the
same room): the SFU keys rooms by text.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.params import Params
from roomcast.domain.errors import InvalidArgument, NotFound

INT_ROOM_MAX = 4_294_967_294
STR_ROOM_MAX_LEN = 64
MAX_USERS = 10


def _check_str_room(v: str) -> str:
    if not 1 <= len(v.encode()) <= STR_ROOM_MAX_LEN or any(ord(c) < 32 for c in v):
        raise ValueError(f"must be 1 to {STR_ROOM_MAX_LEN} bytes of printable text")
    return v


def _check_int_room(v: int) -> int:
    if not 1 <= v <= INT_ROOM_MAX:
        raise ValueError(f"must be between 1 and {INT_ROOM_MAX}")
    return v


def _check_users(v: list[str]) -> list[str]:
    if not 1 <= len(v) <= MAX_USERS:
        raise ValueError(f"must list 1 to {MAX_USERS} users")
    if any(not u for u in v):
        raise ValueError("user ids must not be empty")
    return v


class RemoveUserParams(Params):
    SdkAppId: int
    RoomId: int
    UserIds: list[str]

    _room = field_validator("RoomId")(_check_int_room)
    _users = field_validator("UserIds")(_check_users)


class RemoveUserByStrRoomIdParams(Params):
    SdkAppId: int
    RoomId: str
    UserIds: list[str]

    _room = field_validator("RoomId")(_check_str_room)
    _users = field_validator("UserIds")(_check_users)


class DismissRoomParams(Params):
    SdkAppId: int
    RoomId: int

    _room = field_validator("RoomId")(_check_int_room)


class DismissRoomByStrRoomIdParams(Params):
    SdkAppId: int
    RoomId: str

    _room = field_validator("RoomId")(_check_str_room)


class SetUserBlockedParams(Params):
    SdkAppId: int
    RoomId: int
    UserId: str = Field(min_length=1)
    IsMute: int = Field(ge=0, le=3)

    _room = field_validator("RoomId")(_check_int_room)


class SetUserBlockedByStrRoomIdParams(Params):
    SdkAppId: int
    StrRoomId: str
    UserId: str = Field(min_length=1)
    IsMute: int = Field(ge=0, le=3)

    _room = field_validator("StrRoomId")(_check_str_room)


# IsMute: 0 enable audio and video, 1 disable both, 2 disable audio only, 3 disable video only.
_MUTE: dict[int, tuple[bool, bool]] = {0: (False, False), 1: (True, True), 2: (True, False), 3: (False, True)}


def _room_errors(exc: NotFound) -> TrtcError:
    if exc.subject == "user":
        return TrtcError("FailedOperation.UserNotExist", "The user is not in the room.")
    return TrtcError("FailedOperation.RoomNotExist", "The room does not exist.")


async def _remove(ctx: ActionContext, sdk_app_id: int, room_id: str, users: list[str]) -> dict[str, Any]:
    await ctx.app(sdk_app_id)
    try:
        await ctx.runtime.rooms.remove_users(
            str(sdk_app_id), room_id, users, reason="removed by the server API"
        )
    except NotFound as exc:
        raise _room_errors(exc) from None
    except InvalidArgument as exc:
        raise TrtcError("InvalidParameter.UserIds", exc.message) from None
    return {}


async def _dismiss(ctx: ActionContext, sdk_app_id: int, room_id: str) -> dict[str, Any]:
    await ctx.app(sdk_app_id)
    try:
        await ctx.runtime.rooms.dismiss(str(sdk_app_id), room_id, reason="dismissed by the server API")
    except NotFound as exc:
        raise _room_errors(exc) from None
    return {}


async def _block(
    ctx: ActionContext, sdk_app_id: int, room_id: str, user_id: str, is_mute: int
) -> dict[str, Any]:
    await ctx.app(sdk_app_id)
    audio, video = _MUTE[is_mute]
    try:
        await ctx.runtime.rooms.set_blocked(str(sdk_app_id), room_id, user_id, audio=audio, video=video)
    except NotFound as exc:
        raise _room_errors(exc) from None
    return {}


async def remove_user(ctx: ActionContext, p: RemoveUserParams) -> dict[str, Any]:
    return await _remove(ctx, p.SdkAppId, str(p.RoomId), p.UserIds)


async def remove_user_str(ctx: ActionContext, p: RemoveUserByStrRoomIdParams) -> dict[str, Any]:
    return await _remove(ctx, p.SdkAppId, p.RoomId, p.UserIds)


async def dismiss_room(ctx: ActionContext, p: DismissRoomParams) -> dict[str, Any]:
    return await _dismiss(ctx, p.SdkAppId, str(p.RoomId))


async def dismiss_room_str(ctx: ActionContext, p: DismissRoomByStrRoomIdParams) -> dict[str, Any]:
    return await _dismiss(ctx, p.SdkAppId, p.RoomId)


async def set_user_blocked(ctx: ActionContext, p: SetUserBlockedParams) -> dict[str, Any]:
    return await _block(ctx, p.SdkAppId, str(p.RoomId), p.UserId, p.IsMute)


async def set_user_blocked_str(ctx: ActionContext, p: SetUserBlockedByStrRoomIdParams) -> dict[str, Any]:
    return await _block(ctx, p.SdkAppId, p.StrRoomId, p.UserId, p.IsMute)


def register(registry: ActionRegistry) -> None:
    for name, model, handler in (
        ("RemoveUser", RemoveUserParams, remove_user),
        ("RemoveUserByStrRoomId", RemoveUserByStrRoomIdParams, remove_user_str),
        ("DismissRoom", DismissRoomParams, dismiss_room),
        ("DismissRoomByStrRoomId", DismissRoomByStrRoomIdParams, dismiss_room_str),
        ("SetUserBlocked", SetUserBlockedParams, set_user_blocked),
        ("SetUserBlockedByStrRoomId", SetUserBlockedByStrRoomIdParams, set_user_blocked_str),
    ):
        registry.add("trtc", Action(name, model, handler, rate_per_s=20))
