"""TRTC cloud recording actions: Create/Describe/Modify/DeleteCloudRecording.

The request is validated and mapped in :mod:`recording_params` to a normalized spec and a storage
target; the task itself lives in :class:`roomcast.services.recordings.RecordingService`, which
stores, resumes and modifies that spec. The vendor request is kept beside it (credentials left out)
only to render this dialect's answers.
"""

from __future__ import annotations

from typing import Any

from roomcast.api.trtc import callbacks
from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.recording_params import (
    CreateCloudRecordingParams,
    DeleteCloudRecordingParams,
    DescribeCloudRecordingParams,
    ModifyCloudRecordingParams,
    check_image_urls,
    layout_ref,
    recording_spec,
    storage_description,
    user_selection,
)
from roomcast.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from roomcast.domain.recording import RecordingMode
from roomcast.domain.task import Task, TaskFile, TaskState
from roomcast.domain.tenancy import App
from roomcast.rtc.errors import AuthError
from roomcast.services.join_tokens import JoinAuthenticator
from roomcast.services.recordings import RecordingRequest, RecordingService
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


def dialect_request(p: CreateCloudRecordingParams) -> dict[str, Any]:
    """What Describe needs to answer as TRTC does: the request without UserSig and storage keys
    (the keys live, sealed, in the task's storage target)."""
    params = p.model_dump(exclude_none=True)
    params.pop("UserSig", None)
    cs = params.get("StorageParams", {}).get("CloudStorage")
    if cs is not None:
        cs.pop("AccessKey", None)
        cs.pop("SecretKey", None)
    return {"params": params}


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
    if isinstance(exc, InvalidArgument | Unavailable) and exc.subject == "storage":
        # A target the store refuses for good is a parameter error; an unreachable one is not.
        code = OUT_OF_RANGE if isinstance(exc, InvalidArgument) else "FailedOperation"
        return TrtcError(code, f"StorageParams.CloudStorage: {exc.message}")
    if isinstance(exc, Unavailable):
        return TrtcError("FailedOperation", exc.message)
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
    await check_image_urls(ctx.runtime.url_policy, p.MixLayoutParams)
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
        dialect_request=dialect_request(p),
        robot_user_id=p.UserId,
        control_hours=float(p.ResourceExpiredHour),
        library_expire_s=_expire_s(p),
    )
    try:
        task = await _service(ctx).create(req)
    except (LimitExceeded, InvalidArgument, FailedPrecondition, NotFound, Unavailable) as exc:
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
    if task.kind != "recording" or task.state is TaskState.EXITED or not task.controllable(utcnow()):
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
    library = "CloudStorage" not in task.request.get("params", {}).get("StorageParams", {})
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
    spec = svc.spec_of(task)
    request = dict(task.request)
    params = dict(request.get("params", {}))
    layout = None
    if p.MixLayoutParams is not None:
        if spec.mode is not RecordingMode.MIXED:
            raise TrtcError(OUT_OF_RANGE, "MixLayoutParams applies to mixed-stream recordings only.")
        p.MixLayoutParams.check_canvas(spec.video.width, spec.video.height)
        await check_image_urls(ctx.runtime.url_policy, p.MixLayoutParams)
        layout = layout_ref(p.MixLayoutParams)
        params["MixLayoutParams"] = p.MixLayoutParams.model_dump(exclude_none=True)
    users = None
    if p.SubscribeStreamUserIds is not None:
        users = user_selection(p.SubscribeStreamUserIds)
        params["RecordParams"] = {
            **params.get("RecordParams", {}),
            "SubscribeStreamUserIds": p.SubscribeStreamUserIds.model_dump(exclude_none=True),
        }
    try:
        await svc.modify(app, p.TaskId, users=users, layout=layout, dialect_request={"params": params})
    except NotFound:
        raise TrtcError("ResourceNotFound", "The task does not exist or has ended.") from None
    except (InvalidArgument, Unavailable) as exc:
        raise _map_errors(exc) from None
    return {"TaskId": task.task_id}


async def delete(ctx: ActionContext, p: DeleteCloudRecordingParams) -> dict[str, Any]:
    app, task, _ = await _controllable(ctx, p.SdkAppId, p.TaskId)
    try:
        await _service(ctx).stop(app, p.TaskId)
    except NotFound:
        raise TrtcError("ResourceNotFound", "The task does not exist or has ended.") from None
    except Unavailable as exc:
        raise _map_errors(exc) from None
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
    service.register_dialect(DIALECT, callbacks.build)
