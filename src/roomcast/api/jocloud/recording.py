"""JOYY cloud recording methods that use a ``resid``: startrecord, updatemixrecord, queryrecord,
stoprecord. The ``recordid`` is roomcast's task id; the task lives in
:class:`roomcast.services.recordings.RecordingService`.

Codes: an unknown, expired or another app's ``resid`` is 4012, a used one 4011 (one start per
resid; a start that fails gives it back); an unknown, another app's, another room's or ended
``recordid`` is 4013 (so is a second stoprecord, and queryrecord once stopped); a ``resid`` that
did not start that ``recordid`` is 4012; updatemixrecord of a source stream task 4019; a room
without a publisher (or without the ``uid`` of a source stream recording) 4005; a bucket that
refuses the keys or does not exist 2101, one that does not answer 2103.

Files: HLS (``.m3u8`` playlist and ``.ts`` segments, as the seed's example file name shows) under
``<fileprefix>/<recordid>/``: ``<roomid>_mix_<start ms>_<n>`` for a mix, ``<roomid>_<uid>_<start
ms>_<n>`` for a source stream. Encoder settings (size, bitrates) are fixed at start:
updatemixrecord changes the picture only, drawn on the started size.

Users of other rooms: ``input`` entries whose ``roomid`` is another room of the app make the mix
follow that room too (``RecordingSpec.extra_rooms``); only the listed users are seen and heard.
The rooms are fixed at startrecord: an updatemixrecord naming a room startrecord did not is 4016.
"""

from __future__ import annotations

import uuid
from typing import Any

from roomcast.api.jocloud import callbacks
from roomcast.api.jocloud.errors import JoyError
from roomcast.api.jocloud.gateway import JoyContext, JoyGateway
from roomcast.api.jocloud.layouts import check_image_urls, mix_layout_ref
from roomcast.api.jocloud.params import MEDIA_BY_TYPE, Fields, MixParams, mix_params
from roomcast.api.jocloud.storage import storage
from roomcast.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from roomcast.domain.recording import (
    FileNaming,
    OutputFormat,
    RecordingLimits,
    RecordingMode,
    RecordingSpec,
    UserSelection,
)
from roomcast.domain.task import Task, TaskState
from roomcast.services.recordings import RecordingRequest, RecordingService
from roomcast.storage.target import normalize_endpoint

DIALECT = "jocloud"
STREAM_MIXED = 1
STREAM_SOURCE = 2
IDLE_S = 30.0
"""The seed: no stream in the room for 30 s (the default) ends the recording."""
QUERY_STATUS = {TaskState.IDLE: 0, TaskState.RUNNING: 1}


def _service(ctx: JoyContext) -> RecordingService:
    svc = ctx.runtime.recordings
    if svc is None:
        raise JoyError(2104, "cloud recording is not running on this node")
    return svc


def _naming(prefix: str, mixed: bool) -> FileNaming:
    lead = f"{prefix}/" if prefix else ""
    who = "mix" if mixed else "{user_id}"
    return FileNaming(template=f"{lead}{{task_id}}/{{room_id}}_{who}_{{start_ms}}_{{index}}")


async def _publishing(ctx: JoyContext, room_id: str, uid: str | None) -> bool:
    if ctx.runtime.sfu is None:
        return True
    users = await ctx.runtime.rooms.publishing(str(ctx.app.sdk_app_id), room_id)  # on its node
    return bool(users) if uid is None else uid in users


async def _mix(ctx: JoyContext, raw: object, room_id: str, record_media: Any) -> MixParams:
    mix = mix_params(raw, room_id, record_media)
    await check_image_urls(ctx.runtime.url_policy, mix.config)
    return mix


def _sanitized(body: dict[str, Any]) -> dict[str, Any]:
    """The request as stored beside the task: no storage keys."""
    out = dict(body)
    cfg = out.get("storagecfg")
    if isinstance(cfg, dict):
        out["storagecfg"] = {k: v for k, v in cfg.items() if k not in ("accesskey", "secretkey")}
    return out


