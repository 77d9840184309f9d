"""TIW online recording: Start/Describe/Stop/Pause/ResumeOnlineRecord (API 2019-09-19).

A recording is a task of :class:`roomcast.services.recordings.RecordingService` (dialect
``tiw``): the engine records each user's camera and screen share (files per user, cut where a
stream stops or the task pauses). When the recorder stops, this dialect's finisher makes the
rest from what was recorded and from the room's stored whiteboard operations: the whiteboard
video (VideoType 2), with ``Concat`` each user's segments spliced across pauses and gaps (the
``Concat.Image`` in between, black without one), and with ``MixStream`` the class video
(VideoType 3: whiteboard and cameras in the layout of ``ModelId`` or ``Custom``). Pausing
records nobody until resumed; the paused spans are left out of the whiteboard and mixed videos.

Timeline: ``VideoPlayTime`` and ``OmittedDurations[].VideoTime`` are milliseconds on the
recorded timeline (the recording's wall-clock time with the paused spans taken out);
``TotalTime`` is its length.

The result callback (the seed documents no body; roomcast's, signed as TRTC callbacks are:
header ``Sign`` = base64(HMAC-SHA256(callback key, body)) and ``SdkAppId``) is sent once the task
is FINISHED: ``{"EventType": "OnlineRecordFinished", "EventId", "SdkAppId", "TaskId",
"Timestamp" (ms), "Payload": {DescribeOnlineRecord's answer}}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from roomcast.api.tiw.params import (
    PAUSED,
    RECORD_PARAMETER,
    SUBSTREAM,
    TYPE_UNMATCHED,
    PauseOnlineRecordParams,
    ResumeOnlineRecordParams,
    StartOnlineRecordParams,
    StopOnlineRecordParams,
    TaskParams,
    board_room,
    board_size,
    check,
    controls,
    media_room,
    mix_layout,
    mix_user_id,
    mixing,
    recording_spec,
)
from roomcast.api.trtc.callbacks import sign
from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from roomcast.domain.task import Task, TaskEvent, TaskEventKind, TaskFile, TaskState
from roomcast.domain.tenancy import App
from roomcast.events.outbox import Callback
from roomcast.log import event
from roomcast.media import sink as msink
from roomcast.rtc.errors import AuthError
from roomcast.runtime import Runtime
from roomcast.services.class_videos import SPLICED, ClassVideoPlan, ClassVideos
from roomcast.services.join_tokens import JoinAuthenticator
from roomcast.services.recordings import RecordingRequest, RecordingService
from roomcast.storage.target import StorageTarget, open_store

log = logging.getLogger("roomcast.api.tiw")

DIALECT = "tiw"
SERVICE = "tiw"
PAUSE_LIMIT_MS = 90 * 60 * 1000
URL_EXPIRE_S = 3600
CALLBACK_URL_EXPIRE_S = 7 * 86400  # the longest a presigned S3 URL lives
WATCH_INTERVAL_S = 5.0
VIDEO_TYPES = {"camera": 0, "screen": 1, "whiteboard": 2, "mix": 3}
_STATUS = {
    TaskState.IDLE: "RECORDING",  # the whiteboard is recorded from the start, streams or not
    TaskState.RUNNING: "RECORDING",
    TaskState.STOPPING: "STOPPED",
    TaskState.EXITED: "FINISHED",
}
_FINISH = {"idle": "AUTO", "stopped": "FORCE_STOP"}  # anything else: EXCEPTION


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ms(at: datetime | None) -> int | None:
    return int(at.timestamp() * 1000) if at is not None else None


def operator_target(settings: Any) -> StorageTarget | None:
    """Where the operator sends TIW recordings (``tiw_s3_*`` settings); None: the media library."""
    if not settings.tiw_s3_bucket:
        return None
    return StorageTarget(
        kind="s3",
        vendor=settings.tiw_s3_vendor,
        region=settings.tiw_s3_region,
        bucket=settings.tiw_s3_bucket,
        prefix=settings.tiw_s3_prefix,
    )


async def file_urls(
    svc: RecordingService, task: Task, files: list[TaskFile], expires_s: int
) -> dict[str, str]:
    """Download URLs of files kept in object storage (presigned when the bucket needs it)."""
    keys = [f.key for f in files if not f.url and f.state not in ("failed", "expired")]
    target = await svc.tasks.target(task.task_id) if keys else None
    if target is None or svc.is_library(target):
        return {}
    store = open_store(target, svc.uploads.options)
    try:
        return {k: await store.url(k, expires_s) for k in keys}
    finally:
        await store.close()


def _service(ctx: ActionContext) -> RecordingService:
    svc: RecordingService | None = getattr(ctx.runtime, "recordings", None)
    if svc is None:
        raise TrtcError("FailedOperation.Record", "Online recording is not running on this node.")
    return svc


def params_of(task: Task) -> StartOnlineRecordParams:
    """The stored request (the RecordUserSig is not kept)."""
    return StartOnlineRecordParams.model_validate({**task.request["params"], "RecordUserSig": ""})


# ---------------------------------------------------------------------------------------- timeline


def pauses_of(request: dict[str, Any], stop_ms: int) -> list[tuple[int, int]]:
    return [(int(a), int(b) if b is not None else stop_ms) for a, b in request.get("pauses", [])]


def spans_of(start_ms: int, stop_ms: int, pauses: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The recorded spans: [start, stop] without the paused ones."""
    spans: list[tuple[int, int]] = []
    at = start_ms
    for a, b in sorted(pauses):
        if a > at:
            spans.append((at, min(a, stop_ms)))
        at = max(at, b)
    if stop_ms > at:
        spans.append((at, stop_ms))
    return [(a, b) for a, b in spans if b > a]


