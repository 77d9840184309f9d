"""SparkRTC record callback bodies: fields, signature, subscription and the events not sent."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from roomcast.api.jocloud import callbacks as jocloud_callbacks
from roomcast.api.sparkrtc.callbacks import SIGNATURE_HEADER, build, sign
from roomcast.api.trtc import callbacks as trtc_callbacks
from roomcast.domain.task import Task, TaskEvent, TaskEventKind, TaskFile, TaskState
from roomcast.domain.tenancy import App, AppState

T0 = datetime(2026, 1, 2, 15, 4, 5, tzinfo=UTC)
T1 = datetime(2026, 1, 2, 15, 5, 10, tzinfo=UTC)
APP = App(
    app_id="5ff9701f2346968bb306cb43",
    sdk_app_id=1400000001,
    account_id="acc",
    name="demo",
    state=AppState.ENABLED,
    app_key="k",
    created_at=T0,
    updated_at=T0,
    state_updated_at=T0,
    callback_url="https://hooks.example.com/rec",
    callback_key="secret",
    callback_events=("RECORD_NEW_FILE_START", "RECORD_FILE_COMPLETE", "CLOUD_RECORD_OVER"),
)
TASK = Task(
    task_id="job1",
    sdk_app_id=1400000001,
    kind="recording",
    dialect="sparkrtc",
    room_id="room001",
    state=TaskState.RUNNING,
    created_at=T0,
    spec={},
    request={
        "job": "individual",
        "user_id": "user001",
        "rule": {"location": "cn-north-4", "bucket": "obsname", "object": "Record"},
    },
)
FILE = TaskFile(
    key="Record/app/MP4/s_job1_room001_user001_x/s.mp4",
    track_type="audio_video",
    content_type="video/mp4",
    begin_at=T0,
    end_at=T1,
    state="stored",
    duration_ms=65_400,
    width=640,
    height=480,
)


def event(kind: TaskEventKind, **kw: object) -> TaskEvent:
    return TaskEvent(f"ev-{kind.value}", "job1", 1400000001, "room001", kind, T1, **kw)  # type: ignore[arg-type]


def test_file_complete_body_and_signature() -> None:
    cb = build(APP, event(TaskEventKind.FILE_STORED, file=FILE), TASK)
    assert cb is not None and cb.url == APP.callback_url and cb.event_id == "ev-file_stored"
    body = json.loads(cb.body)
    assert body == {
        "event_id": "ev-file_stored",
        "job_id": "job1",
        "stream_name": "s_job1_room001_user001",
        "app_id": APP.app_id,
        "room_id": "room001",
        "event_type": "RECORD_FILE_COMPLETE",
        "record_format": "MP4",
        "download_url": f"https://obsname.obs.cn-north-4.myhuaweicloud.com/{FILE.key}",
        "record_duration": 65,
        "width": 640,
        "height": 480,
        "start_time": "2026-01-02T15:04:05Z",
        "end_time": "2026-01-02T15:05:10Z",
        "obs_location": "cn-north-4",
        "obs_bucket": "obsname",
        "obs_object": FILE.key,
    }
    assert cb.headers[SIGNATURE_HEADER] == sign("secret", cb.body)


def test_job_over_follows_the_a14_spelling_and_mix_stream_name() -> None:
    mix = replace(TASK, request={"job": "mix"})
    cb = build(APP, event(TaskEventKind.RECORDER_STOPPED, reason="idle"), mix)
    assert cb is not None
    body = json.loads(cb.body)
    assert body["event_type"] == "CLOUD_RECORD_SERVER_OVER" and body["detail_message"] == "idle"
    assert body["stream_name"] == "m_job1_room001"


def test_new_file_start_per_file() -> None:
    opened = replace(FILE, key="Record/app/HLS/s_x/s.m3u8", end_at=None, state="recording", width=None)
    cb = build(APP, event(TaskEventKind.FILE_STARTED, file=opened), TASK)
    assert cb is not None and cb.kind == "sparkrtc.RECORD_NEW_FILE_START"
    body = json.loads(cb.body)
    assert body == {
        "event_id": "ev-file_started",
        "job_id": "job1",
        "stream_name": "s_job1_room001_user001",
        "app_id": APP.app_id,
        "room_id": "room001",
        "event_type": "RECORD_NEW_FILE_START",
        "record_format": "HLS",
        "start_time": "2026-01-02T15:04:05Z",
        "obs_location": "cn-north-4",
        "obs_bucket": "obsname",
        "obs_object": opened.key,
    }
    assert cb.headers[SIGNATURE_HEADER] == sign("secret", cb.body)


def test_not_sent() -> None:
    started = event(TaskEventKind.FILE_STARTED, file=FILE)
    assert build(replace(APP, callback_url=None), started, TASK) is None
    # The recorder joining is not a file: RECORD_NEW_FILE_START comes once per file opened.
    assert build(APP, event(TaskEventKind.RECORDER_STARTED), TASK) is None
    assert build(APP, event(TaskEventKind.UPLOAD_STOPPED), TASK) is None
    only_files = replace(APP, callback_events=("RECORD_FILE_COMPLETE",))
    assert build(only_files, started, TASK) is None
    unsigned = build(replace(APP, callback_key=None), started, TASK)
    assert unsigned is not None and SIGNATURE_HEADER not in unsigned.headers


def test_other_dialects_ignore_file_started() -> None:
    """TRTC (301-312) and JOYY document no per-file start event."""
    started = event(TaskEventKind.FILE_STARTED, file=FILE)
    trtc_task = replace(TASK, dialect="trtc", request={})
    assert trtc_callbacks.build(APP, started, trtc_task) is None
    joy_task = replace(TASK, dialect="jocloud", request={"callbackurl": "https://hooks.example.com/joy"})
    assert jocloud_callbacks.build(APP, started, joy_task) is None
    assert jocloud_callbacks.build(APP, event(TaskEventKind.FILE_STORED, file=FILE), joy_task) is not None