async def startrecord(ctx: JoyContext, body: dict[str, Any]) -> dict[str, Any]:
    f = Fields(body, "", 2101)
    resid = f.text("resid")
    _appid(f)
    room_id = f.text("roomid")
    record_media = MEDIA_BY_TYPE[f.integer("recordtype", 0, 2, 0)]
    streamtype = f.integer("streamtype", STREAM_MIXED, STREAM_SOURCE)
    callback_url = f.opt_text("callbackurl", 1024)
    where = storage(body.get("storagecfg"))
    mixed = streamtype == STREAM_MIXED
    if mixed:
        if not f.has("mixconfig"):
            raise f.fail("mixconfig", "is required for mixed stream recording")
        mix = await _mix(ctx, body["mixconfig"], room_id, record_media)
        uid = None
        spec = RecordingSpec(
            mode=RecordingMode.MIXED,
            users=mix.users,
            media=mix.media,
            outputs=(OutputFormat.HLS,),
            video=mix.video,
            audio=mix.audio,
            layout=mix_layout_ref(mix.config, room_id=room_id),
            naming=_naming(where.prefix, True),
            limits=RecordingLimits(start_timeout=IDLE_S, idle_timeout=IDLE_S),
            extra_rooms=mix.other_rooms,
        )
    else:
        uid = f.text("uid")
        spec = RecordingSpec(
            mode=RecordingMode.INDIVIDUAL,
            users=UserSelection.same([uid]),
            media=record_media,
            outputs=(OutputFormat.HLS,),
            naming=_naming(where.prefix, False),
            limits=RecordingLimits(start_timeout=IDLE_S, idle_timeout=IDLE_S),
        )
    policy = ctx.runtime.url_policy
    await policy.check(normalize_endpoint(where.endpoint), field="storagecfg.endpoint")
    if callback_url is not None:
        await policy.check(callback_url, field="callbackurl")
    svc = _service(ctx)
    marker = f"starting:{uuid.uuid4().hex}"
    try:
        reservation = await ctx.runtime.reservations.claim(ctx.app.sdk_app_id, resid, marker)
    except NotFound:
        raise JoyError(4012) from None
    except AlreadyExists:
        raise JoyError(4011) from None
    task_id: str | None = None
    try:
        if reservation.room_id is not None and reservation.room_id != room_id:
            raise JoyError(4012, "the resid was applied for another room")
        if not await _publishing(ctx, room_id, uid):
            raise JoyError(4005)
        request = {
            "body": _sanitized(body),
            "resid": resid,
            "callbackurl": callback_url,
            "storage": {"vender": where.vender, "endpoint": where.endpoint, "bucket": where.target.bucket},
            "secret_id": ctx.credentials.secret_id,
            "secret_key": ctx.credentials.secret_key,  # sealed at rest (signs the callbacks)
        }
        req = RecordingRequest(
            app=ctx.app,
            room_id=room_id,
            spec=spec,
            storage=where.target,
            dialect=DIALECT,
            dialect_request=request,
        )
        try:
            task = await svc.create(req)
        except InvalidArgument as exc:
            if exc.subject == "storage":
                raise JoyError(2101, f"storagecfg: {exc.message}") from None
            raise JoyError(
                4004 if exc.subject.startswith(("video", "audio")) else 2101, exc.message
            ) from None
        except Unavailable as exc:
            raise JoyError(2103 if exc.subject == "storage" else 2104, exc.message) from None
        except (LimitExceeded, FailedPrecondition) as exc:
            raise JoyError(4004, exc.message) from None
        task_id = task.task_id
    finally:
        await ctx.runtime.reservations.bind(resid, marker, task_id)
    return {"recordid": task_id}