def play_ms(spans: list[tuple[int, int]], wall_ms: int) -> int:
    """Where a wall-clock time falls on the recorded timeline."""
    total = 0
    for a, b in spans:
        if wall_ms <= a:
            break
        total += min(wall_ms, b) - a
    return total


def _start_ms(task: Task) -> int:
    return _ms(task.started_at) or _ms(task.created_at) or 0


def _stop_ms(task: Task) -> int:
    return int(task.request.get("stop_ms") or _ms(task.ended_at) or _now_ms())


# ------------------------------------------------------------------------------------------ answers


def _video_type(f: TaskFile) -> int:
    if f.key.endswith(".mp3"):
        return 4
    return VIDEO_TYPES.get((f.stream or "camera").removesuffix(SPLICED), 0)


def _user_id(f: TaskFile) -> str:
    stream = (f.stream or "camera").removesuffix(SPLICED)
    if stream == "whiteboard":
        return ""
    if stream == "screen":
        return f"{SUBSTREAM}_{f.user_id or ''}"
    return f.user_id or ""


def _listed(files: list[TaskFile], concat: bool) -> list[TaskFile]:
    """The files a client sees: with Concat, a user's spliced video instead of its pieces."""
    spliced = {
        (f.user_id, (f.stream or "").removesuffix(SPLICED))
        for f in files
        if (f.stream or "").endswith(SPLICED)
    }
    out = []
    for f in files:
        if f.state in ("failed", "expired"):
            continue
        if concat and f.key.endswith(".mp4") and (f.user_id, f.stream) in spliced:
            continue
        out.append(f)
    return sorted(out, key=lambda f: (f.begin_at, f.key))


