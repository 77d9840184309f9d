"""Rooms as the database recorded them: open room sessions, who is in them, and track quality.

The server's SFU is the live truth (the native API reads it); this view is what the CLI can see
from the data directory alone, and where per-track quality samples come from for both.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.store.tables import RoomSessionRow, TrackSampleRow, UserSessionRow, utcnow


@dataclass(frozen=True)
class RoomRecord:
    sdk_app_id: str
    room_id: str
    opened_at: datetime
    users: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Quality:
    """The latest sample of a published track (what the server receives from its publisher)."""

    at: datetime
    bitrate_bps: float | None
    fps: float | None
    width: int | None
    height: int | None
    fraction_lost: float | None
    jitter_ms: float | None
    rtt_ms: float | None


class RoomQueries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def open_rooms(self, app_keys: Collection[str] | None = None) -> list[RoomRecord]:
        """Room sessions not closed yet, with their present (not hidden) users."""
        q = select(RoomSessionRow).where(RoomSessionRow.closed_at.is_(None))
        if app_keys is not None:
            q = q.where(RoomSessionRow.app_key.in_(list(app_keys)))
        u = select(UserSessionRow.app_key, UserSessionRow.room_id, UserSessionRow.user_id).where(
            UserSessionRow.left_at.is_(None), UserSessionRow.hidden.is_(False)
        )
        async with self._sessions() as s:
            rooms = list((await s.execute(q.order_by(RoomSessionRow.opened_at))).scalars())
            users: dict[tuple[str, str], list[str]] = {}
            for app_key, room_id, user_id in (await s.execute(u.order_by(UserSessionRow.user_id))).all():
                users.setdefault((app_key, room_id), []).append(user_id)
        return [
            RoomRecord(r.app_key, r.room_id, r.opened_at, users.get((r.app_key, r.room_id), []))
            for r in rooms
        ]

    async def quality(self, app_key: str, room_id: str, max_age_s: float = 60.0) -> dict[str, Quality]:
        """The newest incoming sample of each track of a room (track id -> quality)."""
        since = utcnow() - timedelta(seconds=max_age_s)
        newest = (
            select(TrackSampleRow.track_id, func.max(TrackSampleRow.id).label("id"))
            .where(
                TrackSampleRow.app_key == app_key,
                TrackSampleRow.room_id == room_id,
                TrackSampleRow.direction == "in",
                TrackSampleRow.at >= since,
            )
            .group_by(TrackSampleRow.track_id)
            .subquery()
        )
        q = select(TrackSampleRow).join(newest, newest.c.id == TrackSampleRow.id)
        async with self._sessions() as s:
            return {
                r.track_id: Quality(
                    at=r.at,
                    bitrate_bps=r.bitrate_bps,
                    fps=r.fps,
                    width=r.width,
                    height=r.height,
                    fraction_lost=r.fraction_lost,
                    jitter_ms=r.jitter_ms,
                    rtt_ms=r.rtt_ms,
                )
                for r in (await s.execute(q)).scalars()
            }
