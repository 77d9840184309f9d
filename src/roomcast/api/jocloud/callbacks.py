"""JOYY recording callbacks to a task's ``callbackurl`` (roomcast's design: the seed names the
field and defines no body).

A POST of ``application/json``::

    {"eventid": "<40 hex, stable>", "event": "file_upload", "appid": 10034, "roomid": "abcabc",
     "recordid": "...", "timestamp": <ms>, "data": {...}}

with the headers ``AppID`` (the appid), ``SecretId`` (the key pair that started the recording) and
``Signature`` = lowercase hex HMAC-SHA256 of the raw body with that key pair's secret. A receiver
checks the signature, then de-duplicates on ``eventid`` (a retried delivery repeats it).

``event`` and its ``data``:

* ``record_start`` ``{}``: the recorder joined the room;
* ``record_stop`` ``{"reason"}``: ``stopped`` (stoprecord), ``idle`` (no stream for 30 s),
  ``room_dismissed``, ``failed``;
* ``upload_start`` ``{}``: the first file is on its way to the bucket;
* ``file_upload`` (a file is in the bucket), ``file_fail`` (it could not be stored: ``error``),
  ``file_backup`` (the bucket kept failing: the file is kept by roomcast at ``fileurl``,
  ``error`` says why): ``{"uid", "filekey", "fileurl", "filetype", "tracktype", "size",
  "starttime", "endtime" (ms), "duration" (ms), "width", "height"}`` (``uid`` is "" for a mix;
  ``filekey`` is the object key, ``fileurl`` the object's virtual-host URL on the request's
  endpoint);
* ``upload_stop`` ``{"status"}``: 0 every file is in the bucket, 1 some file is not;
* ``task_moved`` ``{}``: the node recording it was gone and another one resumed it.

A file being opened is not reported (the seed defines no such event; files are reported once
stored, by ``file_upload``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from roomcast.api.jocloud.storage import object_url
from roomcast.domain.task import Task, TaskEvent, TaskEventKind
from roomcast.domain.tenancy import App
from roomcast.events.outbox import Callback

EVENTS: dict[TaskEventKind, str] = {
    TaskEventKind.RECORDER_STARTED: "record_start",
    TaskEventKind.RECORDER_STOPPED: "record_stop",
    TaskEventKind.UPLOAD_STARTED: "upload_start",
    TaskEventKind.FILE_STORED: "file_upload",
    TaskEventKind.FILE_FAILED: "file_fail",
    TaskEventKind.FILE_BACKED_UP: "file_backup",
    TaskEventKind.UPLOAD_STOPPED: "upload_stop",
    TaskEventKind.TASK_MOVED: "task_moved",
}


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _ms(ev: TaskEvent, which: str) -> int:
    f = ev.file
    at = getattr(f, which, None) if f is not None else None
    return int(at.timestamp() * 1000) if at is not None else 0


def _file(ev: TaskEvent, task: Task) -> dict[str, Any]:
    f = ev.file
    if f is None:
        return {}
    st = task.request.get("storage", {})
    url = ev.url or object_url(st.get("endpoint", ""), st.get("bucket", ""), f.key)
    out: dict[str, Any] = {
        "uid": f.user_id or "",
        "filekey": f.key,
        "fileurl": url,
        "filetype": f.key.rsplit(".", 1)[-1] if "." in f.key else "",
        "tracktype": f.track_type,
        "size": f.size or 0,
        "starttime": _ms(ev, "begin_at"),
        "endtime": _ms(ev, "end_at"),
        "duration": f.duration_ms or 0,
        "width": f.width or 0,
        "height": f.height or 0,
    }
    if ev.kind in (TaskEventKind.FILE_FAILED, TaskEventKind.FILE_BACKED_UP):
        out["error"] = ev.reason or ""
    return out


def data(ev: TaskEvent, task: Task) -> dict[str, Any]:
    if ev.kind is TaskEventKind.RECORDER_STOPPED:
        return {"reason": ev.reason or "stopped"}
    if ev.kind is TaskEventKind.UPLOAD_STOPPED:
        return {"status": 0 if ev.ok else 1}
    return _file(ev, task)


def build(app: App, ev: TaskEvent, task: Task) -> Callback | None:
    """The callback for ``ev``; None without a ``callbackurl`` or for events JOYY does not send."""
    url = task.request.get("callbackurl")
    name = EVENTS.get(ev.kind)
    if not url or name is None:
        return None
    body = {
        "eventid": ev.event_id,
        "event": name,
        "appid": app.sdk_app_id,
        "roomid": ev.room_id,
        "recordid": ev.task_id,
        "timestamp": int(ev.at.timestamp() * 1000),
        "data": data(ev, task),
    }
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "AppID": str(app.sdk_app_id)}
    secret_id, secret = task.request.get("secret_id"), task.request.get("secret_key")
    if isinstance(secret_id, str) and isinstance(secret, str):
        headers["SecretId"] = secret_id
        headers["Signature"] = sign(secret, raw)
    return Callback(
        ev.event_id, str(app.sdk_app_id), f"jocloud.{name}", url, raw, headers, task_id=task.task_id
    )