def _interrupts(files: list[TaskFile], pauses: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Per user, how often a camera stream stopped other than by a pause."""
    by_user: dict[str, list[TaskFile]] = {}
    for f in files:
        if f.stream == "camera" and f.key.endswith(".mp4") and f.user_id:
            by_user.setdefault(f.user_id, []).append(f)
    out = []
    for user, segs in sorted(by_user.items()):
        segs.sort(key=lambda f: f.begin_at)
        count = 0
        for prev, nxt in itertools.pairwise(segs):
            end = _ms(prev.end_at) or 0
            begin = _ms(nxt.begin_at) or 0
            if not any(end - 3000 <= a and b <= begin + 3000 for a, b in pauses):
                count += 1
        if count:
            out.append({"UserId": user, "Count": count})
    return out


def result(
    task: Task, files: list[TaskFile], url_of: Callable[[str], str], *, prepared: bool = False
) -> dict[str, Any]:
    """DescribeOnlineRecord's answer for a task and its files; ``prepared``: its recorder is not
    running yet (a node is taking it over)."""
    p = params_of(task)
    request = task.request
    stopped = task.state in (TaskState.STOPPING, TaskState.EXITED)
    stop = _stop_ms(task) if stopped else _now_ms()
    start = _start_ms(task)
    pauses = pauses_of(request, stop)
    spans = spans_of(start, stop, pauses)
    concat = bool(p.Concat is not None and p.Concat.Enabled)
    status = _STATUS[task.state]
    if status == "RECORDING" and request.get("pauses") and request["pauses"][-1][1] is None:
        status = "PAUSED"
    elif prepared and task.state in (TaskState.IDLE, TaskState.RUNNING):
        status = "PREPARED"
    finish = ""
    if stopped:
        finish = str(request.get("finish_reason") or _FINISH.get(task.reason or "", "EXCEPTION"))
    infos = []
    for f in _listed(files, concat):
        begin = _ms(f.begin_at) or start
        infos.append(
            {
                "UserId": _user_id(f),
                "VideoType": _video_type(f),
                "VideoFormat": f.key.rsplit(".", 1)[-1],
                "VideoId": hashlib.sha256(f"{task.task_id}/{f.key}".encode()).hexdigest()[:32],
                "VideoPlayTime": play_ms(spans, begin),
                "VideoDuration": f.duration_ms or 0,
                "VideoSize": f.size or 0,
                "Width": f.width or 0,
                "Height": f.height or 0,
                "VideoUrl": f.url or url_of(f.key),
            }
        )
    return {
        "TaskId": task.task_id,
        "Status": status,
        "FinishReason": finish,
        "RoomId": p.RoomId,
        "GroupId": str(request.get("board_room", "")),
        "RecordUserId": task.robot_user_id or p.RecordUserId,
        "RecordStartTime": start // 1000 if status != "PREPARED" else 0,
        "RecordStopTime": stop // 1000 if stopped else 0,
        "TotalTime": sum(b - a for a, b in spans),
        "ExceptionCnt": sum(1 for f in files if f.state == "failed")
        + (1 if task.error else 0)
        + len(request.get("problems") or []),
        "OmittedDurations": [
            {"VideoTime": play_ms(spans, a), "PauseTime": a, "ResumeTime": b}
            for a, b in pauses
            if concat and b < stop
        ],
        "VideoInfos": infos,
        "Interrupts": _interrupts(files, pauses),
    }


# ------------------------------------------------------------------------------------------ actions


def _map_create_errors(exc: Exception) -> TrtcError:
    if isinstance(exc, LimitExceeded):
        return TrtcError("LimitExceeded.TaskConcurrency", "Too many recordings run at once; try again later.")
    if isinstance(exc, InvalidArgument) and exc.subject == "robot_user_id":
        return TrtcError("ResourceInUse.RecordUserId", f"RecordUserId is in use: {exc.message}.")
    if isinstance(exc, FailedPrecondition):
        return TrtcError("ResourceUnavailable.NotRegistered", exc.message)
    if isinstance(exc, InvalidArgument):
        return TrtcError(RECORD_PARAMETER, exc.message)
    return TrtcError("FailedOperation.Record", str(exc))


async def start(ctx: ActionContext, p: StartOnlineRecordParams) -> dict[str, Any]:
    app = await ctx.app(p.SdkAppId)
    check(p)
    room = media_room(p)
    try:
        await JoinAuthenticator(ctx.runtime.tenancy).authenticate(
            p.RecordUserSig, app_id=str(app.sdk_app_id), room_id=room, user_id=p.RecordUserId
        )
    except AuthError as exc:
        raise TrtcError("AuthFailure", f"RecordUserSig does not verify for RecordUserId: {exc}.") from None
    if p.Concat is not None and p.Concat.Image:
        try:
            await ctx.runtime.url_policy.check(p.Concat.Image, field="Concat.Image")
        except InvalidArgument as exc:
            raise TrtcError("InvalidParameter.UrlFormatError", f"{exc.message}.") from None
    stored = p.model_dump(exclude_none=True)
    stored.pop("RecordUserSig", None)
    target = operator_target(ctx.runtime.settings)
    req = RecordingRequest(
        app=app,
        room_id=room,
        spec=recording_spec(p),
        storage=target,
        dialect=DIALECT,
        dialect_request={
            "params": stored,
            "board_room": board_room(p),
            "pauses": [],
            "library": target is None,
        },
        robot_user_id=p.RecordUserId,
    )
    try:
        task = await _service(ctx).create(req)
    except (LimitExceeded, InvalidArgument, FailedPrecondition, Unavailable, NotFound) as exc:
        raise _map_create_errors(exc) from None
    return {"TaskId": task.task_id}


async def _task(ctx: ActionContext, p: TaskParams) -> tuple[App, Task, list[TaskFile]]:
    app = await ctx.app(p.SdkAppId)
    try:
        task, files = await _service(ctx).get(app, p.TaskId)
    except NotFound:
        raise TrtcError("InvalidParameter.TaskNotFound", "The task does not exist.") from None
    if task.dialect != DIALECT:
        raise TrtcError("InvalidParameter.TaskNotFound", "The task does not exist.")
    return app, task, files


async def describe(ctx: ActionContext, p: TaskParams) -> dict[str, Any]:
    _, task, files = await _task(ctx, p)
    svc = _service(ctx)
    urls = await file_urls(svc, task, files, URL_EXPIRE_S)
    return result(
        task,
        files,
        lambda key: urls.get(key) or svc.library_url(key),
        prepared=svc.recording_here(task) is False,
    )


def _live(task: Task) -> None:
    if task.state in (TaskState.STOPPING, TaskState.EXITED):
        raise TrtcError("UnsupportedOperation.TaskHasAlreadyStopped", "The recording has stopped.")


def _paused(task: Task) -> bool:
    pauses = task.request.get("pauses") or []
    return bool(pauses and pauses[-1][1] is None)


async def _save_request(svc: RecordingService, task: Task, request: dict[str, Any]) -> None:
    await svc.tasks.update_spec(task.task_id, task.spec, request)


async def end(
    svc: RecordingService, app: App, task: Task, finish_reason: str, reason: msink.EndReason
) -> None:
    """Stop a task, noting TIW's FinishReason and the stop time first."""
    request = dict(task.request)
    now = _now_ms()
    request["finish_reason"] = finish_reason
    request["stop_ms"] = now
    request["pauses"] = [[a, b if b is not None else now] for a, b in request.get("pauses", [])]
    await _save_request(svc, task, request)
    await svc.stop(app, task.task_id, reason)


async def stop(ctx: ActionContext, p: StopOnlineRecordParams) -> dict[str, Any]:
    app, task, _ = await _task(ctx, p)
    _live(task)
    try:
        await end(_service(ctx), app, task, "USER_CALL", msink.EndReason.STOPPED)
    except NotFound:
        raise TrtcError("UnsupportedOperation.TaskHasAlreadyStopped", "The recording has stopped.") from None
    except Unavailable as exc:
        raise TrtcError("FailedOperation.Record", exc.message) from None
    return {}


async def pause(ctx: ActionContext, p: PauseOnlineRecordParams) -> dict[str, Any]:
    app, task, _ = await _task(ctx, p)
    _live(task)
    if _paused(task):
        raise TrtcError("UnsupportedOperation.InvalidTaskStatus", "The recording is paused already.")
    request = dict(task.request)
    request["pauses"] = [*request.get("pauses", []), [_now_ms(), None]]
    await _modify(ctx, app, task, PAUSED, request)
    return {}


async def resume(ctx: ActionContext, p: ResumeOnlineRecordParams) -> dict[str, Any]:
    app, task, _ = await _task(ctx, p)
    _live(task)
    if not _paused(task):
        raise TrtcError("UnsupportedOperation.InvalidTaskStatus", "The recording is not paused.")
    request = dict(task.request)
    pauses = [list(x) for x in request["pauses"]]
    pauses[-1][1] = _now_ms()
    request["pauses"] = pauses
    await _modify(ctx, app, task, controls(params_of(task)).users, request)
    return {}


async def _modify(ctx: ActionContext, app: App, task: Task, users: Any, request: dict[str, Any]) -> None:
    try:
        await _service(ctx).modify(app, task.task_id, users=users, dialect_request=request)
    except NotFound:
        raise TrtcError("UnsupportedOperation.TaskHasAlreadyStopped", "The recording has stopped.") from None
    except (Unavailable, InvalidArgument) as exc:
        raise TrtcError("FailedOperation.Record", exc.message) from None


def register(registry: ActionRegistry) -> None:
    for name, model, handler in (
        ("StartOnlineRecord", StartOnlineRecordParams, start),
        ("DescribeOnlineRecord", TaskParams, describe),
        ("StopOnlineRecord", TaskParams, stop),
        ("PauseOnlineRecord", TaskParams, pause),
        ("ResumeOnlineRecord", TaskParams, resume),
    ):
        registry.add(
            SERVICE,
            Action(
                name,
                model,
                handler,
                rate_per_s=20,
                invalid_code=RECORD_PARAMETER if name == "StartOnlineRecord" else "InvalidParameter",
                starts_task=name == "StartOnlineRecord",
                field_codes=False,
                type_code=TYPE_UNMATCHED,
            ),
        )


# ---------------------------------------------------------------------------------- after the stop


def plan_of(p: StartOnlineRecordParams, board_room_id: str) -> ClassVideoPlan:
    """The videos a TIW request asks for, in the service's terms."""
    width, height, ratio = board_size(p)
    ms = p.MixStream
    return ClassVideoPlan(
        board_room=board_room_id,
        board_width=width,
        board_height=height,
        ratio=ratio,
        whiteboard=controls(p).whiteboard,
        splice=bool(p.Concat is not None and p.Concat.Enabled),
        filler_url=p.Concat.Image if p.Concat is not None else None,
        mix=mix_layout(p) if mixing(p) else None,
        mix_user_id=mix_user_id(p),
        mix_audio=not (ms is not None and ms.DisableAudio),
        screen_source=SUBSTREAM + "_{user}",
    )


class Finisher:
    """After the recorder stopped: the whiteboard, spliced and mixed videos, then what the result
    callback needs."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def __call__(
        self, svc: RecordingService, task: Task, files: list[TaskFile], target: StorageTarget
    ) -> None:
        request = dict(task.request)
        stop_ms = int(request.get("stop_ms") or _now_ms())
        request["stop_ms"] = stop_ms
        request["pauses"] = [[a, b if b is not None else stop_ms] for a, b in request.get("pauses", [])]
        await _save_request(svc, task, request)
        task = replace(task, request=request)
        spans = spans_of(_start_ms(task), stop_ms, pauses_of(request, stop_ms))
        videos = ClassVideos(self.rt.whiteboard, self.rt.settings)
        plan = plan_of(params_of(task), str(request["board_room"]))
        problems = await videos.make(svc, task, files, target, plan, spans)
        if problems:
            request["problems"] = problems
        final = await svc.tasks.files(task.task_id)
        request["files_at_finish"] = [_file_json(f) for f in final]
        request["urls_at_finish"] = await file_urls(svc, task, final, CALLBACK_URL_EXPIRE_S)
        await _save_request(svc, task, request)
        event(log, "tiw.finished_videos", task_id=task.task_id, spans=len(spans), problems=len(problems))


# ----------------------------------------------------------------------------------------- callback


def build_callback(svc: RecordingService) -> Callable[[App, TaskEvent, Task], Callback | None]:
    """The result callback, once: when the task's last file is stored (FINISHED)."""

    def build(app: App, ev: TaskEvent, task: Task) -> Callback | None:
        # FINISHED: the last event of the task (the media library's stop, or the upload stop
        # for object storage).
        last = (
            TaskEventKind.LIBRARY_STOPPED
            if task.request.get("library", True)
            else TaskEventKind.UPLOAD_STOPPED
        )
        if not app.callback_url or ev.kind is not last:
            return None
        files = _files_from(task.request.get("files_at_finish") or [])
        urls = task.request.get("urls_at_finish") or {}
        payload = result(
            replace(task, state=TaskState.EXITED), files, lambda key: urls.get(key) or svc.library_url(key)
        )
        if not ev.ok:
            payload["ExceptionCnt"] += 1
        body = {
            "EventType": "OnlineRecordFinished",
            "EventId": ev.event_id,
            "SdkAppId": app.sdk_app_id,
            "TaskId": task.task_id,
            "Timestamp": int(ev.at.timestamp() * 1000),
            "Payload": payload,
        }
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"SdkAppId": str(app.sdk_app_id)}
        if app.callback_key:
            headers["Sign"] = sign(app.callback_key, raw)
        return Callback(
            ev.event_id,
            str(app.sdk_app_id),
            "tiw.online_record",
            app.callback_url,
            raw,
            headers,
            task_id=task.task_id,
        )

    return build


