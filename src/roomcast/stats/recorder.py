"""Statistics as data arrives: usage minutes, quality buckets and the events the SFU implies.

It reads the SFU's event bus through its own bounded subscription (like the activity recorder)
and keeps, in memory, what it needs to classify the moment: who is present, which video sizes
each participant receives, each published track's resolution. Every ``flush_s`` it

* meters presence into the usage ledger (product ``rtc``; tier by the video received, see
  :mod:`roomcast.stats.tiers`) and the media tasks this node runs: recordings (``record_single``
  / ``record_mixed``), relays (``relay``, and ``transcode`` for a mix) and ingests (``ingest``);
* adds downstream quality counts to 10 s and hour buckets (what "freeze rate" reads);
* writes the events a sample reveals: a published video's resolution changing
  (``resolution_changed``), a subscription starting or ending (``subscribed`` /
  ``unsubscribed``), an experience turning bad (``abnormal``: video or audio freeze, with its
  cause ``uplink_loss``, ``downlink_loss`` or ``no_frames``), with the time of the sample that
  showed it.

A downstream video sample counts as frozen when fewer than :data:`FREEZE_FPS` frames per second
reached the subscriber or :data:`FREEZE_LOSS` or more of its packets were lost; audio when the
loss is at or above :data:`FREEZE_LOSS`. A sample's RTT is high from :data:`HIGH_RTT_MS` ms.
A join attempt is an entry or a refusal after authentication (room full or closed); an entry
is fast when it took at most :data:`FAST_JOIN_MS` from the client's signalling connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.background import Background
from roomcast.domain.ingest import spec_from_json as ingest_from_json
from roomcast.domain.recording import RecordingMode, spec_from_json
from roomcast.domain.relay import RelaySource, relay_from_json
from roomcast.log import event as log_event
from roomcast.rtc import events as ev
from roomcast.rtc.track import TrackKind
from roomcast.stats.ledger import UsageLedger
from roomcast.stats.queries import QUALITY_COUNTS
from roomcast.stats.tiers import AUDIO, tier_of
from roomcast.store.tables import (
    ClientInfoRow,
    ClientSampleRow,
    QualityBucketRow,
    RoomEventRow,
    ScaleMarkRow,
    TaskRow,
    utcnow,
)

log = logging.getLogger("roomcast.stats")

CLIENT_FIELDS = (
    "capture_fps",
    "send_fps",
    "decode_fps",
    "audio_stall_ms",
    "video_stall_ms",
    "app_cpu",
    "sys_cpu",
    "rtt_ms",
)
FAST_JOIN_MS = 5000.0
FREEZE_FPS = 5.0
FREEZE_LOSS = 0.10
HIGH_RTT_MS = 400.0
FLUSH_S = 5.0
METERED_KINDS = ("recording", "relay", "ingest")
QUALITY_SPANS: tuple[tuple[str, timedelta], ...] = (("t", timedelta(seconds=10)), ("h", timedelta(hours=1)))

_QKey = tuple[str, str, str, datetime]  # app, room, span, start
_MKey = tuple[str, datetime, str, str, str]  # app, hour, kind ("u" user, "c" call), room, subject
_HOUR = timedelta(hours=1)
_COUNTS = QUALITY_COUNTS


def _ts(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _floor(at: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + step * ((at - epoch) // step)


@dataclass
class _Presence:
    app_key: str
    room_id: str
    user_id: str
    since: datetime
    """Metered up to here."""
    hour: datetime = field(default_factory=utcnow)
    """Scale marks written up to this hour."""


@dataclass
class _Received:
    size: tuple[int, int]
    seen: float


@dataclass
class _State:
    presence: dict[str, _Presence] = field(default_factory=dict)  # session id -> presence
    by_user: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (app, room, user) -> session
    received: dict[tuple[str, str, str], dict[str, _Received]] = field(default_factory=dict)
    resolution: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    subscriptions: dict[tuple[str, str, str, str], tuple[float, str, str]] = field(default_factory=dict)
    """(app, room, subscriber, track) -> (last sample time, publisher, kind)."""
    tasks: dict[str, datetime] = field(default_factory=dict)  # media task id -> metered up to
    calls: dict[str, set[str]] = field(default_factory=dict)  # app -> rooms open
    opened: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    """(app, room) -> the open call's mark subject (its opening time) and the hour marked up to."""
    bitrates: dict[tuple[str, str, str, str], tuple[float, float]] = field(default_factory=dict)
    """(app, room, subscriber, track) -> (time, bps) of its latest sample."""
    tracks: dict[tuple[str, str, str], str] = field(default_factory=dict)  # published track -> user
    kinds: dict[tuple[str, str, str], TrackKind] = field(default_factory=dict)  # published track -> kind
    bad: set[tuple[str, str, str, str]] = field(default_factory=set)  # (app, room, user, track) now bad
    muted: set[tuple[str, str, str]] = field(default_factory=set)  # (app, room, track)
    blocked: set[tuple[str, str, str, str]] = field(default_factory=set)  # (app, room, user, media)


