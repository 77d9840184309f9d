"""AI robot tasks on SQLite and PostgreSQL: start with dedup, lookup by session id, transcripts in
order, keys sealed in the row, stop (the robot leaves the room)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from roomcast.domain import ai
from roomcast.domain.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable
from roomcast.domain.task import TaskState
from roomcast.domain.tenancy import AppState
from roomcast.net.urls import UrlPolicy
from roomcast.rtc.room import RoomManager, SfuConfig, default_identity
from roomcast.runtime import Runtime
from roomcast.services.ai import AiService, transcript
from roomcast.services.tasks import TaskService
from roomcast.store.tables import TaskRow


def service(runtime: Runtime, sfu: RoomManager) -> AiService:
    async def app(sdk_app_id: int):  # type: ignore[no-untyped-def]
        return await runtime.tenancy.get_app(sdk_app_id)

    return AiService(
        tasks=TaskService(runtime.db.sessions, runtime.box),
        box=runtime.box,
        sfu=sfu,
        apps=app,
        node_id="n-1",
        url_policy=UrlPolicy(allow_private=True),
    )


async def test_ai_task_records(runtime: Runtime) -> None:
    sfu = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
    svc = service(runtime, sfu)
    acc = await runtime.tenancy.create_account("a")
    app = await runtime.tenancy.create_app(acc.account_id, "x")
    remote = ai.AsrConfig(
        engine=ai.AsrEngine.OPENAI, url="http://127.0.0.1:9/v1/audio/transcriptions", api_key="asr-secret-77"
    )
    spec = ai.TranscriptionSpec(robot_user_id="scribe", session_id="s1", asr=remote)
    try:
        task = await svc.start(app, "100", spec, dialect="trtc", request={"SessionId": "s1"})
        stored = await svc.tasks.by_id(task.task_id)
        assert stored is not None and stored.state is TaskState.RUNNING and stored.kind == "transcription"
        assert "scribe" in sfu.room(str(app.sdk_app_id), "100").participants
        with pytest.raises(AlreadyExists):
            await svc.start(
                app,
                "200",
                ai.TranscriptionSpec(robot_user_id="other", session_id="s1"),
                dialect="trtc",
                request={},
            )
        # Without a session id: one whole-room task per room (the other one has a session id).
        whole = await svc.start(
            app, "100", ai.TranscriptionSpec(robot_user_id="scribe-2"), dialect="trtc", request={}
        )
        with pytest.raises(AlreadyExists):
            await svc.start(
                app, "100", ai.TranscriptionSpec(robot_user_id="scribe-3"), dialect="trtc", request={}
            )
        # A present user's id cannot be a robot's.
        await sfu.join(default_identity(str(app.sdk_app_id), "300", "carol"))
        with pytest.raises(InvalidArgument):
            await svc.start(
                app, "300", ai.TranscriptionSpec(robot_user_id="carol"), dialect="trtc", request={}
            )
        with pytest.raises(InvalidArgument):
            await svc.start(
                app,
                "400",
                ai.TranscriptionSpec(robot_user_id="r", asr=ai.AsrConfig(language="de")),
                dialect="trtc",
                request={},
            )

        found = await svc.find_session(app.sdk_app_id, "s1", ai.KIND_TRANSCRIPTION)
        assert found is not None and found.task_id == task.task_id
        assert await svc.find_session(app.sdk_app_id, "nope", ai.KIND_TRANSCRIPTION) is None

        for i, (user, text) in enumerate([("alice", "one"), ("bob", "two"), ("alice", "three")]):
            await svc._store_line(task.task_id, user, text, i * 1000, i * 1000 + 800)
        lines = await transcript(runtime.db.sessions, task.task_id)
        assert [(ln.seq, ln.user_id, ln.text, ln.start_ms) for ln in lines] == [
            (1, "alice", "one", 0),
            (2, "bob", "two", 1000),
            (3, "alice", "three", 2000),
        ]

        async with runtime.db.sessions() as s:
            row = (await s.execute(select(TaskRow).where(TaskRow.task_id == task.task_id))).scalar_one()
        assert "asr-secret-77" not in row.spec
        assert svc.spec_of(svc.tasks.task(row)) == spec  # opened again for a resume

        await svc.stop(stored)
        after = await svc.tasks.by_id(task.task_id)
        assert after is not None and after.state is TaskState.EXITED and after.reason == "stopped"
        assert "scribe" not in sfu.room(str(app.sdk_app_id), "100").participants
        assert await svc.find(task.task_id) is not None  # described as stopped for a while

        disabled = await runtime.tenancy.set_app_state(app.app_id, AppState.DISABLED)
        with pytest.raises(FailedPrecondition):
            await svc.start(
                disabled, "500", ai.TranscriptionSpec(robot_user_id="x"), dialect="trtc", request={}
            )
        await svc.stop(whole)
    finally:
        await svc.close()
        await sfu.close()


async def test_a_robot_the_server_cannot_seat_fails_its_task(runtime: Runtime) -> None:
    sfu = RoomManager(SfuConfig(stats_interval=0, max_rooms=1))
    svc = service(runtime, sfu)
    acc = await runtime.tenancy.create_account("a")
    app = await runtime.tenancy.create_app(acc.account_id, "x")
    try:
        await sfu.join(default_identity(str(app.sdk_app_id), "1", "dan"))
        with pytest.raises(Unavailable):
            await svc.start(app, "2", ai.TranscriptionSpec(robot_user_id="bot"), dialect="trtc", request={})
        async with runtime.db.sessions() as s:
            row = (await s.execute(select(TaskRow).where(TaskRow.room_id == "2"))).scalar_one()
        assert row.state == TaskState.EXITED.value and row.reason == "failed" and "limit" in (row.error or "")
        assert svc.robots == {}
    finally:
        await svc.close()
        await sfu.close()
