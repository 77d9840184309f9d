"""SparkRTC recording event callbacks to the app's ``record_callback`` (A14).

The body is the document's Table 6-3 (``job_id``, ``stream_name``, ``app_id``, ``room_id``,
``event_type``, and for ``RECORD_FILE_COMPLETE`` the file fields) plus ``event_id``, stable across
retried deliveries: receivers de-duplicate on it. The document names no authentication scheme
for ``auth_key``; roomcast sends, when the app has one::

    X-Rtc-Signature: hex(HMAC-SHA256(auth_key, raw body))

Events, as §6.6 describes the sequence: ``RECORD_NEW_FILE_START`` each time the recorder opens
a file (every format, every ``record_cycle`` split, every interruption that starts a new file),
with ``record_format``, ``start_time`` and where the file will be (``obs_location``,
``obs_bucket``, ``obs_object``); ``RECORD_FILE_COMPLETE`` when that file is in the bucket, with
the same ``obs_object``; ``CLOUD_RECORD_SERVER_OVER`` when the job ends (files still uploading
report afterwards). A subscription that names ``CLOUD_RECORD_OVER`` (the spelling of the A14
example) receives ``CLOUD_RECORD_SERVER_OVER``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from roomcast.domain.task import Task, TaskEvent, TaskEventKind
from roomcast.domain.tenancy import App
from roomcast.events.outbox import Callback

DIALECT = "sparkrtc"
SIGNATURE_HEADER = "X-Rtc-Signature"
EVENTS: dict[TaskEventKind, str] = {
    TaskEventKind.FILE_STARTED: "RECORD_NEW_FILE_START",
    TaskEventKind.FILE_STORED: "RECORD_FILE_COMPLETE",
    TaskEventKind.RECORDER_STOPPED: "CLOUD_RECORD_SERVER_OVER",
}
ALIASES = {"CLOUD_RECORD_SERVER_OVER": "CLOUD_RECORD_OVER"}


def sign(auth_key: str, body: bytes) -> str:
    return hmac.new(auth_key.encode(), body, hashlib.sha256).hexdigest()


def _time(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else ""


def obs_url(bucket: str, location: str, key: str) -> str:
    return f"https://{bucket}.obs.{location}.myhuaweicloud.com/{key}"


def _record_format(key: str) -> str:
    return "HLS" if key.endswith(".m3u8") else "MP4"


def _start_fields(ev: TaskEvent, task: Task) -> dict[str, Any]:
    f = ev.file
    if f is None:
        return {}
    rule = task.request.get("rule", {})
    return {
        "record_format": _record_format(f.key),
        "start_time": _time(f.begin_at),
        "obs_location": str(rule.get("location", "")),
        "obs_bucket": str(rule.get("bucket", "")),
        "obs_object": f.key,
    }


def _file_fields(ev: TaskEvent, task: Task) -> dict[str, Any]:
    f = ev.file
    if f is None:
        return {}
    rule = task.request.get("rule", {})
    bucket, location = str(rule.get("bucket", "")), str(rule.get("location", ""))
    return {
        "record_format": _record_format(f.key),
        "download_url": obs_url(bucket, location, f.key),
        "record_duration": (f.duration_ms or 0) // 1000,
        "width": f.width or 0,
        "height": f.height or 0,
        "start_time": _time(f.begin_at),
        "end_time": _time(f.end_at),
        "obs_location": location,
        "obs_bucket": bucket,
        "obs_object": f.key,
    }


def stream_name(task: Task) -> str:
    """``m_{job_id}_{room_id}`` (mix) or ``s_{job_id}_{room_id}_{user_id}`` (individual)."""
    if task.request.get("stream_name"):  # automatic recordings: {appid}_{roomid}_{userid}_{media}_{video}
        return str(task.request["stream_name"])
    if task.request.get("job") == "individual":
        return f"s_{task.task_id}_{task.room_id}_{task.request.get('user_id', '')}"
    return f"m_{task.task_id}_{task.room_id}"


def build(app: App, ev: TaskEvent, task: Task) -> Callback | None:
    """The callback for ``ev``; None without a record callback URL, for events SparkRTC does not
    send, or for events the app's subscription leaves out."""
    name = EVENTS.get(ev.kind)
    if name is None or not app.callback_url:
        return None
    subscribed = set(app.callback_events)
    if subscribed and name not in subscribed and ALIASES.get(name) not in subscribed:
        return None
    body: dict[str, Any] = {
        "event_id": ev.event_id,
        "job_id": task.task_id,
        "stream_name": stream_name(task),
        "app_id": app.app_id,
        "room_id": task.room_id,
        "event_type": name,
    }
    if ev.kind is TaskEventKind.FILE_STARTED:
        body.update(_start_fields(ev, task))
    if ev.kind is TaskEventKind.FILE_STORED:
        body.update(_file_fields(ev, task))
    if ev.kind is TaskEventKind.RECORDER_STOPPED:
        body["detail_message"] = ev.reason or "stopped"
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if app.callback_key:
        headers[SIGNATURE_HEADER] = sign(app.callback_key, raw)
    return Callback(
        ev.event_id, str(app.sdk_app_id), f"sparkrtc.{name}", app.callback_url, raw, headers, task.task_id
    )
