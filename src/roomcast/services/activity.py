"""Writes what happens in rooms to the database, for statistics, callbacks and audits.

It reads the SFU's event bus through its own bounded subscription and writes in batches, so a slow
database never stalls the media plane. Events carry stable ids; writing one twice is a no-op.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.log import event as log_event
from roomcast.rtc import events as ev
from roomcast.store.ownership import orphaned
from roomcast.store.tables import RoomEventRow, RoomSessionRow, TrackSampleRow, UserSessionRow, utcnow

log = logging.getLogger("roomcast.activity")

BATCH = 200
FLUSH_S = 0.5


def _ts(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


@dataclass(frozen=True)
class UserSession:
    session_id: str
    room_id: str
    user_id: str
    joined_at: datetime
    left_at: datetime | None
    leave_reason: str | None
    ip: str | None
    user_agent: str | None
    hidden: bool


class ActivityRecorder:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], bus: ev.EventBus, node_id: str | None = None
    ) -> None:
        self._sessions = sessions
        self.node_id = node_id
        self._bus = bus
        self._task: asyncio.Task[None] | None = None
        self._sub: ev.EventSubscription | None = None

    async def start(self) -> None:
        if self.node_id is None:
            await self.recover()  # a single process: whatever is open was left by its predecessor
        self._sub = self._bus.subscribe(maxsize=10_000)
        self._task = asyncio.create_task(self._run(self._sub), name="activity-recorder")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._sub is not None:
            self._sub.close()  # the reader drains the queue, writes, and ends at the close marker
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except TimeoutError:
                log_event(log, "activity.stop_timeout", level=logging.WARNING)

    async def recover(self) -> None:
        """Close sessions a previous process left open (it stopped without saying goodbye)."""
        now = utcnow()
        async with self._sessions.begin() as s:
            await s.execute(
                update(UserSessionRow)
                .where(UserSessionRow.left_at.is_(None))
                .values(left_at=now, leave_reason=ev.LeaveReason.SERVER_SHUTDOWN.value)
            )
            await s.execute(
                update(RoomSessionRow)
                .where(RoomSessionRow.closed_at.is_(None))
                .values(closed_at=now, close_reason=ev.LeaveReason.SERVER_SHUTDOWN.value)
            )

    async def take_over(self) -> None:
        """Close the open sessions of nodes that are gone (their rooms went with them)."""
        if self.node_id is None:
            return
        now = utcnow()
        reason = ev.LeaveReason.SERVER_SHUTDOWN.value
        async with self._sessions.begin() as s:
            users = await s.execute(
                update(UserSessionRow)
                .where(UserSessionRow.left_at.is_(None), orphaned(UserSessionRow.node_id, self.node_id))
                .values(left_at=now, leave_reason=reason)
                .execution_options(synchronize_session=False)
            )
            rooms = await s.execute(
                update(RoomSessionRow)
                .where(RoomSessionRow.closed_at.is_(None), orphaned(RoomSessionRow.node_id, self.node_id))
                .values(closed_at=now, close_reason=reason)
                .execution_options(synchronize_session=False)
            )
        closed = int(getattr(users, "rowcount", 0) or 0) + int(getattr(rooms, "rowcount", 0) or 0)
        if closed:
            log_event(log, "activity.sessions_taken_over", closed=closed, node_id=self.node_id)

    async def _run(self, sub: ev.EventSubscription) -> None:
        done = False
        while not done:
            try:
                batch = [await sub.get()]
            except StopAsyncIteration:
                return
            deadline = asyncio.get_running_loop().time() + FLUSH_S
            while len(batch) < BATCH:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(sub.get(), timeout))
                except TimeoutError:
                    break
                except StopAsyncIteration:
                    done = True
                    break
            try:
                await self._write(batch)
            except Exception:
                # Never let a database hiccup kill the recorder; the batch is lost, and logged.
                log.exception("activity.write_failed")
                log_event(log, "activity.dropped", level=logging.WARNING, count=len(batch))

    async def _write(self, batch: list[ev.RoomEvent]) -> None:
        async with self._sessions.begin() as s:
            for e in batch:
                await self._apply(s, e)

    async def _apply(self, s: AsyncSession, e: ev.RoomEvent) -> None:
        at = _ts(e.at)
        if isinstance(e, ev.RoomOpened):
            s.add(RoomSessionRow(app_key=e.app_key, room_id=e.room_id, opened_at=at, node_id=self.node_id))
        elif isinstance(e, ev.RoomClosed):
            await s.execute(
                update(RoomSessionRow)
                .where(
                    RoomSessionRow.app_key == e.app_key,
                    RoomSessionRow.room_id == e.room_id,
                    RoomSessionRow.closed_at.is_(None),
                )
                .values(closed_at=at, close_reason=e.reason[:64])
            )
        elif isinstance(e, ev.ParticipantJoined):
            exists = await s.execute(
                select(UserSessionRow.id).where(UserSessionRow.session_id == e.session_id)
            )
            if exists.first() is None:
                s.add(
                    UserSessionRow(
                        session_id=e.session_id,
                        app_key=e.app_key,
                        room_id=e.room_id,
                        user_id=e.user_id,
                        hidden=e.hidden,
                        ip=e.ip,
                        user_agent=e.user_agent[:256] if e.user_agent else None,
                        joined_at=at,
                        node_id=self.node_id,
                    )
                )
                await s.flush()
        elif isinstance(e, ev.ParticipantLeft):
            await s.execute(
                update(UserSessionRow)
                .where(UserSessionRow.session_id == e.session_id, UserSessionRow.left_at.is_(None))
                .values(left_at=at, leave_reason=e.reason.value)
            )
        elif isinstance(e, ev.TrackStats):
            s.add(
                TrackSampleRow(
                    app_key=e.app_key,
                    room_id=e.room_id,
                    user_id=e.user_id,
                    track_id=e.track_id,
                    kind=e.kind.value,
                    direction=e.direction,
                    subscriber_id=e.subscriber_id,
                    at=at,
                    interval_s=e.interval,
                    bitrate_bps=e.bitrate_bps,
                    packets_lost=e.packets_lost,
                    fraction_lost=e.fraction_lost,
                    jitter_ms=e.jitter_ms,
                    rtt_ms=e.rtt_ms,
                    fps=e.fps,
                    width=e.width,
                    height=e.height,
                )
            )
        if not isinstance(
            e,
            ev.TrackStats
            | ev.RoomOpened
            | ev.RoomClosed
            | ev.WhiteboardOp
            | ev.WhiteboardDraft
            | ev.ClientReport,
        ):
            detail = {k: v for k, v in ev.event_to_dict(e).items() if k not in _COMMON}
            exists = await s.execute(select(RoomEventRow.id).where(RoomEventRow.event_id == e.event_id))
            if exists.first() is None:
                s.add(
                    RoomEventRow(
                        event_id=e.event_id,
                        app_key=e.app_key,
                        room_id=e.room_id,
                        user_id=getattr(e, "user_id", None),
                        type=e.type,
                        detail=json.dumps(detail, default=str),
                        at=at,
                    )
                )

    # -- queries (tests, statistics) ---------------------------------------------------------------
    async def user_sessions(self, app_key: str, room_id: str) -> list[UserSession]:
        async with self._sessions() as s:
            rows = (
                await s.execute(
                    select(UserSessionRow)
                    .where(UserSessionRow.app_key == app_key, UserSessionRow.room_id == room_id)
                    .order_by(UserSessionRow.id)
                )
            ).scalars()
            return [
                UserSession(
                    r.session_id,
                    r.room_id,
                    r.user_id,
                    r.joined_at,
                    r.left_at,
                    r.leave_reason,
                    r.ip,
                    r.user_agent,
                    r.hidden,
                )
                for r in rows
            ]

    async def event_types(self, app_key: str, room_id: str) -> list[tuple[str | None, str]]:
        async with self._sessions() as s:
            rows = await s.execute(
                select(RoomEventRow.user_id, RoomEventRow.type)
                .where(RoomEventRow.app_key == app_key, RoomEventRow.room_id == room_id)
                .order_by(RoomEventRow.at, RoomEventRow.id)
            )
            return [(u, t) for u, t in rows]

    async def sample_count(self, app_key: str, room_id: str) -> int:
        async with self._sessions() as s:
            rows = await s.execute(
                select(TrackSampleRow.id).where(
                    TrackSampleRow.app_key == app_key, TrackSampleRow.room_id == room_id
                )
            )
            return len(rows.all())


_COMMON = {"type", "app_key", "room_id", "at", "event_id", "user_id"}