async def _task(ctx: JoyContext, room_id: str, record_id: str) -> Task:
    """The app's task ``record_id`` in ``room_id``, still recording (else 4013)."""
    try:
        task, _ = await _service(ctx).get(ctx.app, record_id)
    except NotFound:
        raise JoyError(4013) from None
    if task.dialect != DIALECT or task.room_id != room_id or task.state not in QUERY_STATUS:
        raise JoyError(4013)
    return task


def _check_resid(task: Task, resid: str) -> None:
    if task.request.get("resid") != resid:
        raise JoyError(4012, "this resid did not start this recordid")


def _appid(f: Fields) -> None:
    # Required; the gateway already checked that it names the URL's app.
    if not f.has("appid"):
        raise f.fail("appid", "is required")


def _ids(body: dict[str, Any]) -> tuple[Fields, str, str, str]:
    f = Fields(body, "", 2101)
    resid = f.text("resid")
    _appid(f)
    return f, resid, f.text("roomid"), f.text("recordid", 256)


async def updatemixrecord(ctx: JoyContext, body: dict[str, Any]) -> dict[str, Any]:
    f, resid, room_id, record_id = _ids(body)
    if not f.has("mixconfig"):
        raise f.fail("mixconfig", "is required")
    task = await _task(ctx, room_id, record_id)
    _check_resid(task, resid)
    svc = _service(ctx)
    spec = svc.spec_of(task)
    if spec.mode is not RecordingMode.MIXED:
        raise JoyError(4019)
    mix = await _mix(ctx, body["mixconfig"], room_id, spec.media)
    added = sorted(set(mix.other_rooms) - set(spec.extra_rooms))
    if added:
        # the running mix follows the rooms named at startrecord; it cannot join more live
        raise JoyError(4016, f"mixconfig.input names rooms not in the recording: {', '.join(added)}")
    request = {**task.request, "body": {**task.request.get("body", {}), "mixconfig": body["mixconfig"]}}
    try:
        await svc.modify(
            ctx.app,
            record_id,
            users=mix.users,
            layout=mix_layout_ref(mix.config, room_id=room_id),
            dialect_request=request,
        )
    except NotFound:
        raise JoyError(4013) from None
    except InvalidArgument as exc:
        raise JoyError(4016, exc.message) from None
    except Unavailable as exc:
        raise JoyError(4017, exc.message) from None
    return {"recordid": record_id}


async def queryrecord(ctx: JoyContext, body: dict[str, Any]) -> dict[str, Any]:
    """``GET .../queryrecord/{roomid}/{recordid}``."""
    if len(ctx.subpath) != 2 or not all(ctx.subpath):
        raise JoyError(2101, "the path is queryrecord/{roomid}/{recordid}")
    room_id, record_id = ctx.subpath
    task = await _task(ctx, room_id, record_id)
    started = task.started_at
    return {
        "recordid": task.task_id,
        "data": {
            "recordid": task.task_id,
            "appid": ctx.app.sdk_app_id,
            "roomid": task.room_id,
            "status": QUERY_STATUS[task.state],
            "createtime": int(task.created_at.timestamp() * 1000),
            "starttime": int(started.timestamp() * 1000) if started is not None else 0,
        },
    }


async def stoprecord(ctx: JoyContext, body: dict[str, Any]) -> dict[str, Any]:
    _, resid, room_id, record_id = _ids(body)
    task = await _task(ctx, room_id, record_id)
    _check_resid(task, resid)
    try:
        await _service(ctx).stop(ctx.app, record_id)
    except NotFound:
        raise JoyError(4013) from None
    except Unavailable as exc:
        raise JoyError(2104, exc.message) from None
    return {"recordid": record_id}


def register(gateway: JoyGateway) -> None:
    gateway.add("startrecord", startrecord)
    gateway.add("updatemixrecord", updatemixrecord)
    gateway.add("queryrecord", queryrecord)
    gateway.add("stoprecord", stoprecord)


def register_dialect(service: RecordingService) -> None:
    service.register_dialect(DIALECT, callbacks.build)
