"""Reads for the statistics APIs: calls, user sessions, event logs, quality series, scale and
quality aggregates. Every query is bounded by an indexed time window; usage lives in
:mod:`roomcast.stats.ledger`.

A *call* is one life of a room (a room session): it starts at the first join and ends when the
room closes; a room opened again is a new call. Its id (``CommId`` in TRTC terms) is
``<app>_<room number>_<opened at, Unix s>``: the room number is the room id itself when it is a
decimal number below 2^32, else the CRC-32 of its UTF-8 bytes.
"""

from __future__ import annotations

import bisect
import itertools
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from roomcast.store.tables import (
    ClientInfoRow,
    ClientSampleRow,
    QualityBucketRow,
    RoomEventRow,
    RoomSessionRow,
    ScaleMarkRow,
    TrackSampleRow,
    UserSessionRow,
    utcnow,
)

_ROOM_NUM_MAX = 2**32
QUALITY_COUNTS: tuple[str, ...] = (
    "video_samples",
    "video_frozen",
    "audio_samples",
    "audio_frozen",
    "rtt_samples",
    "rtt_high",
    "up_video_samples",
    "up_video_bad",
    "up_audio_samples",
    "up_audio_bad",
    "joins",
    "joins_ok",
    "joins_timed",
    "joins_fast",
)


_ONE_HOUR = timedelta(hours=1)


def _on_hour(at: datetime) -> bool:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0) == at


def _user_overlap(start: datetime, end: datetime) -> Any:
    """Sessions alive in ``[start, end]``, as three index-friendly terms: joined inside the window
    (``(app_key, joined_at)``), or before it and left inside or after it / not yet (``left_at``)."""
    u = UserSessionRow
    return or_(
        and_(u.joined_at >= start, u.joined_at <= end),
        and_(u.left_at >= start, u.joined_at < start),
        and_(u.left_at.is_(None), u.joined_at < start),
    )


def _room_overlap(start: datetime, end: datetime) -> Any:
    r = RoomSessionRow
    return or_(
        and_(r.opened_at >= start, r.opened_at <= end),
        and_(r.closed_at >= start, r.opened_at < start),
        and_(r.closed_at.is_(None), r.opened_at < start),
    )


def room_number(room_id: str) -> int:
    if room_id.isascii() and room_id.isdigit() and int(room_id) < _ROOM_NUM_MAX:
        return int(room_id)
    return zlib.crc32(room_id.encode())


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Call:
    app_key: str
    room_id: str
    opened_at: datetime
    closed_at: datetime | None
    creator: str | None = None

    @property
    def comm_id(self) -> str:
        return f"{self.app_key}_{room_number(self.room_id)}_{int(self.opened_at.timestamp())}"

    def end(self, now: datetime) -> datetime:
        return self.closed_at or now


def parse_comm_id(comm_id: str) -> tuple[str, int | None, int] | None:
    """``(app, room number or None, opened at)`` of ``app_num_ts`` or ``app_ts``; None if malformed."""
    parts = comm_id.split("_")
    if len(parts) not in (2, 3) or not all(p.isascii() and p.isdigit() and len(p) <= 20 for p in parts):
        return None
    if len(parts) == 2:
        return parts[0], None, int(parts[1])
    return parts[0], int(parts[1]), int(parts[2])


@dataclass(frozen=True)
class SessionRecord:
    room_id: str
    user_id: str
    session_id: str
    joined_at: datetime
    left_at: datetime | None
    leave_reason: str | None
    ip: str | None
    user_agent: str | None
    device_type: str | None = None
    os: str | None = None
    sdk_version: str | None = None
    network_type: str | None = None


@dataclass(frozen=True)
class EventRecord:
    user_id: str
    type: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)
    room_id: str = ""


@dataclass(frozen=True)
class Sample:
    """A server sample (``source`` "server") or a client one ("client") about ``peer`` ("": up)."""

    at: datetime
    peer: str
    kind: str
    source: str
    values: dict[str, float | None]


@dataclass(frozen=True)
class ScalePoint:
    at: datetime
    users: int
    rooms: int
    entries: int = 0
    peak_users: int = 0
    peak_rooms: int = 0


