"""TRTC cloud recording actions: Create/Describe/Modify/DeleteCloudRecording.

The request is validated and mapped in :mod:`recording_params`; the task itself lives in
:class:`roomcast.services.recordings.RecordingService`. The vendor request is stored with the
task (storage keys moved out and sealed) so a restarted server can rebuild the spec and resume.
"""

from __future__ import annotations

from typing import Any

from roomcast.api.trtc import callbacks
from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.params import parse
from roomcast.api.trtc.recording_params import (
    CreateCloudRecordingParams,
    DeleteCloudRecordingParams,
    DescribeCloudRecordingParams,
    ModifyCloudRecordingParams,
    layout_ref,
    recording_spec,
    storage_description,
    user_selection,
)
from roomcast.domain.errors import FailedPrecondition, InvalidArgument, LimitExceeded, NotFound
from roomcast.domain.task import Task, TaskFile, TaskState
from roomcast.domain.tenancy import App
from roomcast.rtc.errors import AuthError
from roomcast.services.join_tokens import JoinAuthenticator
from roomcast.services.recordings import Rebuilt, RecordingRequest, RecordingService
from roomcast.storage.target import StorageTarget
from roomcast.store.tables import utcnow

DIALECT = "trtc"
OUT_OF_RANGE = "InvalidParameter.OutOfRange"
STATUS = {TaskState.IDLE: "Idle", TaskState.RUNNING: "InProgress", TaskState.STOPPING: "Exited"}


def _service(ctx: ActionContext) -> RecordingService:
    svc: RecordingService | None = getattr(ctx.runtime, "recordings", None)
    if svc is None:
        raise TrtcError("InternalError.CRInternalError", "On-cloud recording is not running on this node.")
    return svc


def _target(p: CreateCloudRecordingParams) -> StorageTarget | None:
    d = storage_description(p)
    if d["kind"] == "library":
        return None
    return StorageTarget(
        kind="s3",
        vendor=d["vendor"],
        region=d["region"],
        bucket=d["bucket"],
        access_key=d["access_key"],
        secret_key=d["secret_key"],
    )


def stored_request(p: CreateCloudRecordingParams) -> dict[str, Any]:
    """The request without credentials in clear: keys go under names the task store seals."""
    params = p.model_dump(exclude_none=True)
    params.pop("UserSig", None)
    out: dict[str, Any] = {"params": params}
    cs = params.get("StorageParams", {}).get("CloudStorage")
    if cs is not None:
        out["access_key"] = cs.pop("AccessKey")
        out["secret_key"] = cs.pop("SecretKey")
    return out


def rebuild(stored: dict[str, Any]) -> Rebuilt:
    params = dict(stored["params"])
    params["UserSig"] = "-"  # checked at creation; not needed to resume
    cs = params.get("StorageParams", {}).get("CloudStorage")
    if cs is not None:
        cs["AccessKey"] = stored.get("access_key", "")
        cs["SecretKey"] = stored.get("secret_key", "")
    p = parse(CreateCloudRecordingParams, params)
    return Rebuilt(spec=recording_spec(p), storage=_target(p), library_expire_s=_expire_s(p))


def _expire_s(p: CreateCloudRecordingParams) -> int:
    d = storage_description(p)
    return int(d.get("expire_s", 0)) if d["kind"] == "library" else 0


def _map_errors(exc: Exception) -> TrtcError:
    if isinstance(exc, LimitExceeded):
        return TrtcError(
            "FailedOperation.RestrictedConcurrency",
            "Maximum number of concurrent on-cloud recording tasks reached.",
        )
    if isinstance(exc, InvalidArgument) and exc.subject == "robot_user_id":
        return TrtcError("InvalidParameter.UserId", f"The recorder's UserId cannot be used: {exc.message}.")
    if isinstance(exc, InvalidArgument):
        return TrtcError(OUT_OF_RANGE, exc.message)
    if isinstance(exc, FailedPrecondition):
        return TrtcError("FailedOperation", exc.message)
    if isinstance(exc, NotFound):
        return TrtcError("ResourceNotFound", "The task does not exist or has ended.")
    raise exc


async def create(ctx: ActionContext, p: CreateCloudRecordingParams) -> dict[str, Any]:
    app = await ctx.app(p.SdkAppId)
    spec = recording_spec(p)
    try:
        await JoinAuthenticator(ctx.runtime.tenancy).authenticate(
            p.UserSig, app_id=str(app.sdk_app_id), room_id=p.RoomId, user_id=p.UserId
        )
    except AuthError:
        raise TrtcError("InvalidParameter.UserSig", "UserSig is expired or wrong.") from None
    req = RecordingRequest(
        app=app,
        room_id=p.RoomId,
        spec=spec,
        storage=_target(p),
        dialect=DIALECT,
        stored_request=stored_request(p),
        robot_user_id=p.UserId,
        control_hours=float(p.ResourceExpiredHour),
        library_expire_s=_expire_s(p),
    )
    try:
        task = await _service(ctx).create(req)
    except (LimitExceeded, InvalidArgument, FailedPrecondition, NotFound) as exc:
        raise _map_errors(exc) from None
    return {"TaskId": task.task_id}