class StatsRecorder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: ev.EventBus,
        ledger: UsageLedger,
        *,
        node_id: str | None = None,
        stats_interval_s: float = 5.0,
        flush_s: float = FLUSH_S,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self.ledger = ledger
        self.node_id = node_id
        self._stale_s = max(3.0 * stats_interval_s, 2.0)
        self._flush_s = flush_s
        self._state = _State()
        self._metered_at = utcnow()
        self._quality: dict[_QKey, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_COUNTS, 0))
        self._events: list[RoomEventRow] = []
        self._client_samples: list[ClientSampleRow] = []
        self._infos: dict[str, dict[str, str]] = {}
        self._peaks: dict[tuple[str, datetime], list[int]] = {}  # (app, hour) -> [users, rooms]
        self._marks: dict[_MKey, int] = {}  # scale marks to write -> entries they add
        self._marked: set[_MKey] = set()  # marks of the current hour already written
        self._sub: ev.EventSubscription | None = None
        self._bg = Background("stats")
        self._task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = self._bus.subscribe(
            maxsize=20_000,
            types=(
                ev.ParticipantJoined,
                ev.ParticipantLeft,
                ev.TrackStats,
                ev.TrackPublished,
                ev.TrackUnpublished,
                ev.TrackMuted,
                ev.TrackUnmuted,
                ev.MediaBlocked,
                ev.MediaUnblocked,
                ev.ClientReport,
                ev.JoinRefused,
                ev.RoomOpened,
                ev.RoomClosed,
            ),
        )
        self._task = self._bg.spawn("recorder", self._run(self._sub))
        self._flusher = self._bg.spawn("flush", self._flush_loop())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except TimeoutError:
                log_event(log, "stats.stop_timeout", level=logging.WARNING)
        await self._bg.close()
        await self.flush()

    async def _run(self, sub: ev.EventSubscription) -> None:
        async for e in sub:
            try:
                self.apply(e)
            except Exception:
                log.exception("stats.apply_failed")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()

    # -- in memory ---------------------------------------------------------------------------------
    def apply(self, e: ev.RoomEvent) -> None:
        st = self._state
        at = _ts(e.at)
        if isinstance(e, ev.RoomOpened):
            st.calls.setdefault(e.app_key, set()).add(e.room_id)
            st.opened[(e.app_key, e.room_id)] = (at.isoformat(), _floor(at, _HOUR))
            self._mark((e.app_key, _floor(at, _HOUR), "c", e.room_id, at.isoformat()))
            self._peak(e.app_key, at)
        elif isinstance(e, ev.RoomClosed):
            st.calls.get(e.app_key, set()).discard(e.room_id)
            call = st.opened.pop((e.app_key, e.room_id), None)
            if call is not None:
                self._mark_until((e.app_key, call[1], "c", e.room_id, call[0]), at)
        elif isinstance(e, ev.ParticipantJoined):
            if e.hidden:
                return
            st.presence[e.session_id] = _Presence(e.app_key, e.room_id, e.user_id, at, _floor(at, _HOUR))
            st.by_user[(e.app_key, e.room_id, e.user_id)] = e.session_id
            self._mark((e.app_key, _floor(at, _HOUR), "u", e.room_id, e.user_id), entries=1)
            self._peak(e.app_key, at)
            for span, step in QUALITY_SPANS:
                c = self._quality[(e.app_key, e.room_id, span, _floor(at, step))]
                c["joins"] += 1
                c["joins_ok"] += 1
                if e.join_ms is not None:
                    c["joins_timed"] += 1
                    c["joins_fast"] += int(e.join_ms <= FAST_JOIN_MS)
        elif isinstance(e, ev.JoinRefused):
            for span, step in QUALITY_SPANS:
                c = self._quality[(e.app_key, e.room_id, span, _floor(at, step))]
                c["joins"] += 1
                c["joins_timed"] += 1
        elif isinstance(e, ev.ParticipantLeft):
            p = st.presence.pop(e.session_id, None)
            if p is not None:
                self._meter(p, at)
                self._mark_until((p.app_key, p.hour, "u", p.room_id, p.user_id), at)
                key = (p.app_key, p.room_id, p.user_id)
                if st.by_user.get(key) == e.session_id:
                    del st.by_user[key]
                    st.received.pop(key, None)
                for sk in [k for k in st.subscriptions if k[:3] == key]:
                    del st.subscriptions[sk]
        elif isinstance(e, ev.TrackPublished):
            st.tracks[(e.app_key, e.room_id, e.track_id)] = e.user_id
            st.kinds[(e.app_key, e.room_id, e.track_id)] = e.kind
        elif isinstance(e, ev.TrackUnpublished):
            st.resolution.pop((e.app_key, e.room_id, e.track_id), None)
            st.tracks.pop((e.app_key, e.room_id, e.track_id), None)
            st.kinds.pop((e.app_key, e.room_id, e.track_id), None)
            st.muted.discard((e.app_key, e.room_id, e.track_id))
        elif isinstance(e, ev.TrackMuted):
            st.muted.add((e.app_key, e.room_id, e.track_id))
        elif isinstance(e, ev.TrackUnmuted):
            st.muted.discard((e.app_key, e.room_id, e.track_id))
        elif isinstance(e, ev.MediaBlocked):
            st.blocked.update((e.app_key, e.room_id, e.user_id, m.value) for m in e.media)
        elif isinstance(e, ev.MediaUnblocked):
            st.blocked.difference_update((e.app_key, e.room_id, e.user_id, m.value) for m in e.media)
        elif isinstance(e, ev.TrackStats):
            self._sample(e, at)
        elif isinstance(e, ev.ClientReport):
            self._client(e)

    def _sample(self, e: ev.TrackStats, at: datetime) -> None:
        st = self._state
        is_video = e.kind.media == "video"
        if e.direction == "in":
            if is_video and e.width and e.height:
                key = (e.app_key, e.room_id, e.track_id)
                size = (e.width, e.height)
                before = st.resolution.get(key)
                st.resolution[key] = size
                if before is not None and before != size:
                    self._event(e, e.user_id, "resolution_changed", at, width=e.width, height=e.height)
            if e.fraction_lost is not None and not self._silenced(e):
                bad = e.fraction_lost >= FREEZE_LOSS
                prefix = "up_video" if is_video else "up_audio"
                for span, step in QUALITY_SPANS:
                    c = self._quality[(e.app_key, e.room_id, span, _floor(at, step))]
                    c[f"{prefix}_samples"] += 1
                    c[f"{prefix}_bad"] += int(bad)
                self._abnormal(e, e.user_id, "", bad, "uplink_loss", at)
            return
        if e.subscriber_id is None:
            return
        sub_key = (e.app_key, e.room_id, e.subscriber_id, e.track_id)
        if sub_key not in st.subscriptions:
            self._event(
                e,
                e.subscriber_id,
                "subscribed",
                at,
                peer_id=e.user_id,
                track_id=e.track_id,
                kind=e.kind.value,
            )
        st.subscriptions[sub_key] = (e.at, e.user_id, e.kind.value)
        if e.bitrate_bps is not None:
            st.bitrates[sub_key] = (e.at, e.bitrate_bps)
        if is_video:
            size = (e.width or 0, e.height or 0)
            if size == (0, 0):
                size = st.resolution.get((e.app_key, e.room_id, e.track_id), (0, 0))
            st.received.setdefault((e.app_key, e.room_id, e.subscriber_id), {})[e.track_id] = _Received(
                size, e.at
            )
        if self._silenced(e):
            return  # a muted or blocked track sends nothing on purpose: no freeze
        counts = [
            self._quality[(e.app_key, e.room_id, span, _floor(at, step))] for span, step in QUALITY_SPANS
        ]
        loss = e.fraction_lost or 0.0
        measured = e.fraction_lost is not None or (is_video and e.fps is not None)
        if measured:
            no_frames = is_video and e.fps is not None and e.fps < FREEZE_FPS
            cause = "downlink_loss" if loss >= FREEZE_LOSS else "no_frames"
            self._abnormal(e, e.subscriber_id, e.user_id, loss >= FREEZE_LOSS or no_frames, cause, at)
        for c in counts:
            if is_video:
                if e.fps is not None or e.fraction_lost is not None:
                    c["video_samples"] += 1
                    if (e.fps is not None and e.fps < FREEZE_FPS) or loss >= FREEZE_LOSS:
                        c["video_frozen"] += 1
            elif e.fraction_lost is not None or e.bitrate_bps is not None:
                c["audio_samples"] += 1
                if loss >= FREEZE_LOSS:
                    c["audio_frozen"] += 1
            if e.rtt_ms is not None:
                c["rtt_samples"] += 1
                if e.rtt_ms >= HIGH_RTT_MS:
                    c["rtt_high"] += 1

    def _event(self, e: ev.RoomEvent, user_id: str, type_: str, at: datetime, **detail: Any) -> None:
        self._events.append(
            RoomEventRow(
                event_id=uuid.uuid4().hex,
                app_key=e.app_key,
                room_id=e.room_id,
                user_id=user_id,
                type=type_,
                detail=json.dumps(detail, default=str),
                at=at,
            )
        )

    def _mark_until(self, key: _MKey, at: datetime) -> datetime:
        """Mark the hours after ``key``'s (the last marked) up to the one of ``at``; the last."""
        app, hour, kind, room, subject = key
        upto = _floor(at, _HOUR)
        while hour < upto:
            hour += _HOUR
            self._mark((app, hour, kind, room, subject))
        return hour

    def _mark(self, key: _MKey, entries: int = 0) -> None:
        """Note that a user or call was present in an hour (``entries`` sessions entering)."""
        if entries or (key not in self._marked and key not in self._marks):
            self._marks[key] = self._marks.get(key, 0) + entries

    async def _write_marks(self, s: AsyncSession, marks: dict[_MKey, int]) -> None:
        t = ScaleMarkRow
        for (app, start, kind, room, subject), entries in marks.items():
            key = and_(
                t.app_key == app, t.start == start, t.kind == kind, t.room_id == room, t.subject == subject
            )
            row = (await s.execute(select(t.id).where(key).limit(1))).scalar()
            if row is None:
                s.add(t(app_key=app, start=start, kind=kind, room_id=room, subject=subject, entries=entries))
            elif entries:
                await s.execute(update(t).where(t.id == row).values(entries=t.entries + entries))

    def _peak(self, app_key: str, at: datetime) -> None:
        """Raise the hour's peaks to what is present now (users of the app, its open calls)."""
        st = self._state
        users = sum(1 for p in st.presence.values() if p.app_key == app_key)
        rooms = len(st.calls.get(app_key, ()))
        hour = at.replace(minute=0, second=0, microsecond=0)
        peak = self._peaks.setdefault((app_key, hour), [0, 0])
        peak[0], peak[1] = max(peak[0], users), max(peak[1], rooms)

    def _client(self, e: ev.ClientReport) -> None:
        """Keep what a client reported: device fields, samples, device events."""
        if e.device:
            self._infos.setdefault(e.session_id, {}).update(e.device)
        for smp in e.samples:
            self._client_samples.append(
                ClientSampleRow(
                    app_key=e.app_key,
                    room_id=e.room_id,
                    user_id=e.user_id,
                    peer_id=str(smp.get("peer") or ""),
                    at=_ts(float(smp["at"])),
                    **{k: smp.get(k) for k in CLIENT_FIELDS},
                )
            )
        for item in e.events:
            self._event(
                e, e.user_id, "client_event", _ts(float(item["at"])), name=item["name"], value=item["value"]
            )

    def _silenced(self, e: ev.TrackStats) -> bool:
        st = self._state
        return (e.app_key, e.room_id, e.track_id) in st.muted or (
            e.app_key,
            e.room_id,
            e.user_id,
            e.kind.media,
        ) in st.blocked

    def _abnormal(
        self, e: ev.TrackStats, user_id: str, peer: str, bad: bool, cause: str, at: datetime
    ) -> None:
        """Write an ``abnormal`` event when a track's experience turns bad (once per episode)."""
        key = (e.app_key, e.room_id, user_id, e.track_id)
        was = key in self._state.bad
        if bad and not was:
            self._state.bad.add(key)
            what = "video_freeze" if e.kind.media == "video" else "audio_freeze"
            self._event(e, user_id, "abnormal", at, what=what, cause=cause, peer_id=peer, kind=e.kind.value)
        elif not bad and was:
            self._state.bad.discard(key)

    def tier(self, app_key: str, room_id: str, user_id: str, now: float) -> str:
        """The tier of what ``user_id`` receives now (video seen in the last few samples)."""
        got = self._state.received.get((app_key, room_id, user_id), {})
        return tier_of([r.size for r in got.values() if now - r.seen <= self._stale_s and r.size != (0, 0)])

    def _meter(self, p: _Presence, upto: datetime) -> None:
        if upto > p.since:
            tier = self.tier(p.app_key, p.room_id, p.user_id, upto.timestamp())
            self.ledger.add(p.app_key, p.room_id, "rtc", tier, p.since, upto)
            p.since = upto

    def forwarded_bps(self, now: float) -> float:
        """The bitrate forwarded to every subscriber, by the latest samples (stale ones left out)."""
        return sum(bps for at, bps in self._state.bitrates.values() if now - at <= self._stale_s)

    def _expire_subscriptions(self, now: float) -> None:
        st = self._state
        for key, (at, _) in list(st.bitrates.items()):
            if now - at > self._stale_s:
                del st.bitrates[key]
        for key, (seen, peer, kind) in list(st.subscriptions.items()):
            if now - seen > self._stale_s:
                del st.subscriptions[key]
                app, room, user, track = key
                self._events.append(
                    RoomEventRow(
                        event_id=uuid.uuid4().hex,
                        app_key=app,
                        room_id=room,
                        user_id=user,
                        type="unsubscribed",
                        detail=json.dumps({"track_id": track, "peer_id": peer, "kind": kind}),
                        at=_ts(seen),
                    )
                )

    # -- to the database -----------------------------------------------------------------------------
    async def flush(self) -> None:
        now = utcnow()
        for p in list(self._state.presence.values()):
            self._meter(p, now)
        self._expire_subscriptions(now.timestamp())
        try:
            await self._meter_tasks(now)
        except Exception:
            log.exception("stats.tasks_failed")
        for app_key in {p.app_key for p in self._state.presence.values()} | set(self._state.calls):
            self._peak(app_key, now)  # an hour with no join still has its peak: who is there
        hour = _floor(now, _HOUR)
        for p in self._state.presence.values():  # who is present is present in every hour since
            p.hour = self._mark_until((p.app_key, p.hour, "u", p.room_id, p.user_id), now)
        for (app_key, room_id), (subject, last) in self._state.opened.items():
            self._state.opened[(app_key, room_id)] = (
                subject,
                self._mark_until((app_key, last, "c", room_id, subject), now),
            )
        marks, self._marks = self._marks, {}
        written = {k for k in self._marked | set(marks) if k[1] >= hour}
        peaks, self._peaks = self._peaks, {}
        quality, self._quality = self._quality, defaultdict(lambda: dict.fromkeys(_COUNTS, 0))
        for app, hour in peaks:
            quality[(app, "", "H", hour)]  # the peaks go to the app-wide hour row (created if new)
        for (app, _room, span, start), counts in list(quality.items()):
            if span.isupper():
                continue
            total = quality[(app, "", span.upper(), start)]  # the app-wide row of the bucket
            for name, n in counts.items():
                total[name] += n
        events, self._events = self._events, []
        client, self._client_samples = self._client_samples, []
        infos, self._infos = self._infos, {}
        try:
            async with self._sessions.begin() as s:
                s.add_all(events)
                s.add_all(client)
                await self._write_marks(s, marks)
                for session_id, fields in infos.items():
                    info = (
                        await s.execute(select(ClientInfoRow).where(ClientInfoRow.session_id == session_id))
                    ).scalar_one_or_none()
                    if info is None:
                        s.add(ClientInfoRow(session_id=session_id, updated_at=now, **fields))
                    else:
                        for field_name, value in fields.items():
                            setattr(info, field_name, value)
                        info.updated_at = now
                for (app, room, span, start), counts in quality.items():
                    row = (
                        await s.execute(
                            select(QualityBucketRow.id)
                            .where(
                                QualityBucketRow.app_key == app,
                                QualityBucketRow.span == span,
                                QualityBucketRow.start == start,
                                QualityBucketRow.room_id == room,
                            )
                            .limit(1)
                        )
                    ).scalar()
                    peak = peaks.pop((app, start), None) if span == "H" else None
                    users, rooms = peak if peak is not None else (0, 0)
                    if row is None:
                        s.add(
                            QualityBucketRow(
                                app_key=app,
                                room_id=room,
                                span=span,
                                start=start,
                                peak_users=users,
                                peak_rooms=rooms,
                                **counts,
                            )
                        )
                    else:
                        cols = QualityBucketRow.__table__.c
                        values: dict[str, Any] = {c: cols[c] + n for c, n in counts.items() if n}
                        if users:
                            values["peak_users"] = case(
                                (cols.peak_users < users, users), else_=cols.peak_users
                            )
                        if rooms:
                            values["peak_rooms"] = case(
                                (cols.peak_rooms < rooms, rooms), else_=cols.peak_rooms
                            )
                        if values:
                            await s.execute(
                                update(QualityBucketRow).where(QualityBucketRow.id == row).values(values)
                            )
            self._marked = written  # after a failure, the hour's marks are written again
        except Exception:
            log.exception("stats.flush_failed")
            log_event(log, "stats.dropped", level=logging.WARNING, events=len(events), buckets=len(quality))
        await self.ledger.flush()

    async def _meter_tasks(self, now: datetime) -> None:
        """Minutes of the media tasks this node runs (recording, relay, ingest), since the last flush.

        A task first seen counts from the later of its start and this recorder's previous flush
        (a task taken over, or still running across a restart, is not counted twice); a task
        that ended since (even one shorter than a flush) counts up to its end.
        """
        tracked = list(self._state.tasks)
        running = TaskRow.state.in_(("running", "stopping"))
        here = TaskRow.node_id.is_(None) if self.node_id is None else TaskRow.node_id == self.node_id
        q = select(
            TaskRow.task_id,
            TaskRow.kind,
            TaskRow.sdk_app_id,
            TaskRow.room_id,
            TaskRow.spec,
            TaskRow.started_at,
            TaskRow.ended_at,
            TaskRow.robot_user_id,
            TaskRow.state,
        ).where(
            TaskRow.kind.in_(METERED_KINDS),
            or_(and_(here, or_(running, TaskRow.ended_at > self._metered_at)), TaskRow.task_id.in_(tracked)),
        )
        async with self._sessions() as s:
            rows = (await s.execute(q)).all()
        last, self._metered_at = self._metered_at, now
        seen: set[str] = set()
        for task_id, kind, sdk_app_id, room_id, spec_json, started, ended, robot, state in rows:
            ongoing = state in ("running", "stopping")
            if ongoing:
                seen.add(task_id)
            since = self._state.tasks.get(task_id) or max(started or now, last)
            upto = now if ongoing else min(ended or now, now)
            if ongoing:
                self._state.tasks[task_id] = upto
            if upto <= since:
                continue
            app = str(sdk_app_id)
            try:
                usage = self._task_usage(kind, app, room_id, json.loads(spec_json), robot)
            except Exception:
                continue  # an unreadable spec: its task fails on its own
            for product, tier in usage:
                self.ledger.add(app, room_id, product, tier, since, upto)
        for gone in set(self._state.tasks) - seen:
            del self._state.tasks[gone]

    def _task_usage(
        self, kind: str, app: str, room_id: str, spec_json: dict[str, Any], robot: str | None
    ) -> list[tuple[str, str]]:
        """The (product, tier) pairs a running task of ``kind`` counts (see docs/stats-status.md)."""
        if kind == "recording":
            spec = spec_from_json(spec_json)
            if spec.mode is RecordingMode.MIXED:
                tier = tier_of([(spec.video.width, spec.video.height)]) if spec.records_video else AUDIO
                return [("record_mixed", tier)]
            # Individual: one file set per publisher; its tier is that of its video (or Audio).
            return [
                ("record_single", tier_of([size]) if spec.records_video and size != (0, 0) else AUDIO)
                for size in self._publishers(app, room_id).values()
            ]
        if kind == "relay":
            relay = relay_from_json(spec_json)
            if relay.source is RelaySource.SINGLE:
                if relay.single is None:
                    return []
                room = relay.single.room_id or room_id
                want = TrackKind.SCREEN if relay.single.stream == "screen" else TrackKind.CAMERA
                size = self._published(app, room, relay.single.user_id, want)
                return [("relay", tier_of([size]) if relay.media.video and size != (0, 0) else AUDIO)]
            tier = (
                tier_of([(relay.mix.video.width, relay.mix.video.height)])
                if relay.mix.records_video
                else AUDIO
            )
            out = [("transcode", tier if tier == AUDIO else f"{tier}H264")]
            return [*out, ("relay", tier)] if relay.outputs else out
        if kind == "ingest":
            ingest = ingest_from_json(spec_json)
            size = self._publishers(app, room_id).get(robot or "", (0, 0))
            if size == (0, 0) and ingest.video is not None and ingest.video.width and ingest.video.height:
                size = (ingest.video.width, ingest.video.height)  # not sampled yet: what it encodes to
            return [("ingest", tier_of([size]) if size != (0, 0) else AUDIO)]
        return []

    def _published(self, app_key: str, room_id: str, user_id: str, kind: TrackKind) -> tuple[int, int]:
        """The size of a user's published video of ``kind`` ((0, 0): none, or not sampled yet)."""
        st = self._state
        for (a, r, track), user in st.tracks.items():
            if (a, r, user) == (app_key, room_id, user_id) and st.kinds.get((a, r, track)) is kind:
                return st.resolution.get((a, r, track), (0, 0))
        return (0, 0)

    def _publishers(self, app_key: str, room_id: str) -> dict[str, tuple[int, int]]:
        """Per publishing user of a room, the largest video it publishes ((0, 0): audio only)."""
        out: dict[str, tuple[int, int]] = {}
        for (a, r, track), user in self._state.tracks.items():
            if a == app_key and r == room_id:
                size = self._state.resolution.get((a, r, track), (0, 0))
                old = out.get(user, (0, 0))
                out[user] = size if size[0] * size[1] >= old[0] * old[1] else old
        return out