_FILE_FIELDS = ("key", "track_type", "content_type", "duration_ms", "size", "width", "height", "state")


def _file_json(f: TaskFile) -> dict[str, Any]:
    """What the result callback needs of a file (kept with the task when the videos are made)."""
    out: dict[str, Any] = {k: getattr(f, k) for k in _FILE_FIELDS}
    return {
        **out,
        "user_id": f.user_id,
        "stream": f.stream,
        "begin_ms": _ms(f.begin_at),
        "end_ms": _ms(f.end_at),
    }


def _files_from(data: list[dict[str, Any]]) -> list[TaskFile]:
    def at(ms: int | None) -> datetime | None:
        return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None

    out = []
    for d in data:
        if not isinstance(d, dict):
            continue
        out.append(
            TaskFile(
                key=str(d.get("key", "")),
                track_type=str(d.get("track_type", "video")),
                content_type=str(d.get("content_type", "")),
                begin_at=at(d.get("begin_ms")) or datetime.now(UTC),
                state=str(d.get("state", "")),
                user_id=d.get("user_id"),
                stream=d.get("stream"),
                end_at=at(d.get("end_ms")),
                duration_ms=d.get("duration_ms"),
                size=d.get("size"),
                width=d.get("width"),
                height=d.get("height"),
            )
        )
    return out


