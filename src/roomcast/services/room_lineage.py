"""When a room was created, as its users see it: across node restarts and take-overs.

A room lives in one node's memory. When that node goes (a restart, a crash, a take-over by
another node), its room sessions are closed with the reason ``server_shutdown`` and the clients
reconnect: the room opens again, as a new session, under the same id. For its users it is the
same room, created when its first session opened. A room that emptied (``empty``) or was
dismissed ended for good: a later session under the same id is a new room.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.rtc.events import LeaveReason
from roomcast.store.tables import RoomSessionRow

RESUME_WINDOW = timedelta(minutes=10)
"""A session reopened later than this after its predecessor went down is a new room."""
MAX_SESSIONS = 50
"""Sessions looked at, newest first (a room restarted more often than this is old anyway)."""


async def room_created_at(
    sessions: async_sessionmaker[AsyncSession],
    app_key: str,
    room_id: str,
    opened_at: datetime,
    window: timedelta = RESUME_WINDOW,
) -> datetime:
    """The creation time of the room whose current session opened at ``opened_at``: that of the
    earliest session in the unbroken chain of sessions before it that ended because their node
    went away (closed ``server_shutdown`` within ``window`` of the next one opening, or still open:
    their node is gone and not reaped yet)."""
    async with sessions() as s:
        rows = (
            await s.execute(
                select(RoomSessionRow.opened_at, RoomSessionRow.closed_at, RoomSessionRow.close_reason)
                .where(
                    RoomSessionRow.app_key == app_key,
                    RoomSessionRow.room_id == room_id,
                    RoomSessionRow.opened_at < opened_at,
                )
                .order_by(RoomSessionRow.opened_at.desc())
                .limit(MAX_SESSIONS)
            )
        ).all()
    origin = opened_at
    for previous_open, closed_at, reason in rows:
        went_down = closed_at is None or (
            reason == LeaveReason.SERVER_SHUTDOWN.value and origin - closed_at <= window
        )
        if not went_down:
            break
        origin = previous_open
    return origin
