"""A file the recorder opens: its row and its ``file_started`` event are written in one
transaction, the event once (a replay writes nothing twice), rendered by the task's dialect."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from roomcast.api.sparkrtc import callbacks as spark_callbacks
from roomcast.domain.recording import OutputFormat
from roomcast.domain.task import TaskEventKind, event_id
from roomcast.events.outbox import CallbackOutbox
from roomcast.media.outputs import FileStarted
from roomcast.runtime import Runtime
from roomcast.services.recordings import RecordingService, TaskSink, _Running
from roomcast.services.tasks import TaskService
from roomcast.storage.queue import UploadQueue
from roomcast.storage.target import StorageOptions, StorageTarget
from roomcast.store.tables import CallbackRow


async def test_file_started_row_and_event(runtime: Runtime, tmp_path: Path) -> None:
    acc = await runtime.tenancy.create_account("a")
    app = await runtime.tenancy.create_app(acc.account_id, "x")
    app = await runtime.tenancy.set_callback(app.sdk_app_id, "http://127.0.0.1:9/rec", "key")
    tasks = TaskService(runtime.db.sessions, runtime.box)
    target = StorageTarget(kind="s3", vendor="huawei", region="cn-north-4", bucket="obs-b")
    task = await tasks.create(
        sdk_app_id=app.sdk_app_id,
        kind="recording",
        dialect=spark_callbacks.DIALECT,
        room_id="r1",
        spec={"v": 1},
        request={"job": "mix", "rule": {"location": "cn-north-4", "bucket": "obs-b", "object": ""}},
        target=target,
        node_id="n-1",
    )
    outbox = CallbackOutbox(runtime.db.sessions, url_policy=runtime.url_policy)

    async def apps(_: int):  # type: ignore[no-untyped-def]
        return app

    uploads = UploadQueue(runtime.db.sessions, runtime.box, StorageOptions(local_root=tmp_path))
    svc = RecordingService(
        tasks=tasks,
        engine=None,
        uploads=uploads,
        outbox=outbox,
        apps=apps,
        public_url="http://x",
        node_id="n-1",
    )
    svc.register_dialect(spark_callbacks.DIALECT, spark_callbacks.build)
    sink = TaskSink(svc, _Running(task=task, target=target))
    key = "app/HLS/m_job_r1_20260102T150405Z/m_job_r1_20260102T150405Z_mix_mix.m3u8"
    info = FileStarted(
        path=tmp_path / "f.m3u8",
        key=key,
        format=OutputFormat.HLS,
        user_id="mix",
        stream="mix",
        media="av",
        index=0,
        start_offset=0.0,
        start_wallclock=1_767_366_245.0,
    )
    await sink.file_started(info)
    await sink.file_started(info)  # replayed: the same event id, written once

    (f,) = await tasks.files(task.task_id)
    assert (f.key, f.state, f.user_id, f.track_type) == (key, "recording", None, "audio_video")
    states = await outbox.states()
    eid = event_id(task.task_id, TaskEventKind.FILE_STARTED, key, 0)
    assert list(states) == [eid]
    async with runtime.db.sessions() as s:
        (row,) = (await s.execute(select(CallbackRow))).scalars().all()
    body = json.loads(row.body)
    assert body["event_type"] == "RECORD_NEW_FILE_START" and body["obs_object"] == key
    assert body["record_format"] == "HLS" and body["start_time"] == "2026-01-02T15:04:05Z"
