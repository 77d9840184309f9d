"""TRTC relay to CDN: StartPublishCdnStream, UpdatePublishCdnStream, StopPublishCdnStream.

Requests are validated and mapped in :mod:`relay_params` to a :class:`RelaySpec`; the task
lives in :class:`roomcast.services.relays.RelayService`.  The vendor request is kept beside it
(robot signatures sealed) with the last accepted ``SequenceNumber``.  There is no Describe
action: a relay that ended answers ``ResourceNotFound`` to Update and Stop.
"""

from __future__ import annotations

from typing import Any

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.relay_params import (
    StartPublishCdnStreamParams,
    StopPublishCdnStreamParams,
    UpdatePublishCdnStreamParams,
    image_urls,
    start_spec,
    updated_spec,
)
from roomcast.domain.errors import FailedPrecondition, InvalidArgument, LimitExceeded, NotFound, Unavailable
from roomcast.domain.task import Task, TaskState
from roomcast.domain.tenancy import App
from roomcast.net.stream_urls import check_stream_url
from roomcast.rtc.errors import AuthError
from roomcast.services.join_tokens import JoinAuthenticator
from roomcast.services.relays import RelayRequest, RelayService

DIALECT = "trtc"
NOT_FOUND = "The relay task does not exist or has ended."


def _service(ctx: ActionContext) -> RelayService:
    svc: RelayService | None = getattr(ctx.runtime, "relays", None)
    if svc is None:
        raise TrtcError("InternalError", "Relaying is not running on this node.")
    return svc


def _map_errors(exc: Exception) -> TrtcError:
    if isinstance(exc, LimitExceeded):
        return TrtcError(
            "FailedOperation.RestrictedConcurrency", "Maximum number of concurrent relay tasks reached."
        )
    if isinstance(exc, InvalidArgument) and exc.subject == "robot_user_id":
        return TrtcError("InvalidParameter.UserId", f"The robot's UserId cannot be used: {exc.message}.")
    if isinstance(exc, InvalidArgument):
        return TrtcError("InvalidParameter", exc.message)
    if isinstance(exc, Unavailable | FailedPrecondition):
        return TrtcError("FailedOperation", exc.message)
    if isinstance(exc, NotFound):
        return TrtcError("ResourceNotFound", NOT_FOUND)
    raise exc


async def _check_urls(
    ctx: ActionContext, p: StartPublishCdnStreamParams | UpdatePublishCdnStreamParams
) -> None:
    policy = ctx.runtime.url_policy
    try:
        for i, c in enumerate(p.PublishCdnParams or ()):
            await check_stream_url(policy, c.PublishCdnUrl, field=f"PublishCdnParams.{i}.PublishCdnUrl")
        await policy.check_all(image_urls(p.VideoParams))
    except InvalidArgument as exc:
        raise TrtcError("InvalidParameter", f"{exc.message}.") from None


async def _check_sig(ctx: ActionContext, app: App, room_id: str, user_id: str, sig: str | None) -> None:
    if sig is None:
        return
    try:
        await JoinAuthenticator(ctx.runtime.tenancy).authenticate(
            sig, app_id=str(app.sdk_app_id), room_id=room_id, user_id=user_id
        )
    except AuthError:
        raise TrtcError(
            "InvalidParameter.UserSig", f"The UserSig of {user_id} is expired or wrong."
        ) from None


def _without_sigs(params: dict[str, Any]) -> dict[str, Any]:
    """The request as kept with the task: robot signatures left out (nothing reads them later;
    the node issues its robots' own tokens)."""
    params.get("AgentParams", {}).pop("UserSig", None)
    for room in params.get("FeedBackRoomParams", []):
        room.pop("UserSig", None)
    return params


def _request(params: dict[str, Any], sequence: int | None) -> dict[str, Any]:
    return {"params": params, "sequence": sequence}


async def start(ctx: ActionContext, p: StartPublishCdnStreamParams) -> dict[str, Any]:
    app = await ctx.app(p.SdkAppId)
    spec = start_spec(p)
    await _check_urls(ctx, p)
    await _check_sig(ctx, app, p.RoomId, p.AgentParams.UserId, p.AgentParams.UserSig)
    for f in p.FeedBackRoomParams or ():
        await _check_sig(ctx, app, f.RoomId, f.UserId, f.UserSig)
    params = _without_sigs(p.model_dump(exclude_none=True))
    req = RelayRequest(
        app=app,
        room_id=p.RoomId,
        spec=spec,
        dialect=DIALECT,
        dialect_request=_request(params, None),
        robot_user_id=p.AgentParams.UserId,
    )
    try:
        task = await _service(ctx).create(req)
    except (LimitExceeded, InvalidArgument, FailedPrecondition, NotFound, Unavailable) as exc:
        raise _map_errors(exc) from None
    return {"TaskId": task.task_id}


async def _live(ctx: ActionContext, sdk_app_id: int, task_id: str) -> tuple[App, Task]:
    app = await ctx.app(sdk_app_id)
    try:
        task = await _service(ctx).get(app, task_id)
    except NotFound:
        raise TrtcError("ResourceNotFound", NOT_FOUND) from None
    if task.state in (TaskState.STOPPING, TaskState.EXITED) or task.dialect != DIALECT:
        raise TrtcError("ResourceNotFound", NOT_FOUND)
    return app, task


async def update(ctx: ActionContext, p: UpdatePublishCdnStreamParams) -> dict[str, Any]:
    app, task = await _live(ctx, p.SdkAppId, p.TaskId)
    last = task.request.get("sequence")
    if isinstance(last, int) and p.SequenceNumber <= last:
        raise TrtcError(
            "FailedOperation", f"SequenceNumber must increase: {p.SequenceNumber} is not greater than {last}."
        )
    for f in p.FeedBackRoomParams or ():
        await _check_sig(ctx, app, f.RoomId, f.UserId, f.UserSig)
    svc = _service(ctx)
    spec = updated_spec(svc.spec_of(task), p, task.room_id)
    await _check_urls(ctx, p)
    params = dict(task.request.get("params", {}))
    names = (
        "AudioParams",
        "VideoParams",
        "SingleSubscribeParams",
        "PublishCdnParams",
        "SeiParams",
        "FeedBackRoomParams",
    )
    for name in names:
        value = getattr(p, name)
        if value is not None:
            params[name] = (
                [v.model_dump(exclude_none=True) for v in value]
                if isinstance(value, list)
                else (value.model_dump(exclude_none=True))
            )
    try:
        await svc.update(app, p.TaskId, spec, _request(_without_sigs(params), p.SequenceNumber))
    except (InvalidArgument, NotFound, Unavailable) as exc:
        raise _map_errors(exc) from None
    return {"TaskId": task.task_id}


async def stop(ctx: ActionContext, p: StopPublishCdnStreamParams) -> dict[str, Any]:
    app, task = await _live(ctx, p.SdkAppId, p.TaskId)
    try:
        await _service(ctx).stop(app, p.TaskId)
    except (NotFound, Unavailable) as exc:
        raise _map_errors(exc) from None
    return {"TaskId": task.task_id}


def register(registry: ActionRegistry) -> None:
    for name, model, handler, starts in (
        ("StartPublishCdnStream", StartPublishCdnStreamParams, start, True),
        ("UpdatePublishCdnStream", UpdatePublishCdnStreamParams, update, False),
        ("StopPublishCdnStream", StopPublishCdnStreamParams, stop, False),
    ):
        registry.add(
            DIALECT,
            Action(name, model, handler, rate_per_s=20, invalid_code="InvalidParameter", starts_task=starts),
        )
