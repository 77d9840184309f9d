"""TRTC cloud-recording callbacks: the vendor's body and ``Sign`` header for each task event.

Format (from Tencent's "Cloud Recording Callback" page; the seed has none): a POST with
``{"EventGroupId": 3, "EventType": 301..312, "CallbackTs": <ms>, "EventInfo": {"RoomId",
"EventTs" (s), "EventMsTs" (ms), "UserId", "TaskId", "Payload": {...}}}`` and the headers
``SdkAppId`` and ``Sign`` = base64(HMAC-SHA256(callback key, body)). roomcast adds ``EventId`` to
``EventInfo`` (stable per event, for de-duplication).

Event types (only the documented ones): 301 recorder start, 302 recorder stop (``LeaveCode``: 0
stopped through the API, 1 idle timeout, 2 room dismissed, 3 failure), 303 upload start, 304 file
info (the first playlist), 305 upload stop (``Status`` 0 every file is in the target, 1 some file
failed or was kept in the backup store), 306 failover (the task moved to another node, which
resumed it), 307 file slice (once per playlist, after its first segment is stored), 311 VOD
commit (a file in the media library: ``VideoUrl``; also a file kept there because its object
storage target kept failing, with ``Errmsg``), 312 VOD stop.

Not sent, for want of a documented event: "a file is stored in object storage" (the seed lists no
per-file event for object storage; earlier roomcast versions sent an invented 310, dropped: the
receiver lists files with DescribeCloudRecording and learns the outcome from 305) and "a file
failed for good" (reported by 305 ``Status`` 1, 302 ``LeaveCode`` 3 as the recording then stops,
and for the media library by 311 ``Status`` 1), and "a file was opened" (the 301-312 list has no
per-file start: 304 reports the first playlist once it is stored, 307 its first slice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from roomcast.domain.task import Task, TaskEvent, TaskEventKind
from roomcast.domain.tenancy import App
from roomcast.events.outbox import Callback

EVENT_GROUP_RECORDING = 3
EVENT_TYPES: dict[TaskEventKind, int] = {
    TaskEventKind.RECORDER_STARTED: 301,
    TaskEventKind.RECORDER_STOPPED: 302,
    TaskEventKind.UPLOAD_STARTED: 303,
    TaskEventKind.PLAYLIST_STARTED: 304,
    TaskEventKind.UPLOAD_STOPPED: 305,
    TaskEventKind.TASK_MOVED: 306,
    TaskEventKind.SEGMENT_STORED: 307,
    TaskEventKind.LIBRARY_COMMITTED: 311,
    TaskEventKind.FILE_BACKED_UP: 311,
    TaskEventKind.LIBRARY_STOPPED: 312,
}
LEAVE_CODES = {"stopped": 0, "idle": 1, "room_dismissed": 2}


def sign(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode("ascii")


def _file_payload(ev: TaskEvent) -> dict[str, Any]:
    f = ev.file
    if f is None:
        return {}
    return {
        "FileName": f.key.rsplit("/", 1)[-1],
        "FileKey": f.key,
        "UserId": f.user_id or "",
        "TrackType": f.track_type,
        "MediaId": "1" if f.stream == "screen" else "0",
        "StartTimeStamp": int(f.begin_at.timestamp() * 1000),
        "EndTimeStamp": int(f.end_at.timestamp() * 1000) if f.end_at else 0,
        "Size": f.size or 0,
    }


def payload(ev: TaskEvent) -> dict[str, Any]:
    k = ev.kind
    if k is TaskEventKind.RECORDER_STOPPED:
        return {"LeaveCode": LEAVE_CODES.get(ev.reason or "", 3)}
    if k in (TaskEventKind.RECORDER_STARTED, TaskEventKind.UPLOAD_STARTED, TaskEventKind.LIBRARY_STOPPED):
        return {"Status": 0 if ev.ok else 1}
    if k is TaskEventKind.UPLOAD_STOPPED:
        return {"Status": 0 if ev.ok else 1}
    if k is TaskEventKind.PLAYLIST_STARTED:
        info = _file_payload(ev)
        return {"FileList": [info["FileName"]] if info else [], "FileMessage": [info] if info else []}
    if k in (TaskEventKind.LIBRARY_COMMITTED, TaskEventKind.FILE_BACKED_UP):
        return {
            "Status": 0 if ev.ok else 1,
            "VideoUrl": ev.url or "",
            **_file_payload(ev),
            "Errmsg": ev.reason or "",
        }
    if k is TaskEventKind.TASK_MOVED:
        return {"Status": 0}
    return _file_payload(ev)


def build(app: App, ev: TaskEvent, task: Task) -> Callback | None:
    """The callback for ``ev``, or None when the app has no callback URL or TRTC has no event."""
    if not app.callback_url or ev.kind not in EVENT_TYPES:
        return None
    now_ms = int(ev.at.timestamp() * 1000)
    body = {
        "EventGroupId": EVENT_GROUP_RECORDING,
        "EventType": EVENT_TYPES[ev.kind],
        "CallbackTs": now_ms,
        "EventInfo": {
            "RoomId": ev.room_id,
            "EventTs": now_ms // 1000,
            "EventMsTs": now_ms,
            "UserId": ev.user_id or "",
            "TaskId": ev.task_id,
            "EventId": ev.event_id,
            "Payload": payload(ev),
        },
    }
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"SdkAppId": str(app.sdk_app_id)}
    if app.callback_key:
        headers["Sign"] = sign(app.callback_key, raw)
    return Callback(
        ev.event_id,
        str(app.sdk_app_id),
        f"trtc.{EVENT_TYPES[ev.kind]}",
        app.callback_url,
        raw,
        headers,
        task_id=task.task_id,
    )
