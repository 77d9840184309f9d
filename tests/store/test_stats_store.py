"""The statistics model on SQLite and PostgreSQL: usage minutes by tier, quality buckets, derived
and client events, calls and sessions, as written by the recorders from room events."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from roomcast.rtc import events as ev
from roomcast.rtc.track import TrackKind
from roomcast.services.activity import ActivityRecorder
from roomcast.stats.ledger import HOUR, MINUTE, UsageLedger
from roomcast.stats.queries import StatsQueries
from roomcast.stats.recorder import StatsRecorder
from roomcast.store.db import Database

APP, ROOM = "1400000001", "42"


def _common(at: float) -> dict[str, Any]:
    return {"app_key": APP, "room_id": ROOM, "at": at}


async def test_usage_quality_and_events_from_room_events(db: Database) -> None:
    bus = ev.EventBus()
    activity = ActivityRecorder(db.sessions, bus)
    ledger = UsageLedger(db.sessions)
    stats = StatsRecorder(db.sessions, bus, ledger, stats_interval_s=1.0)
    t0 = time.time() - 120
    story: list[ev.RoomEvent] = [
        ev.RoomOpened(**_common(t0)),
        ev.ParticipantJoined(user_id="alice", session_id="s-a", ip="10.0.0.1", **_common(t0)),
        ev.ParticipantJoined(user_id="bob", session_id="s-b", **_common(t0 + 1)),
        ev.ParticipantJoined(user_id="rec", session_id="s-r", hidden=True, **_common(t0 + 1)),
        ev.TrackPublished(
            user_id="alice",
            kind=TrackKind.CAMERA,
            codec="video/H264",
            track_id="alice/camera",
            **_common(t0 + 2),
        ),
    ]
    for n, (w, h) in enumerate([(640, 360), (640, 360), (1280, 720)]):
        story.append(
            ev.TrackStats(
                user_id="alice",
                kind=TrackKind.CAMERA,
                track_id="alice/camera",
                direction="in",
                fps=15.0,
                width=w,
                height=h,
                fraction_lost=0.0,
                **_common(t0 + 3 + n),
            )
        )
    # bob receives alice's 720p video, then a sample with heavy loss (a freeze) and a client report
    story += [
        ev.TrackStats(
            user_id="alice",
            kind=TrackKind.CAMERA,
            track_id="alice/camera",
            direction="out",
            subscriber_id="bob",
            fps=15.0,
            width=1280,
            height=720,
            fraction_lost=0.0,
            **_common(time.time() - 0.5),
        ),
        ev.TrackStats(
            user_id="alice",
            kind=TrackKind.CAMERA,
            track_id="alice/camera",
            direction="out",
            subscriber_id="bob",
            fps=2.0,
            width=1280,
            height=720,
            fraction_lost=0.3,
            **_common(time.time() - 0.2),
        ),
        ev.ClientReport(
            user_id="bob",
            session_id="s-b",
            device={"device_type": "pc", "sdk_version": "test/1"},
            samples=({"at": time.time() - 0.3, "peer": "alice", "decode_fps": 14.0},),
            events=({"at": time.time() - 0.3, "name": "network", "value": "wifi"},),
            **_common(time.time() - 0.3),
        ),
    ]
    for e in story:
        stats.apply(e)
    await activity._write(story)
    await stats.flush()

    now = datetime.now(UTC)
    lo = now - timedelta(hours=2)
    for span in (MINUTE, HOUR):
        window = (lo.replace(minute=0), now + timedelta(minutes=1))
        rows = await ledger.read([APP], "rtc", span, *window, per_room=True)
        app_rows = await ledger.read([APP], "rtc", span, *window)
        assert {r.room_id for r in app_rows} == {""}
        assert abs(sum(r.seconds for r in app_rows) - sum(r.seconds for r in rows)) < 1e-6
        by_tier: dict[str, float] = {}
        for r in rows:
            assert r.room_id == ROOM
            by_tier[r.tier] = by_tier.get(r.tier, 0.0) + r.seconds
        # alice receives nothing (Audio); bob receives 1280x720 (HD); the hidden recorder is not metered
        assert set(by_tier) == {"Audio", "HD"}, by_tier
        assert 118 <= by_tier["Audio"] <= 122 and 117 <= by_tier["HD"] <= 121, by_tier

    q = StatsQueries(db.sessions)
    total, calls = await q.calls(APP, lo, now)
    assert total == 1 and calls[0].creator == "alice" and calls[0].comm_id.startswith(f"{APP}_42_")
    call = await q.find_call(APP, calls[0].comm_id)
    assert call is not None and call.room_id == ROOM
    total, users = await q.sessions(call, lo, now)
    assert total == 2 and [u.user_id for u in users] == ["alice", "bob"]  # the recorder is hidden
    assert users[1].device_type == "pc" and users[1].sdk_version == "test/1" and users[0].sdk_version is None

    events = await q.events(call, "alice", lo, now)
    changes = [e.detail for e in events if e.type == "resolution_changed"]
    assert changes == [{"width": 1280, "height": 720}]
    bob = await q.events(call, "bob", lo, now)
    types = [e.type for e in bob]
    assert "subscribed" in types and "abnormal" in types and "client_event" in types
    abnormal = next(e for e in bob if e.type == "abnormal")
    assert abnormal.detail["what"] == "video_freeze" and abnormal.detail["cause"] == "downlink_loss"
    assert abnormal.detail["peer_id"] == "alice"
    total, found = await q.abnormal(APP, lo, now)
    assert total == 1 and found[0].user_id == "bob"

    samples = await q.samples(call, "bob", lo, now)
    assert {(s.source, s.peer) for s in samples} == {("server", "alice"), ("client", "alice")}

    buckets = await q.quality(
        APP, "h", lo.replace(minute=0, second=0, microsecond=0), now + timedelta(hours=1)
    )
    counts = {k: sum(c[k] for c in buckets.values()) for k in ("video_samples", "video_frozen", "joins")}
    assert counts == {"video_samples": 2, "video_frozen": 1, "joins": 2}

    edges = [now - timedelta(hours=1), now + timedelta(seconds=1)]
    (point,) = await q.scale(APP, edges)
    assert (point.users, point.rooms, point.entries, point.peak_users, point.peak_rooms) == (2, 1, 2, 2, 1)
    (counted,) = await q.counts(APP, edges)  # the same figures, counted by the database
    assert (counted.users, counted.rooms, counted.entries) == (2, 1, 2)
    assert (counted.peak_users, counted.peak_rooms) == (2, 1)  # the recorder's hourly peaks
    later = [now + timedelta(hours=1), now + timedelta(hours=2)]
    assert [(p.users, p.rooms, p.entries) for p in await q.counts(APP, later)] == [(2, 1, 0)]  # still open
    future = [now + timedelta(hours=h) for h in range(1, 5)]  # counted once, the same in each
    assert [(p.users, p.rooms, p.entries) for p in await q.counts(APP, future)] == [(2, 1, 0)] * 3
