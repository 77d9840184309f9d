"""SparkRTC mixed (A16-A19) and individual (A20-A23) stream recording jobs.

A job is a task of :class:`roomcast.services.recordings.RecordingService`; its ``job_id`` is the
task id. Files go to the rule's bucket (``record_param.record_rule_id``), under
``obs_addr.object`` and each format's own ``record_prefix`` (``mp4_config``'s for the MP4 files,
``hls_config``'s for the HLS playlists and slices, ``{record_format}`` being ``MP4`` or ``HLS``),
cut at that format's ``record_cycle``; ``{stream}`` is the job's stream name
(``m_{job_id}_{room_id}``, ``s_{job_id}_{room_id}_{user_id}``) and ``{file_start_time}`` the
file's UTC start, ``YYYYmmddTHHMMSSZ``.

``publish_param.rtmp_urls`` (RTMP push, A16/A20/A23) is not served yet: a request naming push
targets answers 400 ``RTC.00001003 InvalidParameterValue`` naming the field, and starts nothing
(the spec lists no "unsupported" code; an empty list is accepted as no push).

States: INIT (waiting for media), RUNNING, STOPPED (``stop_reason``: ``stopped``, ``idle``,
``room_dismissed``, ``failed``, ``server_restart``). A stopped job answers its last state to
A17/A21 and RTC.00001009 JobDone to A18/A19/A22/A23.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from roomcast.api.sparkrtc import callbacks, publish
from roomcast.api.sparkrtc.apps import _app_ref
from roomcast.api.sparkrtc.errors import SparkError, combination, invalid, missing
from roomcast.api.sparkrtc.gateway import SparkRoute, authenticate, json_body, utc_text
from roomcast.api.sparkrtc.layouts import (
    CUSTOM,
    ENCODE_TEMPLATE_AUDIO_ONLY,
    LAYOUT_TEMPLATES,
    SparkLayoutPane,
    SparkMixLayoutParams,
    check_image_urls,
    encode_template_size,
    mix_layout_ref,
)
from roomcast.domain.errors import LimitExceeded, NotFound, RoomcastError, Unavailable
from roomcast.domain.recording import (
    FileNaming,
    MediaSelection,
    OutputFormat,
    RecordingLimits,
    RecordingMode,
    RecordingSpec,
    StreamSelection,
    UserFilter,
    UserSelection,
    VideoEncoding,
)
from roomcast.domain.task import Task, TaskState
from roomcast.domain.tenancy import App
from roomcast.runtime import Runtime
from roomcast.services.record_rules import RecordRule, RecordRuleService
from roomcast.services.recordings import RecordingRequest, RecordingService

DIALECT = callbacks.DIALECT
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
STATES = {
    TaskState.IDLE: "INIT",
    TaskState.RUNNING: "RUNNING",
    TaskState.STOPPING: "STOPPED",
    TaskState.EXITED: "STOPPED",
}
STREAM_LEVELS: dict[str, tuple[int, int]] = {
    "LD": (90, 270),
    "SD": (180, 600),
    "HD": (360, 1700),
    "FHD": (0, 0),
}
"""``select_stream_type`` -> (largest picture height, kbps when scaled down): the SDK's levels
(LD 160x90, SD 320x180, HD up to 640x360, FHD up to 1280x720 and the 1080p screen share). roomcast
receives one layer per stream: FHD records it as sent; a lower level scales a taller picture
down to the level (re-encoded at the level's top bitrate)."""
LOUDEST_VOICES = 3
"""A16: "the three parties with the loudest voices are dynamically selected" in every mix."""
_TEMPLATE = re.compile(r"^(\d+)[*xX](\d+)_(\d+)_(\d+)$")
Text = Field(default=None, max_length=1024)


class Pane(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int | None = Field(default=None, ge=1, strict=True)
    user_id: str | None = Field(default=None, max_length=128)
    video_type: Literal["CAMERASTREAM", "SCREENSTREAM"] = "CAMERASTREAM"
    x: float | None = Field(default=None, ge=0.0, le=1.0)
    y: float | None = Field(default=None, ge=0.0, le=1.0)
    width: float | None = Field(default=None, ge=0.0, le=1.0)
    height: float | None = Field(default=None, ge=0.0, le=1.0)
    zorder: int | None = Field(default=None, ge=0, le=24, strict=True)
    crop_mode: Literal["KEEP_RATIO_PADDING", "KEEP_RATIO_CROP"] | None = None
    filling_policy: Literal["FIXED_USER", "SHARED_SCREEN"] | None = None


class UserImage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: str = Field(min_length=1, max_length=128)
    image_uri: str = Field(min_length=1, max_length=1024)


class LayoutFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    max_idle_time: int | None = Field(default=None, ge=5, le=43200, strict=True)
    layout_template: str | None = Field(default=None, max_length=64)
    default_user_background_image: str | None = Text
    screen_background_image: str | None = Text
    background_image: str | None = Text
    layout_panes: list[Pane] | None = Field(default=None, max_length=25)
    user_background_images: list[UserImage] | None = Field(default=None, max_length=50)


class MixParam(LayoutFields):
    room_id: str | int = Field(union_mode="left_to_right")
    encode_template: str = Field(min_length=1, max_length=64)


class RecordParam(BaseModel):
    model_config = ConfigDict(extra="ignore")

    record_rule_id: str = Field(min_length=1, max_length=64)


class PublishParam(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rtmp_urls: list[str] = Field(max_length=10)


class MixJobReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mix_param: MixParam
    publish_param: PublishParam | None = None
    record_param: RecordParam | None = None


class UpdateMixJobReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mix_param: LayoutFields


class IndividualJobReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    room_id: str | int = Field(union_mode="left_to_right")
    user_id: str = Field(min_length=1, max_length=128)
    is_record_audio: bool = True
    video_type: Literal["CAMERASTREAM", "SCREENSTREAM"] = "CAMERASTREAM"
    select_stream_type: Literal["LD", "SD", "HD", "FHD"] = "FHD"
    max_idle_time: int = Field(default=30, ge=5, le=43200, strict=True)
    publish_param: PublishParam | None = None
    record_param: RecordParam | None = None


class UpdateIndividualJobReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    publish_param: PublishParam | None = None
    record_param: RecordParam | None = None


# ------------------------------------------------------------------------------ helpers


def _service(rt: Runtime) -> RecordingService:
    if rt.recordings is None:
        raise SparkError(500, "RTC.00002006", "InternalServerError.Live5xxError: recording is not running")
    return rt.recordings


def _now_text() -> str:
    return utc_text(datetime.now(UTC))


def _room(room_id: str | int) -> str:
    room = str(room_id)
    if not room or len(room) > 64 or any(ord(c) < 32 for c in room):
        raise invalid("room_id: 1 to 64 printable characters")
    return room


async def _caller_app(request: Request, app_id: str) -> tuple[Runtime, App]:
    """Authenticate and find the caller's app (another tenant's looks like a missing one)."""
    caller = await authenticate(request, "job")
    rt: Runtime = request.app.state.runtime
    return rt, await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)


async def _active_app(request: Request, app_id: str) -> tuple[Runtime, App]:
    """Like :func:`_caller_app`, refusing a disabled app before anything else is checked."""
    rt, app = await _caller_app(request, app_id)
    if not app.enabled:
        raise SparkError(400, "RTC.00001016", "AppDeactivation: app is stopped")
    return rt, app


async def _rule(rt: Runtime, app: App, param: RecordParam | None) -> RecordRule:
    if param is None:
        raise missing("record_param")
    return await RecordRuleService(rt.db.sessions).get(app.app_id, param.record_rule_id)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


FORMATS = {"MP4": OutputFormat.MP4, "HLS": OutputFormat.HLS}
CONFIGS = {"MP4": "mp4_config", "HLS": "hls_config"}


def _prefix_template(rule: RecordRule, app: App, stream: str, fmt: str) -> str:
    """One format's ``record_prefix`` as an engine naming template, under ``obs_addr.object``."""
    prefix = str(rule.settings[CONFIGS[fmt]]["record_prefix"])
    rendered = prefix.format(
        app_id=_escape(app.app_id),
        app=_escape(app.app_id),
        publish_domain=_escape(app.app_id),
        record_type="record",
        record_format=fmt,
        stream=stream,
        file_start_time="{start_time}",
    )
    lead = _escape(rule.target.prefix.strip("/"))
    return f"{lead}/{rendered}" if lead else rendered


def _naming(rule: RecordRule, app: App, stream: str) -> FileNaming:
    """Each format named by its own ``record_prefix`` (``{record_format}`` is ``MP4`` or ``HLS``)."""
    formats = [f for f in rule.settings["record_formats"] if f in FORMATS]
    templates = {FORMATS[f].value: _prefix_template(rule, app, stream, f) for f in formats}
    return FileNaming(template=templates[FORMATS[formats[0]].value], formats=templates)


def _outputs_and_limits(rule: RecordRule, idle_s: float) -> tuple[tuple[OutputFormat, ...], RecordingLimits]:
    """The rule's formats, each cut at its own ``record_cycle`` (HLS 0: one file per stream)."""
    s = rule.settings
    formats = [f for f in s["record_formats"] if f in FORMATS]
    outputs = tuple(FORMATS[f] for f in formats)
    cycles = {FORMATS[f].value: float(s[CONFIGS[f]]["record_cycle"]) for f in formats}
    limits = RecordingLimits(
        start_timeout=idle_s,
        idle_timeout=idle_s,
        max_file_duration=cycles[outputs[0].value],
        file_durations=cycles,
        hls_segment_duration=float(s["hls_config"]["record_slice_duration"]),
    )
    return outputs, limits


def _rule_info(rule: RecordRule) -> dict[str, Any]:
    addr = rule.settings["obs_addr"]
    return {"location": rule.location, "bucket": addr["bucket"], "object": addr.get("object") or ""}


def _layout_params(fields: dict[str, Any]) -> SparkMixLayoutParams:
    template = fields.get("layout_template")
    if template not in LAYOUT_TEMPLATES:
        raise SparkError(
            400,
            "RTC.00001010",
            f"LayoutTemplateNotExist: layout template not exist under your app ({template})",
        )
    panes = fields.get("layout_panes") or []
    if template == CUSTOM and not panes:
        raise missing("mix_param.layout_panes (the custom template needs panes)")
    return SparkMixLayoutParams(
        layout_template=template,
        layout_panes=tuple(SparkLayoutPane(**p) for p in panes),
        background_image=fields.get("background_image"),
        default_user_background_image=fields.get("default_user_background_image"),
        screen_background_image=fields.get("screen_background_image"),
        user_background_images={
            u["user_id"]: u["image_uri"] for u in fields.get("user_background_images") or []
        },
    )


def _level(select_stream_type: str) -> VideoEncoding:
    height, kbps = STREAM_LEVELS[select_stream_type]
    return VideoEncoding(max_height=height, bitrate_kbps=kbps) if height else VideoEncoding()


def _video(template: str) -> VideoEncoding:
    size = encode_template_size(template)
    m = _TEMPLATE.match(template.strip())
    if size is None or m is None:
        raise invalid("mix_param.encode_template: not a documented template (e.g. 1280x720_15_2260)")
    return VideoEncoding(width=size[0], height=size[1], fps=int(m[3]), bitrate_kbps=int(m[4]))


def _map_start_errors(exc: RoomcastError) -> SparkError | None:
    if isinstance(exc, LimitExceeded):
        return SparkError(400, "RTC.00001007", "JobExceed")
    if isinstance(exc, Unavailable):
        return SparkError(500, "RTC.00002006", f"InternalServerError.Live5xxError: {exc.message}")
    if exc.subject == "storage":
        return SparkError(404, "RTC.00001014", f"BucketNotExist: bucket does not exist ({exc.message})")
    return None


async def _start(svc: RecordingService, req: RecordingRequest) -> Task:
    try:
        return await svc.create(req)
    except RoomcastError as exc:
        mapped = _map_start_errors(exc)
        if mapped is not None:
            raise mapped from None
        raise


def _render(app: App, task: Task) -> dict[str, Any]:
    r = task.request
    stopped = task.state in (TaskState.STOPPING, TaskState.EXITED)
    out: dict[str, Any] = {
        "job_id": task.task_id,
        "stream_name": callbacks.stream_name(task),
        "app_id": app.app_id,
        "room_id": task.room_id,
    }
    out.update(r.get("echo", {}))
    state = STATES[task.state]
    out.update(
        {
            "record_param": r.get("record_param"),
            "create_time": utc_text(task.created_at),
            "update_time": r.get("update_time") or utc_text(task.created_at),
            "state": state,
            "stop_reason": (task.reason or "") if stopped else "",
            "description": {
                "INIT": "waiting for the media of the room",
                "RUNNING": "recording",
                "STOPPED": f"stopped: {task.reason or 'stopped'}"
                + (f" ({task.error})" if task.error else ""),
            }[state],
            "start_time": utc_text(task.started_at or task.created_at),
            "stop_time": utc_text(task.ended_at) if task.ended_at is not None else GO_ZERO_TIME,
        }
    )
    return out


async def _job(rt: Runtime, app: App, job_id: str, kind: str) -> Task:
    if not JOB_ID.match(job_id):
        raise _job_missing()
    try:
        task = await _service(rt).tasks.get(app.sdk_app_id, job_id)
    except NotFound:
        raise _job_missing() from None
    if task.dialect != DIALECT or task.request.get("job") != kind:
        raise _job_missing()
    return task


def _job_missing() -> SparkError:
    return SparkError(404, "RTC.00001008", "JobNotExist: job does not exist")


def _job_done(task: Task) -> None:
    if task.state in (TaskState.STOPPING, TaskState.EXITED):
        raise SparkError(400, "RTC.00001009", "JobDone: task canceled or completed")


async def _refuse_duplicate(svc: RecordingService, app: App, room: str, match: dict[str, Any]) -> None:
    for other in await svc.tasks.active_in_room(app.sdk_app_id, room):
        if other.dialect == DIALECT and all(other.request.get(k) == v for k, v in match.items()):
            raise SparkError(400, "RTC.00001006", f"JobRunning: job exists and is not over ({other.task_id})")


async def _stop(rt: Runtime, app: App, job_id: str, kind: str) -> Response:
    task = await _job(rt, app, job_id, kind)
    _job_done(task)
    await publish.stop(rt, app, task)
    try:
        await _service(rt).stop(app, task.task_id)
    except NotFound:
        raise SparkError(400, "RTC.00001009", "JobDone: task canceled or completed") from None
    except Unavailable as exc:
        raise SparkError(500, "RTC.00002006", f"InternalServerError.Live5xxError: {exc.message}") from None
    return Response(status_code=204)


# ------------------------------------------------------------------------------ routes


def build_router() -> APIRouter:
    router = APIRouter(route_class=SparkRoute, tags=["sparkrtc"])

    @router.post("/v2/apps/{app_id}/mix-stream-jobs", status_code=201)
    async def start_mix_job(request: Request, app_id: str) -> Response:
        rt, app = await _active_app(request, app_id)
        req = await json_body(request, MixJobReq)
        mp = req.mix_param
        room = _room(mp.room_id)
        urls = await publish.check_urls(rt, req.publish_param.rtmp_urls if req.publish_param else None)
        fields = mp.model_dump(exclude_none=True)
        fields["room_id"] = room
        audio_only = mp.encode_template == ENCODE_TEMPLATE_AUDIO_ONLY
        params: SparkMixLayoutParams | None = None
        if audio_only:
            if mp.layout_template or mp.layout_panes:
                raise combination("audio_only mixes take no layout_template or layout_panes")
            video = VideoEncoding()
        else:
            video = _video(mp.encode_template)
            if mp.layout_template is None:
                raise missing("mix_param.layout_template")
            params = _layout_params(fields)
        rule = await _rule(rt, app, req.record_param)
        layout = None
        if params is not None:
            await check_image_urls(rt.url_policy, params, rule.target.bucket)
            layout = mix_layout_ref(params)
        svc = _service(rt)
        await _refuse_duplicate(svc, app, room, {"job": "mix"})
        idle = float(mp.max_idle_time or 30)
        outputs, limits = _outputs_and_limits(rule, idle)
        spec = RecordingSpec(
            mode=RecordingMode.MIXED,
            media=MediaSelection.AUDIO_ONLY if audio_only else MediaSelection.AUDIO_VIDEO,
            outputs=outputs,
            video=video,
            layout=layout,
            naming=_naming(rule, app, "m_{task_id}_{room_id}"),
            limits=limits,
            max_audio_sources=LOUDEST_VOICES,
        )
        fields.setdefault("max_idle_time", 30)
        dialect_request = {
            "job": "mix",
            "echo": {"mix_param": fields},
            "record_param": {"record_rule_id": rule.rule_id},
            "rule": _rule_info(rule),
        }
        task = await _start(
            svc,
            RecordingRequest(
                app=app,
                room_id=room,
                spec=spec,
                storage=rule.target.with_prefix(""),
                dialect=DIALECT,
                dialect_request=dialect_request,
            ),
        )
        if urls:
            task = await publish.start(rt, app, task, publish.mix_relay(spec, urls))
        return JSONResponse(_render(app, task), status_code=201)

    @router.get("/v2/apps/{app_id}/mix-stream-jobs/{job_id}")
    async def show_mix_job(request: Request, app_id: str, job_id: str) -> Response:
        rt, app = await _caller_app(request, app_id)
        return JSONResponse(_render(app, await _job(rt, app, job_id, "mix")))

    @router.put("/v2/apps/{app_id}/mix-stream-jobs/{job_id}")
    async def update_mix_job(request: Request, app_id: str, job_id: str) -> Response:
        rt, app = await _active_app(request, app_id)
        req = await json_body(request, UpdateMixJobReq)
        task = await _job(rt, app, job_id, "mix")
        _job_done(task)
        if task.state is TaskState.IDLE:
            raise SparkError(400, "RTC.00001022", "job is not initialized")
        current: dict[str, Any] = dict(task.request.get("echo", {}).get("mix_param", {}))
        if current.get("encode_template") == ENCODE_TEMPLATE_AUDIO_ONLY:
            raise combination("an audio_only mix has no layout to update")
        change = req.mix_param.model_dump(exclude_none=True)
        if "max_idle_time" in change and change["max_idle_time"] != current.get("max_idle_time"):
            raise combination("max_idle_time cannot change while the job runs")
        merged = {**current, **change}
        params = _layout_params(merged)
        await check_image_urls(rt.url_policy, params, str(task.request.get("rule", {}).get("bucket", "")))
        request_after = {**task.request, "echo": {"mix_param": merged}, "update_time": _now_text()}
        svc = _service(rt)
        try:
            await svc.modify(app, task.task_id, layout=mix_layout_ref(params), dialect_request=request_after)
            await publish.update_layout(rt, app, task, mix_layout_ref(params))
        except NotFound:
            raise SparkError(400, "RTC.00001009", "JobDone: task canceled or completed") from None
        except Unavailable as exc:
            raise SparkError(
                500, "RTC.00002006", f"InternalServerError.Live5xxError: {exc.message}"
            ) from None
        return JSONResponse(_render(app, await svc.tasks.get(app.sdk_app_id, task.task_id)))

    @router.delete("/v2/apps/{app_id}/mix-stream-jobs/{job_id}", status_code=204)
    async def stop_mix_job(request: Request, app_id: str, job_id: str) -> Response:
        rt, app = await _caller_app(request, app_id)
        return await _stop(rt, app, job_id, "mix")

    @router.post("/v2/apps/{app_id}/individual-stream-jobs", status_code=201)
    async def start_individual_job(request: Request, app_id: str) -> Response:
        rt, app = await _active_app(request, app_id)
        req = await json_body(request, IndividualJobReq)
        room = _room(req.room_id)
        urls = await publish.check_urls(rt, req.publish_param.rtmp_urls if req.publish_param else None)
        rule = await _rule(rt, app, req.record_param)
        svc = _service(rt)
        await _refuse_duplicate(
            svc, app, room, {"job": "individual", "user_id": req.user_id, "video_type": req.video_type}
        )
        task = await start_individual(svc, app, room, req, rule)
        if urls:
            screen = req.video_type == "SCREENSTREAM"
            relay = publish.single_relay(svc.spec_of(task), req.user_id, screen, urls)
            task = await publish.start(rt, app, task, relay)
        return JSONResponse(_render(app, task), status_code=201)

    @router.get("/v2/apps/{app_id}/individual-stream-jobs/{job_id}")
    async def show_individual_job(request: Request, app_id: str, job_id: str) -> Response:
        rt, app = await _caller_app(request, app_id)
        return JSONResponse(_render(app, await _job(rt, app, job_id, "individual")))

    @router.put("/v2/apps/{app_id}/individual-stream-jobs/{job_id}")
    async def update_individual_job(request: Request, app_id: str, job_id: str) -> Response:
        rt, app = await _active_app(request, app_id)
        req = await json_body(request, UpdateIndividualJobReq)
        task = await _job(rt, app, job_id, "individual")
        _job_done(task)
        current = task.request.get("record_param", {}).get("record_rule_id")
        if req.record_param is not None and req.record_param.record_rule_id != current:
            raise combination("record_param cannot change while the job runs (rules apply to new jobs)")
        if req.publish_param is not None:
            urls = await publish.check_urls(rt, req.publish_param.rtmp_urls)
            svc = _service(rt)
            screen = task.request.get("video_type") == "SCREENSTREAM"
            relay = publish.single_relay(svc.spec_of(task), str(task.request.get("user_id")), screen, urls)
            after = await publish.update_urls(rt, app, task, urls, relay)
            await svc.tasks.update_spec(task.task_id, task.spec, after)
            task = await svc.tasks.get(app.sdk_app_id, task.task_id)
        return JSONResponse(_render(app, task))

    @router.delete("/v2/apps/{app_id}/individual-stream-jobs/{job_id}", status_code=204)
    async def stop_individual_job(request: Request, app_id: str, job_id: str) -> Response:
        rt, app = await _caller_app(request, app_id)
        return await _stop(rt, app, job_id, "individual")

    return router


async def start_individual(
    svc: RecordingService,
    app: App,
    room: str,
    req: IndividualJobReq,
    rule: RecordRule,
    auto: str | None = None,
) -> Task:
    """Start an individual job: A20's, or an automatic recording (``auto`` is the stream name's
    ``{media_type}_{video_type}`` tail, the name ``{appid}_{roomid}_{userid}_{auto}``)."""
    only = UserFilter(allow=frozenset({req.user_id}))
    camera = req.video_type == "CAMERASTREAM"
    outputs, limits = _outputs_and_limits(rule, float(req.max_idle_time))
    name = (
        f"{_escape(app.app_id)}_{{room_id}}_{{user_id}}_{auto}" if auto else "s_{task_id}_{room_id}_{user_id}"
    )
    spec = RecordingSpec(
        mode=RecordingMode.INDIVIDUAL,
        users=UserSelection(audio=only, video=only),
        streams=StreamSelection(audio=req.is_record_audio, camera=camera, screen=not camera),
        media=MediaSelection.AUDIO_VIDEO if req.is_record_audio else MediaSelection.VIDEO_ONLY,
        outputs=outputs,
        video=_level(req.select_stream_type),
        naming=_naming(rule, app, name),
        limits=limits,
    )
    echo = req.model_dump(exclude={"record_param", "publish_param", "room_id"})
    dialect_request: dict[str, Any] = {
        "job": "individual",
        "user_id": req.user_id,
        "video_type": req.video_type,
        "echo": echo,
        "record_param": {"record_rule_id": rule.rule_id},
        "rule": _rule_info(rule),
    }
    if auto:
        dialect_request["stream_name"] = f"{app.app_id}_{room}_{req.user_id}_{auto}"
    return await _start(
        svc,
        RecordingRequest(
            app=app,
            room_id=room,
            spec=spec,
            storage=rule.target.with_prefix(""),
            dialect=DIALECT,
            dialect_request=dialect_request,
        ),
    )


def register_dialect(service: RecordingService) -> None:
    service.register_dialect(DIALECT, callbacks.build)
