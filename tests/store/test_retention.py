"""Retention deletes old samples, events, closed sessions, finished callbacks and uploads in
bounded batches, keeps everything else, and runs as a task that stops cleanly."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from roomcast.runtime import Runtime
from roomcast.services.retention import RetentionJob, RetentionPolicy
from roomcast.store.tables import (
    CallbackRow,
    ClientSampleRow,
    RoomEventRow,
    RoomSessionRow,
    ScaleMarkRow,
    TrackSampleRow,
    UploadRow,
    UsageBucketRow,
    UserSessionRow,
    utcnow,
)

NOW = utcnow()


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def sample(at: datetime, n: int) -> TrackSampleRow:
    return TrackSampleRow(
        app_key="a", room_id="r", user_id="u", track_id=f"t{n}", kind="camera", direction="in", at=at
    )


def callback(n: int, created: datetime, state: str) -> CallbackRow:
    return CallbackRow(
        event_id=f"e{n}",
        app_key="a",
        kind="k",
        url="http://x/",
        body="{}",
        headers="{}",
        state=state,
        attempts=1,
        next_attempt_at=created,
        expires_at=created + timedelta(hours=1),
        created_at=created,
    )


def upload(n: int, created: datetime, state: str, finalized: datetime | None) -> UploadRow:
    return UploadRow(
        target="{}",
        local_path=f"/tmp/{n}",
        object_key=f"k{n}",
        content_type="video/mp4",
        state=state,
        created_at=created,
        updated_at=created,
        finalized_at=finalized,
    )


async def fill(s: AsyncSession) -> None:
    # 25 samples from 20 days ago to 4 days ago (in id order), one out of order at the end
    s.add_all([sample(ago(20 - 0.5 * i), i) for i in range(33)])
    s.add(sample(ago(10), 99))  # written late: older than its neighbours
    s.add_all(
        [
            RoomEventRow(event_id=f"ev{i}", app_key="a", room_id="r", type="x", at=ago(d))
            for i, d in enumerate((40, 35, 31, 29, 1))
        ]
    )
    s.add_all(
        [
            RoomSessionRow(app_key="a", room_id="old-closed", opened_at=ago(60), closed_at=ago(59)),
            RoomSessionRow(app_key="a", room_id="old-open", opened_at=ago(50), closed_at=None),
            RoomSessionRow(app_key="a", room_id="closed-lately", opened_at=ago(45), closed_at=ago(2)),
            RoomSessionRow(app_key="a", room_id="new", opened_at=ago(1), closed_at=None),
        ]
    )
    s.add_all(
        [
            UserSessionRow(
                session_id="s1", app_key="a", room_id="r", user_id="u1", joined_at=ago(40), left_at=ago(39)
            ),
            UserSessionRow(
                session_id="s2", app_key="a", room_id="r", user_id="u2", joined_at=ago(40), left_at=None
            ),
            UserSessionRow(
                session_id="s3", app_key="a", room_id="r", user_id="u3", joined_at=ago(3), left_at=ago(2)
            ),
        ]
    )
    s.add_all(
        [
            callback(1, ago(10), "delivered"),
            callback(2, ago(9), "failed"),
            callback(3, ago(8), "pending"),
            callback(4, ago(1), "delivered"),
        ]
    )
    s.add_all(
        [
            upload(1, ago(10), "done", ago(10)),
            upload(2, ago(10), "failed", ago(9)),
            upload(3, ago(10), "failed", None),  # not finalized: its file may still be reported
            upload(4, ago(10), "pending", None),
            upload(5, ago(10), "done", ago(1)),  # finished lately
            upload(6, ago(1), "done", ago(1)),
        ]
    )
    s.add_all(
        [
            ClientSampleRow(app_key="a", room_id="r", user_id="u", peer_id="", at=ago(8)),
            ClientSampleRow(app_key="a", room_id="r", user_id="u", peer_id="", at=ago(1)),
            UsageBucketRow(
                app_key="a", room_id="r", product="rtc", span="h", start=ago(401), tier="HD", seconds=60
            ),
            UsageBucketRow(
                app_key="a", room_id="r", product="rtc", span="h", start=ago(20), tier="HD", seconds=60
            ),
            ScaleMarkRow(app_key="a", start=ago(401), kind="u", room_id="r", subject="u"),
            ScaleMarkRow(app_key="a", start=ago(20), kind="u", room_id="r", subject="u"),
        ]
    )


async def count(s: AsyncSession, table: type) -> int:
    return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def test_prunes_what_is_old_and_finished_only(runtime: Runtime) -> None:
    async with runtime.db.sessions.begin() as s:
        await fill(s)
    deletes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM TRACK_SAMPLES"):
            deletes.append(statement)

    job = RetentionJob(runtime.db.sessions, RetentionPolicy(), batch=4)  # small batches: many rounds
    sa_event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        deleted = await job.run_once(NOW)
    finally:
        sa_event.remove(runtime.db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(deletes) == 7  # 26 rows, at most 4 per statement (and transaction)
    assert deleted == {
        "track_samples": 26,  # 20 .. 7.5 days ago
        "room_events": 3,
        "room_sessions": 1,
        "user_sessions": 1,
        "callbacks": 2,
        "uploads": 2,
        "client_samples": 1,
        "usage_buckets": 1,  # aggregates live longer (400 days)
        "quality_buckets": 0,
        "scale_marks": 1,
    }
    async with runtime.db.sessions() as s:
        kept = (await s.execute(select(TrackSampleRow.track_id, TrackSampleRow.at))).all()
        # the sample written out of order waits for its neighbours (found by id, not by a scan)
        assert sorted(t for t, at in kept if at < ago(7)) == ["t99"] and len(kept) == 8
        assert sorted((await s.execute(select(RoomEventRow.event_id))).scalars()) == ["ev3", "ev4"]
        rooms = sorted((await s.execute(select(RoomSessionRow.room_id))).scalars())
        assert rooms == ["closed-lately", "new", "old-open"]
        assert sorted((await s.execute(select(UserSessionRow.session_id))).scalars()) == ["s2", "s3"]
        assert sorted((await s.execute(select(CallbackRow.event_id))).scalars()) == ["e3", "e4"]
        assert sorted((await s.execute(select(UploadRow.object_key))).scalars()) == ["k3", "k4", "k5", "k6"]
    assert await job.run_once(NOW) == dict.fromkeys(deleted, 0)  # nothing left to do
    later = await job.run_once(NOW + timedelta(days=3.2))
    assert later["track_samples"] == 8  # the late one goes once its neighbours are old too


async def test_zero_keeps_forever(runtime: Runtime) -> None:
    async with runtime.db.sessions.begin() as s:
        await fill(s)
    job = RetentionJob(runtime.db.sessions, RetentionPolicy(samples_days=0, events_days=0, uploads_days=0))
    assert await job.run_once(NOW) == {
        "callbacks": 2,
        "usage_buckets": 1,
        "quality_buckets": 0,
        "scale_marks": 1,
    }
    async with runtime.db.sessions() as s:
        assert await count(s, TrackSampleRow) == 34 and await count(s, RoomEventRow) == 5
        assert await count(s, UploadRow) == 6


async def test_runs_on_its_interval_and_stops_cleanly(runtime: Runtime) -> None:
    async with runtime.db.sessions.begin() as s:
        s.add(sample(ago(30), 1))
    job = RetentionJob(runtime.db.sessions, RetentionPolicy(), interval_s=0.05)
    job.start()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while job.passes < 3:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
    finally:
        await job.stop()
    async with runtime.db.sessions() as s:
        assert await count(s, TrackSampleRow) == 0
    passes = job.passes
    await asyncio.sleep(0.2)
    assert job.passes == passes  # really stopped
