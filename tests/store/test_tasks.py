"""Task records on SQLite and PostgreSQL: states, files, sealed secrets in the stored spec."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from roomcast.domain.errors import NotFound
from roomcast.domain.task import TaskFile, TaskState
from roomcast.runtime import Runtime
from roomcast.services.tasks import TaskService
from roomcast.store.tables import TaskRow, utcnow


async def test_task_lifecycle(runtime: Runtime) -> None:
    acc = await runtime.tenancy.create_account("a")
    app = await runtime.tenancy.create_app(acc.account_id, "x")
    tasks = TaskService(runtime.db.sessions, runtime.box)
    spec = {
        "storage": {"bucket": "b", "secret_key": "very-secret-value", "access_key": "AK123"},
        "mode": "mixed",
    }
    t = await tasks.create(
        sdk_app_id=app.sdk_app_id,
        kind="recording",
        dialect="trtc",
        room_id="r1",
        spec=spec,
        robot_user_id="rec-1",
        control_expires_at=utcnow() + timedelta(hours=72),
    )
    assert t.state is TaskState.IDLE and len(t.task_id) >= 48 and t.spec == spec
    async with runtime.db.sessions() as s:
        stored = (await s.execute(select(TaskRow.spec))).scalar_one()
    assert "very-secret-value" not in stored and "AK123" not in stored and '"bucket": "b"' in stored

    assert (await tasks.get(app.sdk_app_id, t.task_id)).spec == spec
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
    await tasks.upsert_file(t.task_id, TaskFile(**{**f.__dict__, "state": "stored", "size": 10}))
    files = await tasks.files(t.task_id)
    assert len(files) == 1 and files[0].state == "stored" and files[0].size == 10

    done = await tasks.set_state(t.task_id, TaskState.EXITED, "idle")
    assert done.reason == "idle" and done.ended_at is not None
    again = await tasks.set_state(t.task_id, TaskState.RUNNING, "late")
    assert again.state is TaskState.EXITED and again.reason == "idle"
    assert await tasks.unfinished() == []