# ----------------------------------------------------------------------------------------- watchdog


class AutoStop:
    """Stops recordings without A/V and whiteboard activity for AutoStopTimeout (AUTO) and those
    paused for more than 90 minutes (FORCE_STOP)."""

    def __init__(self, svc: RecordingService, rt: Runtime) -> None:
        self.svc = svc
        self.rt = rt
        self.last_av: dict[str, int] = {}

    async def tick(self, now_ms: int) -> None:
        for task in self.svc.running(DIALECT):
            try:
                await self._check(task, now_ms)
            except Exception:
                log.exception("tiw.autostop_failed")

    async def _check(self, task: Task, now_ms: int) -> None:
        task = await self.svc.tasks.get(task.sdk_app_id, task.task_id)
        if task.state not in (TaskState.IDLE, TaskState.RUNNING):
            return
        app = await self.rt.tenancy.get_app(task.sdk_app_id)
        pauses = task.request.get("pauses") or []
        if pauses and pauses[-1][1] is None:
            if now_ms - int(pauses[-1][0]) > PAUSE_LIMIT_MS:
                await end(self.svc, app, task, "FORCE_STOP", msink.EndReason.MAX_DURATION)
            return
        p = params_of(task)
        sfu = self.rt.sfu
        if sfu is not None and sfu.list_tracks(str(task.sdk_app_id), task.room_id):
            self.last_av[task.task_id] = now_ms
        last = max(
            _start_ms(task),
            self.last_av.get(task.task_id, 0),
            max((int(b) for _, b in pauses if b is not None), default=0),
            await self.rt.whiteboard.last_op_ms(str(task.sdk_app_id), str(task.request["board_room"])) or 0,
        )
        timeout_ms = (p.AutoStopTimeout or 300) * 1000
        if now_ms - last >= timeout_ms:
            self.last_av.pop(task.task_id, None)
            await end(self.svc, app, task, "AUTO", msink.EndReason.IDLE)

    async def run(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.tick(_now_ms())


def register_dialect(svc: RecordingService, rt: Runtime) -> None:
    svc.register_dialect(DIALECT, build_callback(svc), Finisher(rt))
    svc.spawn("tiw-autostop", AutoStop(svc, rt).run())


__all__ = ["play_ms", "register", "register_dialect", "result", "spans_of"]
