"""TRTC stream ingest ("pull stream relay"): Start/Describe/Update/StopStreamIngest.

The task lives in :class:`roomcast.services.ingests.IngestService`; this module maps the vendor
fields to an :class:`IngestSpec` and the domain errors to the codes the API documents.

Choices where the docs are silent or contradict themselves:

* ``RoomIdType`` (0 string, 1 integer, default 1) is enforced: with 1, ``RoomId`` must be an
  integer in range (``InvalidParameter.RoomId``), even though the doc's example sends
  ``"room123"`` with type 1. Integer and string rooms are one namespace in roomcast.
* Every source problem answers ``InvalidParameter.StreamUrl`` (a URL that is malformed, refused
  by the URL rules, unreachable when the task starts or holds no stream roomcast can decode), each
  with its own message.
* A ``UserId`` already in the room is ``FailedOperation.NotAllowed``; a second task with the same
  user in the same room is ``FailedOperation.TaskExist``.
* ``MaxDuration`` applies only with ``RepeatNum`` -1, as documented; ``SeekSecond`` applies to the
  first play (loops restart at 0). ``AutoPush`` (the vendor's relay to its own CDN, a console
  switch) answers ``FailedOperation.NotAllowed``: roomcast has no CDN (use
  StartPublishCdnStream). ``PrivateMapKey`` is accepted and not needed (roomcast has no advanced
  room permission).
* Describe and Update know only ``InProgress`` and ``NotExist`` (a paused task is in progress);
  Describe answers ``NotExist`` for an ended or unknown task, Update ``FailedOperation.TaskNotExist``,
  Stop ``FailedOperation.TaskFinished`` for an ended task and ``InvalidParameter.TaskId`` for an
  unknown one.
* The deprecated ``SourceUrl`` (one URL) is used when ``StreamUrl`` is absent, and the deprecated
  ``VideoEncodeParams``/``AudioEncodeParams`` are honoured (video given: transcoded to them;
  ``AudioEncodeParams.SampleRate`` 44100 is accepted but Opus runs at 48 kHz). Bad values in them
  are ``InvalidParameter.EncodeParams``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.params import Params
from roomcast.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from roomcast.domain.ingest import AudioEncoding, IngestSpec, VideoEncoding
from roomcast.domain.task import TaskState
from roomcast.rtc.errors import AuthError
from roomcast.services.ingests import IngestRequest, IngestService
from roomcast.services.join_tokens import JoinAuthenticator

DIALECT = "trtc"
INT_ROOM_MAX = 4_294_967_294
STR_ROOM_MAX_LEN = 64
IN_PROGRESS = "InProgress"
NOT_EXIST = "NotExist"


class _Encode(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoEncodeParams(_Encode):
    Width: int = Field(default=0, ge=0, le=1920)
    Height: int = Field(default=0, ge=0, le=1080)
    Fps: int | None = Field(default=None, ge=1, le=60)
    BitRate: int | None = Field(default=None, ge=1, le=10000)
    Gop: int | None = Field(default=None, ge=1, le=2)


class AudioEncodeParams(_Encode):
    SampleRate: int | None = None
    Channel: int | None = Field(default=None, ge=1, le=2)
    BitRate: int | None = Field(default=None, ge=8, le=500)

    @field_validator("SampleRate")
    @classmethod
    def _rate(cls, v: int | None) -> int | None:
        if v is not None and v not in (48000, 44100):
            raise ValueError("must be 48000 or 44100")
        return v


class StartStreamIngestParams(Params):
    SdkAppId: int
    RoomId: str = Field(min_length=1)
    RoomIdType: int = Field(default=1, ge=0, le=1)
    UserId: str = Field(min_length=1, max_length=128)
    UserSig: str = Field(min_length=1)
    StreamUrl: str | None = None
    PrivateMapKey: str | None = None
    SeekSecond: int | None = Field(default=None, ge=0)
    AutoPush: bool | None = None
    RepeatNum: int | None = Field(default=None, ge=-1, le=1000)
    MaxDuration: int | None = Field(default=None, ge=1, le=10080)
    Volume: int | None = Field(default=None, ge=0, le=100)
    VideoEncodeParams: dict[str, Any] | None = None
    AudioEncodeParams: dict[str, Any] | None = None
    SourceUrl: list[str] | None = None

    @field_validator("RepeatNum")
    @classmethod
    def _repeats(cls, v: int | None) -> int | None:
        if v == 0:
            raise ValueError("must be -1 or 1 to 1000")
        return v


class DescribeStreamIngestParams(Params):
    SdkAppId: int
    TaskId: str = Field(min_length=1, max_length=128)


class StopStreamIngestParams(Params):
    SdkAppId: int
    TaskId: str = Field(min_length=1, max_length=128)


class UpdateStreamIngestParams(Params):
    SdkAppId: int
    TaskId: str = Field(min_length=1, max_length=128)
    StreamUrl: str | None = None
    Volume: int | None = Field(default=None, ge=0, le=100)
    IsPause: bool | None = None


def _service(ctx: ActionContext) -> IngestService:
    svc: IngestService | None = getattr(ctx.runtime, "ingests", None)
    if svc is None:
        raise TrtcError("InternalError.InternalError", "Stream ingest is not running on this node.")
    return svc


def _room_id(p: StartStreamIngestParams) -> str:
    if p.RoomIdType == 1:
        if not p.RoomId.isascii() or not p.RoomId.isdigit() or not 1 <= int(p.RoomId) <= INT_ROOM_MAX:
            raise TrtcError(
                "InvalidParameter.RoomId",
                f"RoomIdType 1 (integer room) needs a RoomId between 1 and {INT_ROOM_MAX}.",
            )
        return str(int(p.RoomId))
    if len(p.RoomId.encode()) > STR_ROOM_MAX_LEN or any(ord(c) < 32 for c in p.RoomId):
        raise TrtcError(
            "InvalidParameter.StrRoomId", f"RoomId must be 1 to {STR_ROOM_MAX_LEN} bytes of text."
        )
    return p.RoomId


def _encode_params(model: type[_Encode], name: str, data: dict[str, Any] | None) -> Any:
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in err["loc"])
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        raise TrtcError("InvalidParameter.EncodeParams", f"{name}.{where}: {msg}.") from None


def _stream_url(p: StartStreamIngestParams) -> str:
    if p.StreamUrl:
        return p.StreamUrl
    if p.SourceUrl:
        if len(p.SourceUrl) != 1:
            raise TrtcError("InvalidParameter.StreamUrl", "SourceUrl takes one address.")
        return p.SourceUrl[0]
    raise TrtcError("InvalidParameter.StreamUrl", "StreamUrl is required.")


def spec_of(p: StartStreamIngestParams) -> IngestSpec:
    video = _encode_params(VideoEncodeParams, "VideoEncodeParams", p.VideoEncodeParams)
    audio = _encode_params(AudioEncodeParams, "AudioEncodeParams", p.AudioEncodeParams)
    repeats = p.RepeatNum if p.RepeatNum is not None else 1
    return IngestSpec(
        url=_stream_url(p),
        repeats=repeats,
        seek_s=float(p.SeekSecond or 0),
        max_duration_s=p.MaxDuration * 60.0 if p.MaxDuration is not None and repeats == -1 else None,
        volume=p.Volume if p.Volume is not None else 100,
        video=(
            VideoEncoding(
                width=video.Width or None,
                height=video.Height or None,
                fps=video.Fps,
                bitrate_kbps=video.BitRate,
                gop_s=video.Gop,
            )
            if video is not None
            else None
        ),
        audio=(
            AudioEncoding(sample_rate=audio.SampleRate, channels=audio.Channel, bitrate_kbps=audio.BitRate)
            if audio is not None
            else AudioEncoding()
        ),
    )


def _source_error(exc: InvalidArgument | Unavailable) -> TrtcError:
    if isinstance(exc, Unavailable) and exc.subject == "node":  # the room's node did not answer
        return TrtcError("ResourceUnavailable", f"{exc.message}.")
    if isinstance(exc, Unavailable):
        return TrtcError("InvalidParameter.StreamUrl", f"The stream cannot be reached: {exc.message}.")
    if exc.subject == "codec":
        return TrtcError("InvalidParameter.StreamUrl", f"The stream cannot be played: {exc.message}.")
    if exc.subject == "stream_url":
        return TrtcError("InvalidParameter.StreamUrl", f"Invalid StreamUrl: {exc.message}.")
    return TrtcError("InvalidParameter", exc.message)


async def start(ctx: ActionContext, p: StartStreamIngestParams) -> dict[str, Any]:
    app = await ctx.app(p.SdkAppId)
    room_id = _room_id(p)
    spec = spec_of(p)
    if p.AutoPush:
        raise TrtcError(
            "FailedOperation.NotAllowed", "AutoPush (relay to CDN) is not enabled on this server."
        )
    try:
        await JoinAuthenticator(ctx.runtime.tenancy).authenticate(
            p.UserSig, app_id=str(app.sdk_app_id), room_id=room_id, user_id=p.UserId
        )
    except AuthError:
        raise TrtcError("InvalidParameter.UserSig", "UserSig is expired or wrong.") from None
    request = {"params": p.model_dump(exclude_none=True, exclude={"UserSig", "PrivateMapKey"})}
    svc = _service(ctx)
    try:
        task = await svc.start(
            IngestRequest(
                app=app,
                room_id=room_id,
                user_id=p.UserId,
                spec=spec,
                dialect=DIALECT,
                dialect_request=request,
            )
        )
    except (InvalidArgument, Unavailable) as exc:
        raise _source_error(exc) from None
    except AlreadyExists:
        raise TrtcError(
            "FailedOperation.TaskExist", "An ingest task with this UserId runs in the room."
        ) from None
    except FailedPrecondition as exc:
        raise TrtcError("FailedOperation.NotAllowed", f"{exc.message}.") from None
    except LimitExceeded as exc:
        if exc.subject == "room":
            raise TrtcError("ResourceInsufficient.RequestRejection", f"{exc.message}.") from None
        raise TrtcError(
            "FailedOperation.RestrictedConcurrency", "Maximum number of concurrent ingest tasks reached."
        ) from None
    return {"TaskId": task.task_id}


async def _status(ctx: ActionContext, sdk_app_id: int, task_id: str) -> str:
    app = await ctx.app(sdk_app_id)
    try:
        task = await _service(ctx).get(app, task_id)
    except NotFound:
        return NOT_EXIST
    return NOT_EXIST if task.state is TaskState.EXITED else IN_PROGRESS


async def describe(ctx: ActionContext, p: DescribeStreamIngestParams) -> dict[str, Any]:
    return {"Status": await _status(ctx, p.SdkAppId, p.TaskId)}


async def update(ctx: ActionContext, p: UpdateStreamIngestParams) -> dict[str, Any]:
    app = await ctx.app(p.SdkAppId)
    if p.StreamUrl is not None and not p.StreamUrl.strip():
        raise TrtcError("InvalidParameter.StreamUrl", "StreamUrl must not be empty.")
    svc = _service(ctx)
    try:
        task = await svc.get(app, p.TaskId)
        request = dict(task.request)
        params = {
            **request.get("params", {}),
            **p.model_dump(exclude_none=True, include={"StreamUrl", "Volume"}),
        }
        await svc.update(
            app,
            p.TaskId,
            url=p.StreamUrl,
            volume=p.Volume,
            paused=p.IsPause,
            dialect_request={**request, "params": params},
        )
    except NotFound:
        raise TrtcError("FailedOperation.TaskNotExist", "The task does not exist or has ended.") from None
    except (InvalidArgument, Unavailable) as exc:
        raise _source_error(exc) from None
    return {"Status": await _status(ctx, p.SdkAppId, p.TaskId)}


async def stop(ctx: ActionContext, p: StopStreamIngestParams) -> dict[str, Any]:
    app = await ctx.app(p.SdkAppId)
    try:
        await _service(ctx).stop(app, p.TaskId)
    except NotFound:
        raise TrtcError("InvalidParameter.TaskId", "The task does not exist.") from None
    except FailedPrecondition:
        raise TrtcError("FailedOperation.TaskFinished", "The task has already ended.") from None
    return {}


def register(registry: ActionRegistry) -> None:
    for name, model, handler in (
        ("StartStreamIngest", StartStreamIngestParams, start),
        ("DescribeStreamIngest", DescribeStreamIngestParams, describe),
        ("UpdateStreamIngest", UpdateStreamIngestParams, update),
        ("StopStreamIngest", StopStreamIngestParams, stop),
    ):
        registry.add(
            DIALECT, Action(name, model, handler, rate_per_s=20, starts_task=name == "StartStreamIngest")
        )
