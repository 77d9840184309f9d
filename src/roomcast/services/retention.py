"""Retention: old activity, callbacks and upload rows are deleted after configurable ages.

Per-track samples alone are about 62 M rows a day at 50 rooms x 6 users, so the job must never
hold a long transaction nor scan a big table for nothing. It relies on what these tables share:
rows are appended, so a row's time column grows with its id. For each table it

1. finds, by binary search over the primary key (a few dozen indexed look-ups, no index on the
   time column needed), the first id whose time is at or past the cutoff;
2. deletes the rows below that id that may go, in batches of at most ``batch`` rows, each in a
   transaction of its own (a range scan on the primary key, then a delete of that range with the
   same conditions, so a row out of time order is never deleted early).

What may go: samples (server and client) and room events older than ``retention_samples_days``
/ ``retention_events_days``; usage and quality buckets older than ``retention_aggregates_days``;
room and user sessions closed before the events cutoff (open ones stay); callbacks delivered or
failed, created before the cutoff (pending ones stay); uploads done or failed *and* finalized
before the cutoff (anything unfinished stays). An age of 0 keeps rows forever. Every node may
run the job: deletes are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from roomcast.log import event
from roomcast.store.tables import (
    CallbackRow,
    ClientSampleRow,
    QualityBucketRow,
    RoomEventRow,
    RoomSessionRow,
    ScaleMarkRow,
    TrackSampleRow,
    UploadRow,
    UsageBucketRow,
    UserSessionRow,
    utcnow,
)

__all__ = ["RetentionJob", "RetentionPolicy"]

log = logging.getLogger("roomcast.retention")

BATCH = 5000
DAY_S = 86400.0

Condition = Callable[[datetime], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Ages in days; 0 keeps forever."""

    samples_days: float = 7.0
    events_days: float = 30.0
    callbacks_days: float = 7.0
    uploads_days: float = 7.0
    aggregates_days: float = 400.0

    @classmethod
    def from_settings(cls, settings: Any) -> RetentionPolicy:
        return cls(
            samples_days=float(settings.retention_samples_days),
            events_days=float(settings.retention_events_days),
            callbacks_days=float(settings.retention_callbacks_days),
            uploads_days=float(settings.retention_uploads_days),
            aggregates_days=float(getattr(settings, "retention_aggregates_days", 400.0)),
        )


@dataclass(frozen=True, slots=True)
class _Rule:
    table: Any
    """The mapped class: an integer ``id`` primary key and ``time`` growing with it."""
    time: InstrumentedAttribute[datetime]
    days: float
    may_go: Condition
    """Beyond ``time < cutoff``: which old rows may be deleted."""


def _always(cutoff: datetime) -> ColumnElement[bool]:
    return true()


def _rules(p: RetentionPolicy) -> list[_Rule]:
    return [
        _Rule(TrackSampleRow, TrackSampleRow.at, p.samples_days, _always),
        _Rule(ClientSampleRow, ClientSampleRow.at, p.samples_days, _always),
        _Rule(UsageBucketRow, UsageBucketRow.start, p.aggregates_days, _always),
        _Rule(QualityBucketRow, QualityBucketRow.start, p.aggregates_days, _always),
        _Rule(ScaleMarkRow, ScaleMarkRow.start, p.aggregates_days, _always),
        _Rule(RoomEventRow, RoomEventRow.at, p.events_days, _always),
        _Rule(
            RoomSessionRow,
            RoomSessionRow.opened_at,
            p.events_days,
            lambda c: and_(RoomSessionRow.closed_at.is_not(None), RoomSessionRow.closed_at < c),
        ),
        _Rule(
            UserSessionRow,
            UserSessionRow.joined_at,
            p.events_days,
            lambda c: and_(UserSessionRow.left_at.is_not(None), UserSessionRow.left_at < c),
        ),
        _Rule(
            CallbackRow,
            CallbackRow.created_at,
            p.callbacks_days,
            lambda c: CallbackRow.state.in_(("delivered", "failed")),
        ),
        _Rule(
            UploadRow,
            UploadRow.created_at,
            p.uploads_days,
            lambda c: and_(
                UploadRow.state.in_(("done", "failed")),
                UploadRow.finalized_at.is_not(None),
                UploadRow.finalized_at < c,
            ),
        ),
    ]


class RetentionJob:
    """Deletes old rows every ``interval_s`` (first pass at start), until :meth:`stop`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policy: RetentionPolicy,
        *,
        interval_s: float = 3600.0,
        batch: int = BATCH,
    ) -> None:
        self._sessions = sessions
        self.policy = policy
        self.interval_s = interval_s
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self.passes = 0

    @classmethod
    def from_settings(cls, sessions: async_sessionmaker[AsyncSession], settings: Any) -> RetentionJob:
        policy = RetentionPolicy.from_settings(settings)
        return cls(sessions, policy, interval_s=float(settings.retention_interval_s))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a database hiccup: try again next time
                log.exception("retention.failed")
            await asyncio.sleep(self.interval_s)

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """One pass over every table; the number of rows deleted per table."""
        now = now or utcnow()
        deleted: dict[str, int] = {}
        for rule in _rules(self.policy):
            if rule.days <= 0:
                continue
            n = await self._prune(rule, now - timedelta(seconds=rule.days * DAY_S))
            deleted[rule.table.__tablename__] = n
            if n:
                event(log, "retention.deleted", table=rule.table.__tablename__, rows=n)
        self.passes += 1
        return deleted

    async def _prune(self, rule: _Rule, cutoff: datetime) -> int:
        end = await self._boundary(rule, cutoff)
        if end is None:
            return 0
        table, ident = rule.table, rule.table.id
        old = and_(rule.time < cutoff, rule.may_go(cutoff))
        start, total = None, 0
        while True:
            async with self._sessions.begin() as s:
                q = select(ident).where(ident < end, old).order_by(ident).limit(self.batch)
                if start is not None:
                    q = q.where(ident >= start)
                ids = list((await s.execute(q)).scalars())
                if not ids:
                    return total
                # the same conditions: a row that changed meanwhile (e.g. a session reopened) stays
                result = await s.execute(delete(table).where(ident >= ids[0], ident <= ids[-1], old))
                total += int(getattr(result, "rowcount", 0) or 0)
            start = ids[-1] + 1
            await asyncio.sleep(0)  # let others at the database (and the loop) between batches

    async def _boundary(self, rule: _Rule, cutoff: datetime) -> int | None:
        """The smallest id B such that the first row at or after B is not older than ``cutoff``
        (rows below B are the old ones); None when the table holds nothing old."""
        ident = rule.table.id
        async with self._sessions() as s:
            low, high = (await s.execute(select(func.min(ident), func.max(ident)))).one()
            if low is None:
                return None

            async def new_from(b: int) -> bool:
                first = (
                    await s.execute(select(rule.time).where(ident >= b).order_by(ident).limit(1))
                ).scalar_one_or_none()
                return first is None or first >= cutoff

            left, right = int(low), int(high) + 1
            while left < right:
                mid = (left + right) // 2
                if await new_from(mid):
                    right = mid
                else:
                    left = mid + 1
        return None if left == int(low) else left
