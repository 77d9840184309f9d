"""Native API: live rooms (from the SFU) with participants, tracks and quality; moderation."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from roomcast.api.native.common import ERRORS, PREFIX, NativeRoute, Tenant, TenantDep
from roomcast.domain.errors import NotFound
from roomcast.rtc.events import MediaType
from roomcast.services.room_queries import Quality, RoomQueries
from roomcast.services.rooms import RoomView


class QualityOut(BaseModel):
    """The newest sample of what the server receives on this track (within the last minute)."""

    at: datetime
    bitrate_bps: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    fraction_lost: float | None = None
    jitter_ms: float | None = None
    rtt_ms: float | None = None

    @classmethod
    def of(cls, q: Quality) -> QualityOut:
        return cls(**asdict(q))


class TrackOut(BaseModel):
    track_id: str = Field(examples=["alice/camera"])
    kind: str = Field(description="audio, camera or screen")
    codec: str
    muted: bool = Field(description="Muted by its publisher.")
    blocked: bool = Field(description="Blocked by a moderator (not forwarded).")
    quality: QualityOut | None = None


class ParticipantOut(BaseModel):
    user_id: str
    session_id: str
    tracks: list[TrackOut]


class RoomOut(BaseModel):
    sdk_app_id: int
    room_id: str
    created_at: datetime
    participants: int
    recording: bool = Field(description="Whether a recording task includes the room.")


class RoomDetail(RoomOut):
    users: list[ParticipantOut]
    tasks: list[str] = Field(description="Ids of the unfinished tasks of this room.")


class RemoveIn(BaseModel):
    user_ids: list[str] = Field(min_length=1, max_length=10, examples=[["bob"]])


class RemovedOut(BaseModel):
    removed: list[str]


class BlockIn(BaseModel):
    """What to block (true) or let through again (false); a missing field is left as it is."""

    audio: bool | None = Field(default=None, examples=[True])
    video: bool | None = None


async def _live_rooms(t: Tenant, sdk_app_id: int) -> list[RoomView]:
    if t.rt.sfu is None:
        return []
    return await t.rt.rooms.views(str(sdk_app_id))


async def _room(t: Tenant, sdk_app_id: int, room_id: str) -> RoomView:
    """The open room, on whichever node serves it."""
    try:
        if t.rt.sfu is None:
            raise NotFound("no media plane", subject="room")
        return await t.rt.rooms.view(str(sdk_app_id), room_id)
    except NotFound:
        raise NotFound(f"room {room_id} is not open", subject="room") from None


def _created(room: RoomView) -> datetime:
    return datetime.fromtimestamp(room.created_at, UTC)


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["native: rooms"], route_class=NativeRoute, responses=ERRORS)

    @router.get("/apps/{app}/rooms", response_model=list[RoomOut])
    async def list_rooms(app: str, t: TenantDep) -> list[RoomOut]:
        """Rooms open now (on every node of the service)."""
        a = await t.app(app)
        recording = await t.tasks().recording_rooms(a.sdk_app_id)
        return [
            RoomOut(
                sdk_app_id=a.sdk_app_id,
                room_id=r.room_id,
                created_at=_created(r),
                participants=len(r.participants),
                recording=recording.get(r.room_id, 0) > 0,
            )
            for r in sorted(await _live_rooms(t, a.sdk_app_id), key=lambda r: r.room_id)
        ]

    @router.get("/apps/{app}/rooms/{room_id}", response_model=RoomDetail)
    async def get_room(app: str, room_id: str, t: TenantDep) -> RoomDetail:
        """One open room: who is in it, their tracks with quality, and its unfinished tasks."""
        a = await t.app(app)
        room = await _room(t, a.sdk_app_id, room_id)
        quality = await RoomQueries(t.rt.db.sessions).quality(str(a.sdk_app_id), room_id)
        tasks = await t.tasks().list(sdk_app_ids=[a.sdk_app_id], room_id=room_id, unfinished=True)
        users = []
        for p in sorted(room.participants, key=lambda p: p.user_id):
            tracks = []
            for pt in p.tracks:
                q = quality.get(pt.track_id)
                tracks.append(
                    TrackOut(
                        track_id=pt.track_id,
                        kind=pt.kind,
                        codec=pt.codec,
                        muted=pt.muted,
                        blocked=pt.blocked,
                        quality=QualityOut.of(q) if q else None,
                    )
                )
            users.append(ParticipantOut(user_id=p.user_id, session_id=p.session_id, tracks=tracks))
        return RoomDetail(
            sdk_app_id=a.sdk_app_id,
            room_id=room_id,
            created_at=_created(room),
            participants=len(users),
            recording=any(x.kind == "recording" for x in tasks),
            users=users,
            tasks=[x.task_id for x in tasks],
        )

    @router.post("/apps/{app}/rooms/{room_id}/remove", response_model=RemovedOut)
    async def remove_users(app: str, room_id: str, body: RemoveIn, t: TenantDep) -> RemovedOut:
        """Disconnect users (they may join again with a valid token); absent users are skipped."""
        a = await t.app(app)
        removed = await t.rt.rooms.remove_users(str(a.sdk_app_id), room_id, body.user_ids)
        return RemovedOut(removed=removed)

    @router.post("/apps/{app}/rooms/{room_id}/users/{user_id}/block", status_code=204)
    async def block_user(app: str, room_id: str, user_id: str, body: BlockIn, t: TenantDep) -> Response:
        """Mute a user for everyone (block forwarding of their audio and/or video), or undo it."""
        a = await t.app(app)
        room = await _room(t, a.sdk_app_id, room_id)
        blocked = next((p.blocked for p in room.participants if p.user_id == user_id), [])
        audio = body.audio if body.audio is not None else MediaType.AUDIO.value in blocked
        video = body.video if body.video is not None else MediaType.VIDEO.value in blocked
        await t.rt.rooms.set_blocked(str(a.sdk_app_id), room_id, user_id, audio=audio, video=video)
        return Response(status_code=204)

    @router.post("/apps/{app}/rooms/{room_id}/dismiss", status_code=204)
    async def dismiss(app: str, room_id: str, t: TenantDep) -> Response:
        """Close the room: everyone is disconnected and its recordings end."""
        a = await t.app(app)
        await t.rt.rooms.dismiss(str(a.sdk_app_id), room_id)
        return Response(status_code=204)

    return router
