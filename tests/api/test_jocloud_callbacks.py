"""JOYY callback bodies: which events are sent, the file fields, the signature, no callbackurl."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from roomcast.api.jocloud import callbacks
from roomcast.domain.task import Task, TaskEvent, TaskEventKind, TaskFile, TaskState, event_id
from roomcast.domain.tenancy import App, AppState

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
APP = App("a1", 10034, "acc", "demo", AppState.ENABLED, "key", NOW, NOW, NOW)
REQUEST = {
    "callbackurl": "https://example.com/cb",
    "secret_id": "AKIDx",
    "secret_key": "s3cret",
    "storage": {"vender": 1, "endpoint": "cos.ap-guangzhou.myqcloud.com", "bucket": "bk"},
}


def task(request: dict[str, object]) -> Task:
    return Task("rec1", 10034, "recording", "jocloud", "room", TaskState.RUNNING, NOW, {}, request=request)


def ev(kind: TaskEventKind, **kw: object) -> TaskEvent:
    return TaskEvent(event_id("rec1", kind), "rec1", 10034, "room", kind, NOW, **kw)  # type: ignore[arg-type]


FILE = TaskFile(
    key="p/rec1/room_mix_1_0.m3u8",
    track_type="audio_video",
    content_type="application/vnd.apple.mpegurl",
    begin_at=NOW,
    end_at=NOW,
    state="stored",
    duration_ms=5000,
    size=300,
    width=640,
    height=360,
)


def test_file_event_body_and_signature() -> None:
    cb = callbacks.build(APP, ev(TaskEventKind.FILE_STORED, file=FILE), task(REQUEST))
    assert cb is not None and cb.url == "https://example.com/cb"
    body = json.loads(cb.body)
    assert body["event"] == "file_upload" and body["recordid"] == "rec1" and body["appid"] == 10034
    assert body["eventid"] == event_id("rec1", TaskEventKind.FILE_STORED)
    assert body["data"]["fileurl"] == "https://bk.cos.ap-guangzhou.myqcloud.com/p/rec1/room_mix_1_0.m3u8"
    assert (body["data"]["filetype"], body["data"]["duration"], body["data"]["uid"]) == ("m3u8", 5000, "")
    assert cb.headers["SecretId"] == "AKIDx"
    assert cb.headers["Signature"] == hmac.new(b"s3cret", cb.body, hashlib.sha256).hexdigest()


def test_backup_failure_stop_and_unsent_events() -> None:
    backed = callbacks.build(
        APP,
        ev(TaskEventKind.FILE_BACKED_UP, file=FILE, url="http://node/media/backup/x", reason="503"),
        task(REQUEST),
    )
    assert backed is not None
    data = json.loads(backed.body)["data"]
    assert (data["fileurl"], data["error"]) == ("http://node/media/backup/x", "503")
    stop = callbacks.build(APP, ev(TaskEventKind.RECORDER_STOPPED, reason="idle"), task(REQUEST))
    assert stop is not None and json.loads(stop.body)["data"] == {"reason": "idle"}
    failed = callbacks.build(APP, ev(TaskEventKind.UPLOAD_STOPPED, ok=False), task(REQUEST))
    assert failed is not None and json.loads(failed.body)["data"] == {"status": 1}
    assert callbacks.build(APP, ev(TaskEventKind.PLAYLIST_STARTED, file=FILE), task(REQUEST)) is None
    no_url = {k: v for k, v in REQUEST.items() if k != "callbackurl"}
    assert callbacks.build(APP, ev(TaskEventKind.RECORDER_STARTED), task(no_url)) is None