def _peak(spans: Sequence[tuple[datetime, datetime]], lo: datetime, hi: datetime) -> int:
    marks: list[tuple[datetime, int]] = []
    for a, b in spans:
        a, b = max(a, lo), min(b, hi)
        if a < b or (a == b and lo <= a < hi):
            marks += [(a, 1), (b, -1)] if a < b else [(a, 1), (a, -1)]
    marks.sort(key=lambda m: (m[0], -m[1]))
    best = now = 0
    for _, d in marks:
        now += d
        best = max(best, now)
    return best


class StatsQueries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # -- calls -------------------------------------------------------------------------------------------
    async def calls(
        self,
        app_key: str,
        start: datetime,
        end: datetime,
        *,
        room_id: str | None = None,
        offset: int = 0,
        limit: int = 10,
        open_: bool | None = None,
    ) -> tuple[int, list[Call]]:
        """Calls alive at some moment of ``[start, end]`` (only open / closed ones if ``open_`` is
        True / False), oldest first, one page of them."""
        cond = and_(RoomSessionRow.app_key == app_key, _room_overlap(start, end))
        if open_ is not None:
            cond = and_(
                cond, RoomSessionRow.closed_at.is_(None) if open_ else RoomSessionRow.closed_at.is_not(None)
            )
        if room_id is not None:
            cond = and_(cond, RoomSessionRow.room_id == room_id)
        async with self._sessions() as s:
            total = int((await s.execute(select(func.count()).where(cond))).scalar_one())
            rows = (
                await s.execute(
                    select(RoomSessionRow)
                    .where(cond)
                    .order_by(RoomSessionRow.opened_at, RoomSessionRow.id)
                    .offset(offset)
                    .limit(limit)
                )
            ).scalars()
            out = [await self._call(s, r) for r in rows]
        return total, out

    async def _call(self, s: AsyncSession, r: RoomSessionRow) -> Call:
        opened = _aware(r.opened_at)
        q = (
            select(UserSessionRow.user_id)
            .where(
                UserSessionRow.app_key == r.app_key,
                UserSessionRow.room_id == r.room_id,
                UserSessionRow.joined_at >= opened - timedelta(seconds=1),
            )
            .order_by(UserSessionRow.joined_at, UserSessionRow.id)
            .limit(1)
        )
        if r.closed_at is not None:
            q = q.where(UserSessionRow.joined_at <= r.closed_at)
        creator = (await s.execute(q)).scalar()
        return Call(r.app_key, r.room_id, opened, r.closed_at and _aware(r.closed_at), creator)

    async def find_call(self, app_key: str, comm_id: str) -> Call | None:
        parsed = parse_comm_id(comm_id)
        if parsed is None or parsed[0] != app_key:
            return None
        _, number, ts = parsed
        try:
            at = datetime.fromtimestamp(ts, UTC)
        except (OverflowError, OSError, ValueError):
            return None
        async with self._sessions() as s:
            rows = (
                await s.execute(
                    select(RoomSessionRow).where(
                        RoomSessionRow.app_key == app_key,
                        RoomSessionRow.opened_at >= at,
                        RoomSessionRow.opened_at < at + timedelta(seconds=1),
                    )
                )
            ).scalars()
            for r in rows:
                if number is None or room_number(r.room_id) == number:
                    return await self._call(s, r)
        return None

    # -- users -------------------------------------------------------------------------------------------
    def _in_call(self, call: Call) -> Any:
        cond = and_(
            UserSessionRow.app_key == call.app_key,
            UserSessionRow.room_id == call.room_id,
            UserSessionRow.joined_at >= call.opened_at - timedelta(seconds=1),
            UserSessionRow.hidden.is_(False),
        )
        if call.closed_at is not None:
            cond = and_(cond, UserSessionRow.joined_at <= call.closed_at)
        return cond

    async def sessions(
        self,
        call: Call,
        start: datetime,
        end: datetime,
        *,
        user_ids: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = 6,
    ) -> tuple[int, list[SessionRecord]]:
        """User sessions of a call overlapping ``[start, end]``, in join order, one page of them."""
        cond = and_(
            self._in_call(call),
            UserSessionRow.joined_at <= end,
            or_(UserSessionRow.left_at.is_(None), UserSessionRow.left_at >= start),
        )
        if user_ids:
            cond = and_(cond, UserSessionRow.user_id.in_(list(user_ids)))
        return await self._session_page(cond, offset, limit)

    async def app_sessions(
        self,
        app_key: str,
        start: datetime,
        end: datetime,
        *,
        room_id: str | None = None,
        user_id: str | None = None,
        online: bool | None = None,
        offset: int = 0,
        limit: int | None = 10,
    ) -> tuple[int, list[SessionRecord]]:
        """Visible user sessions of an app overlapping ``[start, end]`` (``online``: only those
        not ended / ended), in join order, one page of them."""
        cond = and_(
            UserSessionRow.app_key == app_key, UserSessionRow.hidden.is_(False), _user_overlap(start, end)
        )
        if room_id is not None:
            cond = and_(cond, UserSessionRow.room_id == room_id)
        if user_id is not None:
            cond = and_(cond, UserSessionRow.user_id == user_id)
        if online is not None:
            cond = and_(
                cond, UserSessionRow.left_at.is_(None) if online else UserSessionRow.left_at.is_not(None)
            )
        return await self._session_page(cond, offset, limit)

    async def present_sessions(
        self, app_key: str, at: datetime, *, room_id: str | None = None
    ) -> list[SessionRecord]:
        """Visible sessions of an app present at ``at``."""
        cond = and_(
            UserSessionRow.app_key == app_key,
            UserSessionRow.hidden.is_(False),
            UserSessionRow.joined_at <= at,
            or_(UserSessionRow.left_at.is_(None), UserSessionRow.left_at > at),
        )
        if room_id is not None:
            cond = and_(cond, UserSessionRow.room_id == room_id)
        return (await self._session_page(cond, 0, None))[1]

    async def _session_page(
        self, cond: Any, offset: int, limit: int | None
    ) -> tuple[int, list[SessionRecord]]:
        u, c = UserSessionRow.__table__.c, ClientInfoRow.__table__.c
        async with self._sessions() as s:
            conn = await s.connection()
            total = int(
                (
                    await conn.execute(select(func.count()).select_from(UserSessionRow).where(cond))
                ).scalar_one()
            )
            q = (
                select(
                    u.room_id,
                    u.user_id,
                    u.session_id,
                    u.joined_at,
                    u.left_at,
                    u.leave_reason,
                    u.ip,
                    u.user_agent,
                    c.device_type,
                    c.os,
                    c.sdk_version,
                    c.network_type,
                )
                .select_from(
                    UserSessionRow.__table__.outerjoin(ClientInfoRow.__table__, c.session_id == u.session_id)
                )
                .where(cond)
                .order_by(u.joined_at, u.id)
                .offset(offset)
            )
            if limit is not None:
                q = q.limit(limit)
            rows = (await conn.execute(q)).all()
        return total, [
            SessionRecord(
                room_id=r[0],
                user_id=r[1],
                session_id=r[2],
                joined_at=_aware(r[3]),
                left_at=_aware(r[4]) if r[4] is not None else None,
                leave_reason=r[5],
                ip=r[6],
                user_agent=r[7],
                device_type=r[8],
                os=r[9],
                sdk_version=r[10],
                network_type=r[11],
            )
            for r in rows
        ]

    async def abnormal(
        self,
        app_key: str,
        start: datetime,
        end: datetime,
        *,
        room_id: str | None = None,
        user_id: str | None = None,
        offset: int = 0,
        limit: int | None = 10,
    ) -> tuple[int, list[EventRecord]]:
        """Abnormal-experience events of an app in ``[start, end]``, oldest first."""
        cond = and_(
            RoomEventRow.app_key == app_key,
            RoomEventRow.type == "abnormal",
            RoomEventRow.at >= start,
            RoomEventRow.at <= end,
        )
        if room_id is not None:
            cond = and_(cond, RoomEventRow.room_id == room_id)
        if user_id is not None:
            cond = and_(cond, RoomEventRow.user_id == user_id)
        async with self._sessions() as s:
            total = int((await s.execute(select(func.count()).where(cond))).scalar_one())
            q = select(RoomEventRow).where(cond).order_by(RoomEventRow.at, RoomEventRow.id).offset(offset)
            if limit is not None:
                q = q.limit(limit)
            rows = (await s.execute(q)).scalars()
            return total, [
                EventRecord(r.user_id or "", r.type, _aware(r.at), _detail(r.detail), r.room_id) for r in rows
            ]

    # -- events ------------------------------------------------------------------------------------------
    async def events(self, call: Call, user_id: str, start: datetime, end: datetime) -> list[EventRecord]:
        """What happened to ``user_id`` in the call within ``[start, end]`` (clamped to the call)."""
        lo = max(start, call.opened_at - timedelta(seconds=1))
        hi = min(end, call.closed_at + timedelta(seconds=1)) if call.closed_at else end
        async with self._sessions() as s:
            rows = (
                await s.execute(
                    select(RoomEventRow)
                    .where(
                        RoomEventRow.app_key == call.app_key,
                        RoomEventRow.room_id == call.room_id,
                        RoomEventRow.at >= lo,
                        RoomEventRow.at <= hi,
                        RoomEventRow.user_id == user_id,
                    )
                    .order_by(RoomEventRow.at, RoomEventRow.id)
                )
            ).scalars()
            return [EventRecord(r.user_id or "", r.type, _aware(r.at), _detail(r.detail)) for r in rows]

    # -- quality series ----------------------------------------------------------------------------------
    async def samples(self, call: Call, user_id: str, start: datetime, end: datetime) -> list[Sample]:
        """The user's samples in the call (see :meth:`room_samples`)."""
        lo = max(start, call.opened_at)
        hi = min(end, call.closed_at) if call.closed_at else end
        return await self.room_samples(call.app_key, call.room_id, user_id, lo, hi)

    async def room_samples(
        self, app_key: str, room_id: str, user_id: str, lo: datetime, hi: datetime
    ) -> list[Sample]:
        """The user's upstream samples (peer "") and downstream ones (peer: the publisher), from
        the server and from the client, in ``[lo, hi]``, oldest first. Core rows, only the
        columns served: an hour of a six-person room is tens of thousands of them."""
        t = TrackSampleRow.__table__.c
        values = (t.bitrate_bps, t.fraction_lost, t.fps, t.width, t.height, t.jitter_ms, t.rtt_ms)
        names = ("bitrate_bps", "fraction_lost", "fps", "width", "height", "jitter_ms", "rtt_ms")
        base = (t.app_key == app_key, t.room_id == room_id, t.at >= lo, t.at <= hi)
        c = ClientSampleRow.__table__.c
        client_names = CLIENT_VALUES
        out: list[Sample] = []
        async with self._sessions() as s:
            conn = await s.connection()
            up = await conn.execute(
                select(t.at, t.kind, *values).where(*base, t.user_id == user_id, t.direction == "in")
            )
            for at, kind, *vals in up.all():
                out.append(Sample(_aware(at), "", _media(kind), "server", _values(names, vals)))
            down = await conn.execute(
                select(t.at, t.kind, t.user_id, *values).where(
                    *base, t.subscriber_id == user_id, t.direction == "out"
                )
            )
            for at, kind, peer, *vals in down.all():
                out.append(Sample(_aware(at), peer, _media(kind), "server", _values(names, vals)))
            client = await conn.execute(
                select(c.at, c.peer_id, *[c[n] for n in client_names]).where(
                    c.app_key == app_key, c.room_id == room_id, c.user_id == user_id, c.at >= lo, c.at <= hi
                )
            )
            for at, peer, *vals in client.all():
                out.append(Sample(_aware(at), peer, "client", "client", _values(client_names, vals)))
        out.sort(key=lambda x: x.at)
        return out

    # -- scale -------------------------------------------------------------------------------------------
    async def _spans(
        self, app_key: str, start: datetime, end: datetime, room_id: str | None = None
    ) -> tuple[list[tuple[str, str, datetime, datetime]], list[tuple[str, datetime, datetime]]]:
        """(room, user, joined, left-or-now) of visible sessions and (room, opened, closed-or-now)
        of calls overlapping ``[start, end)``."""
        now = utcnow()
        u = select(
            UserSessionRow.room_id, UserSessionRow.user_id, UserSessionRow.joined_at, UserSessionRow.left_at
        ).where(
            UserSessionRow.app_key == app_key,
            _user_overlap(start, end),
            UserSessionRow.joined_at < end,
            UserSessionRow.hidden.is_(False),
        )
        r = select(RoomSessionRow.room_id, RoomSessionRow.opened_at, RoomSessionRow.closed_at).where(
            RoomSessionRow.app_key == app_key,
            _room_overlap(start, end),
            RoomSessionRow.opened_at < end,
        )
        if room_id is not None:
            u = u.where(UserSessionRow.room_id == room_id)
            r = r.where(RoomSessionRow.room_id == room_id)
        async with self._sessions() as s:
            conn = await s.connection()  # Core rows: weeks of sessions are many
            users = [
                (a, b, _aware(j), _aware(lft) if lft else now)
                for a, b, j, lft in (await conn.execute(u)).all()
            ]
            rooms = [(a, _aware(o), _aware(c) if c else now) for a, o, c in (await conn.execute(r)).all()]
        return users, rooms

    async def scale(
        self,
        app_key: str,
        edges: Sequence[datetime],
        *,
        room_id: str | None = None,
        distinct_per_room: bool = False,
    ) -> list[ScalePoint]:
        """Per bucket ``[edges[i], edges[i+1])``: distinct users (a user in two rooms counts twice
        if ``distinct_per_room``), calls, entries (joins in the bucket) and the peak numbers of
        users and of calls present at once."""
        if len(edges) < 2:
            return []
        users, rooms = await self._spans(app_key, edges[0], edges[-1], room_id)
        n = len(edges) - 1

        def buckets(a: datetime, b: datetime) -> range:
            """Buckets ``i`` the span overlaps: ``a < edges[i+1]`` and ``b >= edges[i]``."""
            first = max(0, bisect.bisect_right(edges, a) - 1)
            last = min(n - 1, bisect.bisect_right(edges, b) - 1)
            return range(first, last + 1)

        who: list[set[tuple[str, str]]] = [set() for _ in range(n)]
        entries = [0] * n
        user_spans: list[list[tuple[datetime, datetime]]] = [[] for _ in range(n)]
        room_spans: list[list[tuple[datetime, datetime]]] = [[] for _ in range(n)]
        for room, user, a, b in users:
            for i in buckets(a, b):
                who[i].add((room if distinct_per_room else "", user))
                user_spans[i].append((a, b))
                if edges[i] <= a < edges[i + 1]:
                    entries[i] += 1
        for _, a, b in rooms:
            for i in buckets(a, b):
                room_spans[i].append((a, b))
        return [
            ScalePoint(
                at=edges[i],
                users=len(who[i]),
                rooms=len(room_spans[i]),
                entries=entries[i],
                peak_users=_peak(user_spans[i], edges[i], edges[i + 1]),
                peak_rooms=_peak(room_spans[i], edges[i], edges[i + 1]),
            )
            for i in range(n)
        ]

    async def counts(
        self, app_key: str, edges: Sequence[datetime], *, distinct_per_room: bool = False
    ) -> list[ScalePoint]:
        """Like :meth:`scale`, counted by the database. Buckets on whole hours that ended before
        the current hour read the scale marks the statistics recorder keeps (users and calls
        present per hour, entries); the others (the current hour, the future, or edges off the
        hour, and hours before the first whole hour the recorder marked: data from before an
        upgrade) count their sessions with three indexed aggregates each. The peaks come from
        the hourly peaks the recorder keeps (the most of any hour in the bucket)."""
        q = QualityBucketRow.__table__.c
        now = utcnow()
        cutoff = now.replace(minute=0, second=0, microsecond=0)
        n = len(edges) - 1
        out: list[ScalePoint] = []
        async with self._sessions() as s:
            conn = await s.connection()
            first = (await conn.execute(select(func.min(ScaleMarkRow.start)))).scalar()
            i0 = 0  # buckets [i0, i1) are read from the marks
            if first is None:
                i0 = n
            else:
                since = _aware(first) + _ONE_HOUR  # the first hour may have been marked in part
                while i0 < n and edges[i0] < since:
                    i0 += 1
            i1 = i0
            while i1 < n and edges[i1 + 1] <= cutoff and _on_hour(edges[i1]) and _on_hour(edges[i1 + 1]):
                i1 += 1
            for lo, hi in itertools.pairwise(edges[: i0 + 1]):
                out.append(await self._session_counts(conn, app_key, lo, hi, distinct_per_room))
            if i1 > i0:
                out += await self._mark_counts(conn, app_key, edges[i0 : i1 + 1], distinct_per_room)
            future: ScalePoint | None = None  # every bucket after now holds the sessions still open
            for lo, hi in itertools.pairwise(edges[i1:]):
                if future is not None:
                    out.append(ScalePoint(at=lo, users=future.users, rooms=future.rooms))
                    continue
                out.append(await self._session_counts(conn, app_key, lo, hi, distinct_per_room))
                if lo > now:
                    future = out[-1]
            if not out:
                return out
            peaks = (
                await conn.execute(
                    select(q.start, func.max(q.peak_users), func.max(q.peak_rooms))
                    .where(q.app_key == app_key, q.span == "H", q.start >= edges[0], q.start < edges[-1])
                    .group_by(q.start)
                )
            ).all()
        for at, users_peak, rooms_peak in peaks:
            i = bisect.bisect_right(edges, _aware(at)) - 1
            if 0 <= i < len(out):
                p = out[i]
                out[i] = ScalePoint(
                    p.at,
                    p.users,
                    p.rooms,
                    p.entries,
                    max(p.peak_users, int(users_peak or 0)),
                    max(p.peak_rooms, int(rooms_peak or 0)),
                )
        return out

    async def _mark_counts(
        self, conn: AsyncConnection, app_key: str, edges: Sequence[datetime], distinct_per_room: bool
    ) -> list[ScalePoint]:
        """Users, calls and entries per bucket from the scale marks (edges on whole hours)."""
        m = ScaleMarkRow
        if all(b - a == _ONE_HOUR for a, b in itertools.pairwise(edges)):
            bucket: Any = m.start
        else:  # a few long buckets (days): one CASE branch each
            bucket = case(*[(m.start < hi, i) for i, hi in enumerate(edges[1:])], else_=len(edges))
        who = m.room_id.concat("\x1f").concat(m.subject) if distinct_per_room else m.subject
        window = and_(m.app_key == app_key, m.start >= edges[0], m.start < edges[-1])
        u = select(bucket.label("b"), who.label("w"), m.entries).where(window, m.kind == "u").subquery()
        call = m.room_id.concat("\x1f").concat(m.subject)  # grouped outside: the CASE binds once
        c = select(bucket.label("b"), call.label("w")).where(window, m.kind == "c").subquery()
        users = select(u.c.b, func.count(func.distinct(u.c.w)), func.sum(u.c.entries)).group_by(u.c.b)
        calls = select(c.c.b, func.count(func.distinct(c.c.w))).group_by(c.c.b)
        n = len(edges) - 1

        def index(b: Any) -> int:
            return bisect.bisect_right(edges, _aware(b)) - 1 if isinstance(b, datetime) else int(b)

        got_users: dict[int, tuple[int, int]] = {}
        for b, count, entries in (await conn.execute(users)).all():
            got_users[index(b)] = (int(count or 0), int(entries or 0))
        got_calls = {index(b): int(c or 0) for b, c in (await conn.execute(calls)).all()}
        return [
            ScalePoint(
                at=edges[i],
                users=got_users.get(i, (0, 0))[0],
                rooms=got_calls.get(i, 0),
                entries=got_users.get(i, (0, 0))[1],
            )
            for i in range(n)
        ]

    async def _session_counts(
        self, conn: AsyncConnection, app_key: str, lo: datetime, hi: datetime, distinct_per_room: bool
    ) -> ScalePoint:
        """Users, calls and entries of ``[lo, hi)`` counted from the sessions."""
        u, r = UserSessionRow, RoomSessionRow
        who = u.room_id.concat("\x1f").concat(u.user_id) if distinct_per_room else u.user_id
        alive = or_(
            and_(u.joined_at >= lo, u.joined_at < hi),
            and_(u.joined_at < lo, u.left_at >= lo),
            and_(u.joined_at < lo, u.left_at.is_(None)),
        )
        seen = and_(u.app_key == app_key, u.hidden.is_(False))
        users = (await conn.execute(select(func.count(func.distinct(who))).where(seen, alive))).scalar()
        entries = (
            await conn.execute(select(func.count()).where(seen, u.joined_at >= lo, u.joined_at < hi))
        ).scalar()
        open_ = or_(
            and_(r.opened_at >= lo, r.opened_at < hi),
            and_(r.opened_at < lo, r.closed_at >= lo),
            and_(r.opened_at < lo, r.closed_at.is_(None)),
        )
        rooms = (await conn.execute(select(func.count()).where(r.app_key == app_key, open_))).scalar()
        return ScalePoint(at=lo, users=int(users or 0), rooms=int(rooms or 0), entries=int(entries or 0))

    async def present(
        self, app_key: str, points: Sequence[datetime], *, room_id: str | None = None
    ) -> list[ScalePoint]:
        """Users and calls present at each instant of ``points`` (ascending)."""
        if not points:
            return []
        users, rooms = await self._spans(app_key, points[0], points[-1] + timedelta(microseconds=1), room_id)

        def counts(spans: Iterable[tuple[datetime, datetime]]) -> list[int]:
            diff = [0] * (len(points) + 1)
            for a, b in spans:
                lo, hi = bisect.bisect_left(points, a), bisect.bisect_left(points, b)
                if lo < hi:
                    diff[lo] += 1
                    diff[hi] -= 1
            return list(itertools.accumulate(diff[:-1]))

        u = counts((a, b) for _, _, a, b in users)
        r = counts((a, b) for _, a, b in rooms)
        return [ScalePoint(at=t, users=u[i], rooms=r[i]) for i, t in enumerate(points)]

    # -- quality buckets ---------------------------------------------------------------------------------
    async def quality(
        self,
        app_key: str,
        span: str,
        start: datetime,
        end: datetime,
        *,
        room_id: str | None = None,
        columns: Sequence[str] = QUALITY_COUNTS,
    ) -> dict[datetime, dict[str, int]]:
        """Summed quality counts (``columns``) per bucket start in ``[start, end)`` (span "t":
        10 s, "h": hour), of one room or (from the app-wide rows) of the whole app."""
        if room_id is None:
            span = span.upper()
        table = QualityBucketRow.__table__.c
        q = (
            select(table.start, *[func.sum(table[c]) for c in columns])
            .where(
                table.app_key == app_key,
                table.span == span,
                table.start >= start,
                table.start < end,
            )
            .group_by(table.start)
        )
        if room_id is not None:
            q = q.where(table.room_id == room_id)
        async with self._sessions() as s:
            conn = await s.connection()  # Core rows: no ORM loading for thousands of buckets
            rows = (await conn.execute(q)).all()
        return {_aware(r[0]): {c: int(v or 0) for c, v in zip(columns, r[1:], strict=True)} for r in rows}


def regroup(buckets: dict[datetime, dict[str, int]], edges: Sequence[datetime]) -> list[dict[str, int]]:
    """Counts summed into ``[edges[i], edges[i+1])`` (edges ascending), in one pass."""
    out: list[dict[str, int]] = [{} for _ in range(max(0, len(edges) - 1))]
    for at, counts in buckets.items():
        i = bisect.bisect_right(edges, at) - 1
        if 0 <= i < len(out):
            target = out[i]
            for k, v in counts.items():
                target[k] = target.get(k, 0) + v
    return out


CLIENT_VALUES: tuple[str, ...] = (
    "capture_fps",
    "send_fps",
    "decode_fps",
    "audio_stall_ms",
    "video_stall_ms",
    "app_cpu",
    "sys_cpu",
    "rtt_ms",
)


def _media(kind: str) -> str:
    return "audio" if kind == "audio" else "video"


def _values(names: Sequence[str], values: Sequence[Any]) -> dict[str, float | None]:
    return {n: float(v) if v is not None else None for n, v in zip(names, values, strict=True)}


def _detail(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
