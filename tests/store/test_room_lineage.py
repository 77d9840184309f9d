"""A room's creation time across node restarts: sessions closed because their node went away
(and reopened soon after) belong to the same room; an emptied or dismissed room ends for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from roomcast.services.room_lineage import room_created_at
from roomcast.store.db import Database
from roomcast.store.tables import RoomSessionRow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def add(db: Database, room: str, opened: float, closed: float | None, reason: str | None) -> None:
    async with db.sessions.begin() as s:
        s.add(
            RoomSessionRow(
                app_key="1400000001",
                room_id=room,
                opened_at=at(opened),
                closed_at=at(closed) if closed is not None else None,
                close_reason=reason,
                node_id="n-old",
            )
        )


async def created(db: Database, room: str, opened: float) -> datetime:
    return await room_created_at(db.sessions, "1400000001", room, at(opened))


async def test_restarts_keep_the_first_creation_time(db: Database) -> None:
    # Opened at 0, two restarts (1 min of reconnection each), now reopened at 62.
    await add(db, "r", 0, 30, "server_shutdown")
    await add(db, "r", 31, 61, "server_shutdown")
    assert await created(db, "r", 62) == at(0)
    # A session left open by a node that is gone (not reaped yet) counts as well.
    await add(db, "open", 0, None, None)
    assert await created(db, "open", 5) == at(0)
    # Another room, and the current session itself, do not count.
    assert await created(db, "other", 62) == at(62)


async def test_an_emptied_dismissed_or_long_gone_room_is_a_new_room(db: Database) -> None:
    await add(db, "e", 0, 10, "server_shutdown")
    await add(db, "e", 11, 20, "empty")  # everyone left: the room ended
    assert await created(db, "e", 21) == at(21)
    await add(db, "d", 0, 10, "dismissed")
    assert await created(db, "d", 10.5) == at(10.5)
    await add(db, "g", 0, 10, "server_shutdown")
    assert await created(db, "g", 10 + 11) == at(21)  # reopened after the resume window
    assert await created(db, "g", 10 + 9) == at(0)
