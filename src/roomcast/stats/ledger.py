"""The usage ledger: seconds of use per app, room, product and tier in minute and hour buckets.

Anything that consumes a metered resource adds intervals here as it runs::

    ledger.add(app_key, room_id, "relay", "Audio", start, end)

and :meth:`UsageLedger.flush` (called every few seconds by the statistics recorder, and at
stop) writes the sums: for each bucket it adds to this node's row or inserts one. Several nodes
may hold rows for one bucket; readers sum them. Products:

``rtc``            presence in a room (tiers by received resolution, :mod:`roomcast.stats.tiers`)
``record_single``  individual-stream recording, per recording task
``record_mixed``   mixed recording, per recording task
``transcode``      mixing / transcoding for relay (tiers ``Audio`` or ``<tier>H264`` / ``<tier>H265``)
``relay``          relay to CDN (tier ``Audio`` or a video tier of the relayed stream)
``ingest``         stream ingest (tier of the ingested picture)

The statistics recorder adds presence and the media tasks of its node (recordings, relays,
ingests) with these names; see :meth:`roomcast.stats.recorder.StatsRecorder._meter_tasks`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.log import event
from roomcast.store.tables import UsageBucketRow

log = logging.getLogger("roomcast.stats.ledger")

PRODUCTS = ("rtc", "record_single", "record_mixed", "transcode", "relay", "ingest")
MINUTE = "m"
HOUR = "h"
APP_SPANS = {MINUTE: "M", HOUR: "H"}
"""Spans of the app-wide rows (``room_id`` ""), kept beside the per-room ones so that app-wide
queries read one row per bucket and tier whatever the number of rooms."""

_Key = tuple[str, str, str, str, str, datetime]  # app, room, product, span, tier, start


def _floor(at: datetime, span: str) -> datetime:
    if span == MINUTE:
        return at.replace(second=0, microsecond=0)
    return at.replace(minute=0, second=0, microsecond=0)


def split(start: datetime, end: datetime, span: str) -> list[tuple[datetime, float]]:
    """``[start, end)`` cut at bucket boundaries: ``(bucket start, seconds in it)``."""
    out: list[tuple[datetime, float]] = []
    step = timedelta(minutes=1) if span == MINUTE else timedelta(hours=1)
    at = start
    while at < end:
        bucket = _floor(at, span)
        upto = min(end, bucket + step)
        out.append((bucket, (upto - at).total_seconds()))
        at = upto
    return out


@dataclass(frozen=True)
class UsageRow:
    start: datetime
    room_id: str
    tier: str
    seconds: float


class UsageLedger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: dict[_Key, float] = defaultdict(float)
        self._lock = asyncio.Lock()

    def add(
        self, app_key: str, room_id: str, product: str, tier: str, start: datetime, end: datetime
    ) -> None:
        """Count ``[start, end)`` (aware datetimes) of ``product`` at ``tier``; written at the next flush."""
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r}")
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return
        for span in (MINUTE, HOUR):
            for bucket, seconds in split(start, end, span):
                self._pending[(app_key, room_id, product, span, tier, bucket)] += seconds
                self._pending[(app_key, "", product, APP_SPANS[span], tier, bucket)] += seconds

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Write what was added since the last flush (lost, and logged, if the database fails)."""
        async with self._lock:
            batch, self._pending = self._pending, defaultdict(float)
            if not batch:
                return
            try:
                async with self._sessions.begin() as s:
                    for (app, room, product, span, tier, start), seconds in batch.items():
                        row = (
                            await s.execute(
                                select(UsageBucketRow.id)
                                .where(
                                    UsageBucketRow.app_key == app,
                                    UsageBucketRow.product == product,
                                    UsageBucketRow.span == span,
                                    UsageBucketRow.start == start,
                                    UsageBucketRow.room_id == room,
                                    UsageBucketRow.tier == tier,
                                )
                                .limit(1)
                            )
                        ).scalar()
                        if row is None:
                            s.add(
                                UsageBucketRow(
                                    app_key=app,
                                    room_id=room,
                                    product=product,
                                    span=span,
                                    start=start,
                                    tier=tier,
                                    seconds=seconds,
                                )
                            )
                        else:
                            await s.execute(
                                update(UsageBucketRow)
                                .where(UsageBucketRow.id == row)
                                .values(seconds=UsageBucketRow.seconds + seconds)
                            )
            except Exception:
                log.exception("usage.flush_failed")
                event(log, "usage.dropped", level=logging.WARNING, buckets=len(batch))

    async def read(
        self,
        app_keys: list[str],
        product: str,
        span: str,
        start: datetime,
        end: datetime,
        *,
        per_room: bool = False,
    ) -> list[UsageRow]:
        """Bucket sums of ``product`` with ``start <= bucket < end``, per bucket and tier (and
        room if ``per_room``; else ``room_id`` is "")."""
        if not per_room:
            span = APP_SPANS[span]
        q = (
            select(
                UsageBucketRow.start,
                UsageBucketRow.room_id,
                UsageBucketRow.tier,
                func.sum(UsageBucketRow.seconds),
            )
            .where(
                UsageBucketRow.app_key.in_(app_keys),
                UsageBucketRow.product == product,
                UsageBucketRow.span == span,
                UsageBucketRow.start >= start,
                UsageBucketRow.start < end,
            )
            .group_by(UsageBucketRow.start, UsageBucketRow.room_id, UsageBucketRow.tier)
        )
        async with self._sessions() as s:
            rows = (await s.execute(q)).all()
        return [
            UsageRow(b.astimezone(UTC) if b.tzinfo else b.replace(tzinfo=UTC), r, t, float(v))
            for b, r, t, v in rows
        ]

    async def per_room(self, app_key: str, product: str, start: datetime, end: datetime) -> list[UsageRow]:
        """Seconds per room and tier in ``[start, end)`` (minute precision): whole hours from the
        hour rows, the ragged ends from the minute rows."""
        lo = _floor(start, HOUR) + (timedelta(hours=1) if start != _floor(start, HOUR) else timedelta())
        hi = _floor(end, HOUR)
        if hi <= lo:
            return await self.read([app_key], product, MINUTE, start, end, per_room=True)
        parts = await self.read([app_key], product, HOUR, lo, hi, per_room=True)
        parts += await self.read([app_key], product, MINUTE, start, lo, per_room=True)
        parts += await self.read([app_key], product, MINUTE, hi, end, per_room=True)
        return parts
