"""Task records on SQLite and PostgreSQL: states only move forward, files, sealed secrets, owners."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from roomcast.domain.errors import NotFound
from roomcast.domain.task import TaskEventKind, TaskFile, TaskState, event_id
from roomcast.runtime import Runtime
from roomcast.services.nodes import NodeRegistry
from roomcast.services.tasks import TaskService
from roomcast.storage.target import StorageTarget
from roomcast.store.tables import TaskRow, utcnow

SPEC = {"v": 1, "mode": "individual"}


async def _task(runtime: Runtime, tasks: TaskService, node_id: str | None = "n-1"):  # type: ignore[no-untyped-def]
    acc = await runtime.tenancy.create_account("a")
    app = await runtime.tenancy.create_app(acc.account_id, "x")
    target = StorageTarget(
        kind="s3", vendor="aws", region="us-east-1", bucket="b", access_key="AK123", secret_key="very-secret"
    )
    t = await tasks.create(
        sdk_app_id=app.sdk_app_id,
        kind="recording",
        dialect="trtc",
        room_id="r1",
        spec=SPEC,
        request={"params": {"RoomId": "r1"}, "token": "tok-secret"},
        target=target,
        node_id=node_id,
        robot_user_id="rec-1",
        control_expires_at=utcnow() + timedelta(hours=72),
        library_expire_s=60,
    )
    return app, t


async def test_task_lifecycle(runtime: Runtime) -> None:
    tasks = TaskService(runtime.db.sessions, runtime.box)
    app, t = await _task(runtime, tasks)
    assert t.state is TaskState.IDLE and len(t.task_id) >= 48 and t.spec == SPEC
    assert t.request == {"params": {"RoomId": "r1"}, "token": "tok-secret"} and t.node_id == "n-1"
    async with runtime.db.sessions() as s:
        row = (await s.execute(select(TaskRow))).scalar_one()
    for column in (row.spec, row.request, row.target):
        assert column is not None and "very-secret" not in column and "AK123" not in column
    assert "tok-secret" not in (row.request or "") and '"bucket":"b"' in (row.target or "")
    target = await tasks.target(t.task_id)
    assert target is not None and target.secret_key == "very-secret" and target.bucket == "b"

    assert (await tasks.get(app.sdk_app_id, t.task_id)).spec == SPEC
    with pytest.raises(NotFound):
        await tasks.get(app.sdk_app_id + 1, t.task_id)
    assert [x.task_id for x in await tasks.active_in_room(app.sdk_app_id, "r1")] == [t.task_id]

    running = await tasks.set_state(t.task_id, TaskState.RUNNING)
    assert running.started_at is not None
    f = TaskFile(
        key="p/a.mp4",
        track_type="audio_video",
        content_type="video/mp4",
        begin_at=utcnow(),
        state="recording",
    )
    await tasks.upsert_file(t.task_id, f)
    await tasks.upsert_file(
        t.task_id, TaskFile(**{**f.__dict__, "state": "stored", "size": 10, "url": "u", "backup": True})
    )
    files = await tasks.files(t.task_id)
    assert len(files) == 1 and files[0].state == "stored" and files[0].size == 10 and files[0].backup

    done = await tasks.set_state(t.task_id, TaskState.EXITED, "idle")
    assert done.reason == "idle" and done.ended_at is not None
    again = await tasks.set_state(t.task_id, TaskState.RUNNING, "late")
    assert again.state is TaskState.EXITED and again.reason == "idle"
    assert await tasks.unfinished() == []


async def test_states_only_move_forward(runtime: Runtime) -> None:
    """Describe right after Delete once answered Exited, then InProgress: a late 'started' event
    took the task back. Whatever order the events arrive in, the state never goes back."""
    tasks = TaskService(runtime.db.sessions, runtime.box)
    _, t = await _task(runtime, tasks)
    stopping = await tasks.set_state(t.task_id, TaskState.STOPPING, "stopped")
    assert stopping.state is TaskState.STOPPING
    late = await tasks.set_state(t.task_id, TaskState.RUNNING)  # the job's start event, late
    assert late.state is TaskState.STOPPING and late.reason == "stopped"
    assert (await tasks.set_state(t.task_id, TaskState.IDLE)).state is TaskState.STOPPING
    assert (await tasks.set_state(t.task_id, TaskState.STOPPING, "idle")).reason == "stopped"
    ended = await tasks.set_state(t.task_id, TaskState.EXITED, "idle")
    assert ended.state is TaskState.EXITED and ended.reason == "stopped"


async def test_orphaned_tasks_are_claimed_once(runtime: Runtime) -> None:
    tasks = TaskService(runtime.db.sessions, runtime.box)
    alive = NodeRegistry(runtime.db.sessions, lease_s=60)
    await alive.register()
    _, mine = await _task(runtime, tasks, node_id=alive.node_id)
    acc = await runtime.tenancy.create_account("b")
    app = await runtime.tenancy.create_app(acc.account_id, "y")
    lost = await tasks.create(
        sdk_app_id=app.sdk_app_id,
        kind="recording",
        dialect="trtc",
        room_id="r2",
        spec=SPEC,
        request={},
        target=None,
        node_id="n-gone",
    )
    new, other = NodeRegistry(runtime.db.sessions), NodeRegistry(runtime.db.sessions)
    await new.register()
    await other.register()
    first = await tasks.claim_orphaned("recording", new.node_id)
    second = await tasks.claim_orphaned("recording", other.node_id)
    assert [(t.task_id, old) for t, old in first] == [(lost.task_id, "n-gone")]
    assert second == []  # one node wins each task; the live node's task is nobody's to take
    assert (await tasks.by_id(mine.task_id)).node_id == alive.node_id  # type: ignore[union-attr]
    assert await tasks.next_run(lost.task_id) == 1 and await tasks.next_run(lost.task_id) == 2


def test_event_ids_are_derived_from_what_they_report() -> None:
    a = event_id("t1", TaskEventKind.FILE_STORED, "k/a.mp4")
    assert a == event_id("t1", TaskEventKind.FILE_STORED, "k/a.mp4") and len(a) == 40
    assert (
        len(
            {
                a,
                event_id("t1", TaskEventKind.FILE_STORED, "k/b.mp4"),
                event_id("t1", TaskEventKind.FILE_FAILED, "k/a.mp4"),
                event_id("t2", TaskEventKind.FILE_STORED, "k/a.mp4"),
                event_id("t1", TaskEventKind.FILE_STORED, "k/a.mp4", 1),
            }
        )
        == 5
    )
