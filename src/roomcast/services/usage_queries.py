"""Usage per app and day from what the database already records: participant minutes (user
sessions) and recording minutes (recording tasks). Hidden participants (recorders) do not count.

Computed on read over a bounded window; the statistics work may replace it with aggregates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.store.tables import TaskRow, UserSessionRow, utcnow

MAX_DAYS = 31


@dataclass(frozen=True)
class DayUsage:
    day: date
    sdk_app_id: int
    participant_minutes: float
    recording_minutes: float
    sessions: int


def _spread(start: datetime, end: datetime, first: date, last: date) -> dict[date, float]:
    """Minutes of [start, end) falling on each UTC day between first and last."""
    out: dict[date, float] = {}
    day = max(start.date(), first)
    while day <= min(end.date(), last):
        lo = max(start, datetime(day.year, day.month, day.day, tzinfo=UTC))
        hi = min(end, datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1))
        if hi > lo:
            out[day] = out.get(day, 0.0) + (hi - lo).total_seconds() / 60
        day += timedelta(days=1)
    return out


class UsageQueries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def daily(self, sdk_app_ids: Iterable[int], days: int = 7) -> list[DayUsage]:
        """The last ``days`` UTC days (today included), oldest first, one row per app and day."""
        days = max(1, min(days, MAX_DAYS))
        now = utcnow()
        last = now.date()
        first = last - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        ids = list(sdk_app_ids)
        keys = [str(i) for i in ids]
        people: dict[tuple[int, date], float] = {}
        counts: dict[tuple[int, date], int] = {}
        recording: dict[tuple[int, date], float] = {}
        async with self._sessions() as s:
            users = await s.execute(
                select(UserSessionRow.app_key, UserSessionRow.joined_at, UserSessionRow.left_at).where(
                    UserSessionRow.app_key.in_(keys),
                    UserSessionRow.hidden.is_(False),
                    or_(UserSessionRow.left_at.is_(None), UserSessionRow.left_at >= since),
                )
            )
            for app_key, joined, left in users.all():
                app = int(app_key)
                if joined.date() >= first:
                    counts[(app, joined.date())] = counts.get((app, joined.date()), 0) + 1
                for day, minutes in _spread(joined, left or now, first, last).items():
                    people[(app, day)] = people.get((app, day), 0.0) + minutes
            tasks = await s.execute(
                select(TaskRow.sdk_app_id, TaskRow.started_at, TaskRow.ended_at).where(
                    TaskRow.sdk_app_id.in_(ids),
                    TaskRow.kind == "recording",
                    TaskRow.started_at.is_not(None),
                    or_(TaskRow.ended_at.is_(None), TaskRow.ended_at >= since),
                )
            )
            for app, started, ended in tasks.all():
                if started is None:
                    continue
                for day, minutes in _spread(started, ended or now, first, last).items():
                    recording[(app, day)] = recording.get((app, day), 0.0) + minutes
        return [
            DayUsage(
                day=first + timedelta(days=n),
                sdk_app_id=app,
                participant_minutes=round(people.get((app, first + timedelta(days=n)), 0.0), 2),
                recording_minutes=round(recording.get((app, first + timedelta(days=n)), 0.0), 2),
                sessions=counts.get((app, first + timedelta(days=n)), 0),
            )
            for n in range(days)
            for app in ids
        ]
