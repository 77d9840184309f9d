"""The read models behind the native API, console and CLI, on SQLite and PostgreSQL: tasks with
their files and where they are, callbacks and redelivery, open rooms and quality, daily usage."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from roomcast.domain.errors import NotFound
from roomcast.runtime import Runtime
from roomcast.services.callback_admin import CallbackAdmin
from roomcast.services.room_queries import RoomQueries
from roomcast.services.task_queries import TaskQueries
from roomcast.services.usage_queries import UsageQueries
from roomcast.store.tables import (
    AppRow,
    CallbackRow,
    RoomSessionRow,
    TaskFileRow,
    TaskRow,
    TrackSampleRow,
    UploadRow,
    UserSessionRow,
    utcnow,
)


async def _seed(rt: Runtime) -> tuple[int, int]:
    acc = await rt.tenancy.create_account("acme")
    app = await rt.tenancy.create_app(acc.account_id, "demo")
    other = await rt.tenancy.create_app(acc.account_id, "other")
    now = utcnow()
    library = rt.settings.resolved_storage_dir / "library" / "t1"
    library.mkdir(parents=True)
    (library / "a.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    async with rt.db.sessions.begin() as s:
        app_pk = (await s.execute(select(AppRow.id).where(AppRow.sdk_app_id == app.sdk_app_id))).scalar_one()
        for task_id, state, started, ended in (
            ("t1", "exited", now - timedelta(minutes=10), now - timedelta(minutes=4)),
            ("t2", "running", now - timedelta(minutes=2), None),
        ):
            s.add(
                TaskRow(
                    task_id=task_id,
                    app_pk=app_pk,
                    sdk_app_id=app.sdk_app_id,
                    kind="recording",
                    dialect="trtc",
                    room_id="r1",
                    spec="{}",
                    state=state,
                    reason="stopped" if ended else None,
                    created_at=started,
                    started_at=started,
                    ended_at=ended,
                    updated_at=now,
                )
            )
        await s.flush()
        t1_pk = (await s.execute(select(TaskRow.id).where(TaskRow.task_id == "t1"))).scalar_one()
        for key, state in (("t1/a.mp4", "stored"), ("t1/b.mp4", "stored"), ("t1/c.mp4", "uploading")):
            s.add(
                TaskFileRow(
                    task_pk=t1_pk,
                    key=key,
                    track_type="audio_video",
                    content_type="video/mp4",
                    begin_at=now,
                    state=state,
                    size=14,
                )
            )
        s.add_all(
            [
                UploadRow(
                    owner="t1",
                    label="t1/a.mp4",
                    target=json.dumps({"kind": "local", "bucket": "library"}),
                    local_path="/x",
                    object_key="t1/a.mp4",
                    content_type="video/mp4",
                    state="done",
                ),
                UploadRow(
                    owner="t1",
                    label="t1/b.mp4",
                    target=json.dumps({"kind": "s3", "vendor": "cos", "bucket": "rec-1250000000"}),
                    local_path="/y",
                    object_key="rooms/t1/b.mp4",
                    content_type="video/mp4",
                    state="done",
                ),
            ]
        )
        for n, (app_key, state) in enumerate(
            (
                (str(app.sdk_app_id), "pending"),
                (str(app.sdk_app_id), "delivered"),
                (str(other.sdk_app_id), "failed"),
            )
        ):
            s.add(
                CallbackRow(
                    event_id=f"e{n}",
                    app_key=app_key,
                    kind="trtc.recorder_started",
                    url="http://127.0.0.1:9/cb",
                    body=json.dumps({"EventType": 301}),
                    state=state,
                    attempts=n,
                    next_attempt_at=now,
                    expires_at=now,
                    created_at=now + timedelta(seconds=n),
                )
            )
        s.add(RoomSessionRow(app_key=str(app.sdk_app_id), room_id="r1", opened_at=now - timedelta(minutes=3)))
        s.add(RoomSessionRow(app_key=str(app.sdk_app_id), room_id="old", opened_at=now, closed_at=now))
        for user, hidden, left in (("alice", False, None), ("rec", True, None), ("bob", False, now)):
            s.add(
                UserSessionRow(
                    session_id=f"s-{user}",
                    app_key=str(app.sdk_app_id),
                    room_id="r1",
                    user_id=user,
                    hidden=hidden,
                    joined_at=now - timedelta(minutes=3),
                    left_at=left,
                )
            )
        for at, bitrate in ((now - timedelta(seconds=10), 100.0), (now - timedelta(seconds=5), 300_000.0)):
            s.add(
                TrackSampleRow(
                    app_key=str(app.sdk_app_id),
                    room_id="r1",
                    user_id="alice",
                    track_id="alice/camera",
                    kind="camera",
                    direction="in",
                    at=at,
                    bitrate_bps=bitrate,
                    fps=15.0,
                )
            )
    return app.sdk_app_id, other.sdk_app_id


@pytest.mark.postgres
async def test_read_models(runtime: Runtime) -> None:
    app, other = await _seed(runtime)
    tasks = TaskQueries(
        runtime.db.sessions, storage_dir=runtime.settings.resolved_storage_dir, public_url="http://h:1"
    )
    listed = await tasks.list(sdk_app_ids=[app])
    assert [(t.task_id, t.file_count) for t in listed] == [("t2", 0), ("t1", 3)]
    assert [t.task_id for t in await tasks.list(sdk_app_ids=[app], unfinished=True)] == ["t2"]
    assert await tasks.list(sdk_app_ids=[other]) == []
    t1 = await tasks.get("t1", sdk_app_ids=[app])
    assert t1 is not None and t1.state == "exited" and t1.reason == "stopped"
    a, b, c = t1.files
    assert (a.storage, a.url) == ("library", "http://h:1/media/t1/a.mp4")
    assert (b.storage, b.object_key, b.url) == ("cos:rec-1250000000", "rooms/t1/b.mp4", None)
    assert (c.state, c.url) == ("uploading", None)
    assert await tasks.get("t1", sdk_app_ids=[other]) is None
    assert await tasks.recording_rooms(app) == {"r1": 1}
    assert tasks.library_path("../secret.key") is None

    cbs = CallbackAdmin(runtime.db.sessions)
    mine = await cbs.list(app_keys=[str(app)], with_body=True)
    assert [c.event_id for c in mine] == ["e1", "e0"] and mine[0].body == {"EventType": 301}
    assert [c.event_id for c in await cbs.list(state="failed")] == ["e2"]
    with pytest.raises(NotFound):
        await cbs.get("e2", app_keys=[str(app)])
    again = await cbs.redeliver("e1", app_keys=[str(app)])
    assert again.state == "pending" and again.delivered_at is None
    assert (await cbs.get("e1")).next_attempt_at <= utcnow()

    rooms = RoomQueries(runtime.db.sessions)
    (r1,) = await rooms.open_rooms([str(app)])
    assert (r1.room_id, r1.users) == ("r1", ["alice"])
    quality = await rooms.quality(str(app), "r1")
    assert quality["alice/camera"].bitrate_bps == 300_000.0

    usage = await UsageQueries(runtime.db.sessions).daily([app, other], days=2)
    assert len(usage) == 4
    today = next(u for u in usage if u.sdk_app_id == app and u.day == utcnow().date())
    if today.day == (utcnow() - timedelta(minutes=10)).date():  # not across midnight
        assert today.sessions == 2 and 5.5 < today.participant_minutes < 6.5
        assert 7.5 < today.recording_minutes < 8.5
