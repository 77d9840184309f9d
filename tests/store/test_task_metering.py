"""Metering of the media tasks a node runs (recording, relay, ingest) into the usage ledger, from
task rows: products and tiers, no double counting across flushes, restarts and other nodes."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from roomcast.domain.ingest import IngestSpec, VideoEncoding
from roomcast.domain.ingest import spec_to_json as ingest_to_json
from roomcast.domain.recording import MediaSelection, RecordingMode, RecordingSpec
from roomcast.domain.recording import VideoEncoding as RecVideo
from roomcast.domain.recording import spec_to_json as recording_to_json
from roomcast.domain.relay import RelaySource, RelaySpec, SingleStream, relay_to_json
from roomcast.rtc import events as ev
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.stats.ledger import MINUTE, UsageLedger
from roomcast.stats.recorder import StatsRecorder
from roomcast.store.tables import AppRow, TaskRow, utcnow

ROOM = "m1"
NODE = "node-a"
URL = "rtmp://127.0.0.1/live/x"


def _mix(width: int, height: int, media: MediaSelection = MediaSelection.AUDIO_VIDEO) -> RecordingSpec:
    return RecordingSpec(mode=RecordingMode.MIXED, media=media, video=RecVideo(width=width, height=height))


async def _tasks(
    rt: Runtime, app_pk: int, sdk: int, rows: list[tuple[str, str, dict[str, Any], str]]
) -> None:
    """Running task rows of ``NODE``: (task id, kind, spec JSON, robot user)."""
    async with rt.db.sessions.begin() as s:
        for task_id, kind, spec, robot in rows:
            s.add(
                TaskRow(
                    task_id=task_id,
                    app_pk=app_pk,
                    sdk_app_id=sdk,
                    kind=kind,
                    dialect="trtc",
                    room_id=ROOM,
                    robot_user_id=robot,
                    spec=json.dumps(spec),
                    node_id=NODE,
                    state="running",
                    started_at=utcnow() - timedelta(hours=1),
                )
            )


async def _totals(
    ledger: UsageLedger, app: str, product: str, lo: datetime, hi: datetime
) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in await ledger.read([app], product, MINUTE, lo, hi):
        out[r.tier] = out.get(r.tier, 0.0) + r.seconds
    return out


def _publish(
    app: str, user: str, kind: TrackKind, size: tuple[int, int] | None, at: float
) -> list[ev.RoomEvent]:
    track = f"{user}/{kind.value}"
    common: dict[str, Any] = {"app_key": app, "room_id": ROOM, "at": at}
    out: list[ev.RoomEvent] = [
        ev.TrackPublished(user_id=user, kind=kind, codec="video/H264", track_id=track, **common)
    ]
    if size is not None:
        out.append(
            ev.TrackStats(
                user_id=user,
                kind=kind,
                track_id=track,
                direction="in",
                width=size[0],
                height=size[1],
                **common,
            )
        )
    return out


async def test_running_relays_ingests_and_recordings_are_metered_by_kind(runtime: Runtime) -> None:
    acc = await runtime.tenancy.create_account("meter")
    app_obj = await runtime.tenancy.create_app(acc.account_id, "meter")
    sdk, app = app_obj.sdk_app_id, str(app_obj.sdk_app_id)
    async with runtime.db.sessions() as s:
        app_pk = (await s.execute(select(AppRow.id).where(AppRow.sdk_app_id == sdk))).scalar_one()
    single = RelaySpec(source=RelaySource.SINGLE, single=SingleStream(user_id="pub"), outputs=(URL,))
    await _tasks(
        runtime,
        app_pk,
        sdk,
        [
            ("mix-hd", "relay", relay_to_json(RelaySpec(mix=_mix(1280, 720), outputs=(URL,))), "r1"),
            (
                "mix-audio",
                "relay",
                relay_to_json(RelaySpec(mix=_mix(640, 360, MediaSelection.AUDIO_ONLY), outputs=(URL,))),
                "r2",
            ),
            ("single-cam", "relay", relay_to_json(single), "r3"),
            (
                "single-screen",
                "relay",
                relay_to_json(
                    RelaySpec(
                        source=RelaySource.SINGLE,
                        single=SingleStream(user_id="pub", stream="screen"),
                        outputs=(URL,),
                    )
                ),
                "r4",
            ),
            ("ingest-copy", "ingest", ingest_to_json(IngestSpec(url="rtmp://src/a")), "bot"),
            (
                "ingest-enc",
                "ingest",
                ingest_to_json(IngestSpec(url="rtmp://src/b", video=VideoEncoding(width=1920, height=1080))),
                "bot2",
            ),
            ("rec-mix", "recording", recording_to_json(_mix(640, 480)), "rec"),
            ("broken", "relay", {"v": 99}, "r5"),
        ],
    )
    # Another node's relay is not this node's to meter.
    async with runtime.db.sessions.begin() as s:
        s.add(
            TaskRow(
                task_id="elsewhere",
                app_pk=app_pk,
                sdk_app_id=sdk,
                kind="relay",
                dialect="trtc",
                room_id=ROOM,
                spec=json.dumps(relay_to_json(RelaySpec(mix=_mix(1280, 720), outputs=(URL,)))),
                node_id="node-b",
                state="running",
                started_at=utcnow() - timedelta(hours=1),
            )
        )
    ledger = UsageLedger(runtime.db.sessions)
    stats = StatsRecorder(runtime.db.sessions, ev.EventBus(), ledger, node_id=NODE, flush_s=3600)
    t0 = utcnow()
    # pub's camera is 640x360 (SD); its screen is published but not sampled yet (Audio); the
    # copy ingest's robot publishes 1280x720 (HD).
    for e in (
        _publish(app, "pub", TrackKind.CAMERA, (640, 360), t0.timestamp())
        + _publish(app, "pub", TrackKind.SCREEN, None, t0.timestamp())
        + _publish(app, "bot", TrackKind.CAMERA, (1280, 720), t0.timestamp())
    ):
        stats.apply(e)
    await stats.flush()  # the first sight counts from the recorder's start, not the tasks' start
    await stats.flush()
    t1 = utcnow()
    lo, hi = t0 - timedelta(hours=2), t1 + timedelta(minutes=2)
    relay = await _totals(ledger, app, "relay", lo, hi)
    transcode = await _totals(ledger, app, "transcode", lo, hi)
    ingest = await _totals(ledger, app, "ingest", lo, hi)
    mixed = await _totals(ledger, app, "record_mixed", lo, hi)
    span = (t1 - t0).total_seconds() + 1.0  # every task counts at most the recorder's lifetime
    assert set(relay) == {"HD", "Audio", "SD"}
    assert 0 < relay["HD"] <= span  # mix-hd only ("elsewhere" is another node's)
    assert 0 < relay["SD"] <= span  # the single camera relay, at pub's camera tier
    assert relay["Audio"] == pytest.approx(relay["HD"] * 2)  # the audio mix and the not-yet-sampled screen
    assert set(transcode) == {"HDH264", "Audio"} and transcode["HDH264"] == relay["HD"]
    assert set(ingest) == {"HD", "FullHD"} and ingest["HD"] == ingest["FullHD"] == relay["HD"]
    assert set(mixed) == {"SD"} and mixed["SD"] == relay["HD"]

    # A relay that ends is counted up to its end, then no more; a restarted recorder (or one
    # taking a task over) does not count again what was counted before it started.
    before = dict(relay)
    ended = utcnow()
    async with runtime.db.sessions.begin() as s:
        await s.execute(
            update(TaskRow).where(TaskRow.task_id == "mix-hd").values(state="exited", ended_at=ended)
        )
    await stats.flush()
    await stats.flush()
    after = await _totals(ledger, app, "relay", lo, utcnow() + timedelta(minutes=2))
    assert before["HD"] < after["HD"] <= before["HD"] + (ended - t1).total_seconds() + 0.5
    await stats.flush()
    assert (await _totals(ledger, app, "relay", lo, utcnow() + timedelta(minutes=2)))["HD"] == after["HD"]
    restarted = StatsRecorder(runtime.db.sessions, ev.EventBus(), ledger, node_id=NODE, flush_s=3600)
    counted = (await _totals(ledger, app, "record_mixed", lo, utcnow() + timedelta(minutes=2)))["SD"]
    t2 = utcnow()
    await restarted.flush()
    grown = (await _totals(ledger, app, "record_mixed", lo, utcnow() + timedelta(minutes=2)))["SD"] - counted
    assert 0 < grown <= (utcnow() - t2).total_seconds() + (t2 - t1).total_seconds() + 1.0

    # A task shorter than a flush interval (started and ended between two flushes) still counts.
    hd = (await _totals(ledger, app, "relay", lo, utcnow() + timedelta(minutes=2)))["HD"]
    started = utcnow()
    async with runtime.db.sessions.begin() as s:
        s.add(
            TaskRow(
                task_id="short",
                app_pk=app_pk,
                sdk_app_id=sdk,
                kind="relay",
                dialect="trtc",
                room_id=ROOM,
                spec=json.dumps(relay_to_json(RelaySpec(mix=_mix(1280, 720), outputs=(URL,)))),
                node_id=NODE,
                state="exited",
                started_at=started,
                ended_at=started + timedelta(seconds=0.25),
            )
        )
    await asyncio.sleep(0.3)  # it ended before the flush
    await restarted.flush()
    await restarted.flush()
    short = (await _totals(ledger, app, "relay", lo, utcnow() + timedelta(minutes=2)))["HD"] - hd
    assert short == pytest.approx(0.25)