async def _controllable(
    ctx: ActionContext, sdk_app_id: int, task_id: str
) -> tuple[App, Task, list[TaskFile]]:
    app = await ctx.app(sdk_app_id)
    try:
        task, files = await _service(ctx).get(app, task_id)
    except NotFound:
        raise TrtcError("ResourceNotFound", "The task does not exist or has ended.") from None
    if task.state is TaskState.EXITED or not task.controllable(utcnow()):
        raise TrtcError("ResourceNotFound", "The task has ended or can no longer be controlled.")
    return app, task, files


def _storage_file(f: TaskFile) -> dict[str, Any]:
    return {
        "UserId": f.user_id or "",
        "FileName": f.key.rsplit("/", 1)[-1],
        "TrackType": f.track_type,
        "BeginTimeStamp": int(f.begin_at.timestamp() * 1000),
    }


async def describe(ctx: ActionContext, p: DescribeCloudRecordingParams) -> dict[str, Any]:
    _, task, files = await _controllable(ctx, p.SdkAppId, p.TaskId)
    library = "CloudStorage" not in task.spec.get("params", {}).get("StorageParams", {})
    # Files still uploading to the media library are not listed (as the vendor documents).
    listed = [f for f in files if f.state != "failed" and (not library or f.state == "stored")]
    return {
        "TaskId": task.task_id,
        "Status": STATUS[task.state],
        "StorageFileList": [_storage_file(f) for f in listed],
    }


async def modify(ctx: ActionContext, p: ModifyCloudRecordingParams) -> dict[str, Any]:
    app, task, _ = await _controllable(ctx, p.SdkAppId, p.TaskId)
    svc = _service(ctx)
    stored = dict(task.spec)
    params = dict(stored["params"])
    mixed = params["RecordParams"]["RecordMode"] == 2
    layout = None
    if p.MixLayoutParams is not None:
        if not mixed:
            raise TrtcError(OUT_OF_RANGE, "MixLayoutParams applies to mixed-stream recordings only.")
        video = (params.get("MixTranscodeParams") or {}).get("VideoParams") or {"Width": 360, "Height": 640}
        p.MixLayoutParams.check_canvas(int(video["Width"]), int(video["Height"]))
        layout = layout_ref(p.MixLayoutParams)
        params["MixLayoutParams"] = p.MixLayoutParams.model_dump(exclude_none=True)
    users = None
    if p.SubscribeStreamUserIds is not None:
        users = user_selection(p.SubscribeStreamUserIds)
        params["RecordParams"] = {
            **params["RecordParams"],
            "SubscribeStreamUserIds": p.SubscribeStreamUserIds.model_dump(exclude_none=True),
        }
    try:
        await svc.modify(app, p.TaskId, users=users, layout=layout)
    except NotFound:
        raise TrtcError("ResourceNotFound", "The task does not exist or has ended.") from None
    stored["params"] = params
    await svc.update_stored_request(p.TaskId, stored)
    return {"TaskId": task.task_id}


async def delete(ctx: ActionContext, p: DeleteCloudRecordingParams) -> dict[str, Any]:
    app, task, _ = await _controllable(ctx, p.SdkAppId, p.TaskId)
    try:
        await _service(ctx).stop(app, p.TaskId)
    except NotFound:
        raise TrtcError("ResourceNotFound", "The task does not exist or has ended.") from None
    return {"TaskId": task.task_id}


def register(registry: ActionRegistry) -> None:
    for name, model, handler in (
        ("CreateCloudRecording", CreateCloudRecordingParams, create),
        ("DescribeCloudRecording", DescribeCloudRecordingParams, describe),
        ("ModifyCloudRecording", ModifyCloudRecordingParams, modify),
        ("DeleteCloudRecording", DeleteCloudRecordingParams, delete),
    ):
        starts_task = name == "CreateCloudRecording"  # refused on a disabled app
        registry.add(
            DIALECT,
            Action(name, model, handler, rate_per_s=20, invalid_code=OUT_OF_RANGE, starts_task=starts_task),
        )


def register_dialect(service: RecordingService) -> None:
    service.register_dialect(DIALECT, callbacks.build, rebuild)
