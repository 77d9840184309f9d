"""SparkRTC ``publish_param.rtmp_urls`` of mix and individual jobs: the job's stream pushed to RTMP.

A SparkRTC job is a recording task; its RTMP push is a companion relay task
(:class:`roomcast.services.relays.RelayService`) started with it from the same layout and
encoding (mix jobs: the mix; individual jobs: the user's stream, H.264 copied and audio to AAC).
The relay's task id is kept in the job's dialect request (``relay_task_id``); stopping the job
stops the relay, a mix layout update changes both, and an individual job's update may change the
URL list.  The relay ends by itself with the job's idle time, like the recording.

Choices: each URL must be ``rtmp://`` or ``rtmps://`` with an application and stream name, to a
host the node's URL policy allows (``RTC.00001003`` naming ``publish_param.rtmp_urls.N``); a job
whose push cannot start is refused and its recording stopped, so the caller never gets a job
that silently does not push.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from roomcast.api.sparkrtc.errors import SparkError, invalid
from roomcast.domain.errors import InvalidArgument, LimitExceeded, NotFound, RoomcastError, Unavailable
from roomcast.domain.recording import LayoutRef, OutputFormat, RecordingMode, RecordingSpec, VideoEncoding
from roomcast.domain.relay import RelaySource, RelaySpec, SingleStream
from roomcast.domain.task import Task, TaskState
from roomcast.domain.tenancy import App
from roomcast.net.stream_urls import check_stream_url
from roomcast.runtime import Runtime
from roomcast.services.relays import RelayRequest, RelayService

DIALECT = "sparkrtc"


def _relays(rt: Runtime) -> RelayService:
    if rt.relays is None:
        raise SparkError(500, "RTC.00002006", "InternalServerError.Live5xxError: relaying is not running")
    return rt.relays


async def check_urls(rt: Runtime, urls: list[str] | None) -> tuple[str, ...]:
    """The job's RTMP URLs, checked (empty: no push)."""
    out: list[str] = []
    for i, url in enumerate(urls or ()):
        try:
            await check_stream_url(rt.url_policy, url, field=f"publish_param.rtmp_urls.{i}")
        except InvalidArgument as exc:
            raise invalid(exc.message) from None
        out.append(url)
    if len(set(out)) != len(out):
        raise invalid("publish_param.rtmp_urls: URLs repeat")
    return tuple(out)


def mix_relay(spec: RecordingSpec, urls: tuple[str, ...]) -> RelaySpec:
    return RelaySpec(
        source=RelaySource.MIX,
        mix=replace(spec, outputs=(OutputFormat.MP4,)),
        outputs=urls,
        max_idle_s=max(5.0, spec.limits.idle_timeout),
    )


def single_relay(spec: RecordingSpec, user_id: str, screen: bool, urls: tuple[str, ...]) -> RelaySpec:
    """The push of an individual job: the user's stream copied (the canvas size is unused)."""
    return RelaySpec(
        source=RelaySource.SINGLE,
        mix=RecordingSpec(
            mode=RecordingMode.MIXED, media=spec.media, audio=spec.audio, video=VideoEncoding(640, 360)
        ),
        single=SingleStream(user_id, None, "screen" if screen else "camera"),
        outputs=urls,
        max_idle_s=max(5.0, spec.limits.idle_timeout),
    )


def _relay_error(exc: RoomcastError) -> SparkError:
    if isinstance(exc, LimitExceeded):
        return SparkError(400, "RTC.00001007", "JobExceed")
    if isinstance(exc, InvalidArgument):
        return invalid(f"publish_param: {exc.message}")
    return SparkError(500, "RTC.00002006", f"InternalServerError.Live5xxError: {exc.message}")


async def start(rt: Runtime, app: App, job: Task, relay: RelaySpec) -> Task:
    """Start the job's push; on failure the job's recording is stopped and the error raised."""
    try:
        relay_task = await _relays(rt).create(
            RelayRequest(
                app=app,
                room_id=job.room_id,
                spec=relay,
                dialect=DIALECT,
                dialect_request={"job_id": job.task_id},
            )
        )
    except RoomcastError as exc:
        if rt.recordings is not None:
            with contextlib.suppress(RoomcastError):
                await rt.recordings.stop(app, job.task_id)
        raise _relay_error(exc) from None
    request = {
        **job.request,
        "relay_task_id": relay_task.task_id,
        "publish_param": {"rtmp_urls": list(relay.outputs)},
    }
    echo = {**request.get("echo", {}), "publish_param": {"rtmp_urls": list(relay.outputs)}}
    request["echo"] = echo
    assert rt.recordings is not None
    await rt.recordings.tasks.update_spec(job.task_id, job.spec, request)
    return await rt.recordings.tasks.get(app.sdk_app_id, job.task_id)


async def _live_relay(rt: Runtime, app: App, job: Task) -> Task | None:
    relay_id = job.request.get("relay_task_id")
    if not isinstance(relay_id, str) or rt.relays is None:
        return None
    try:
        task = await rt.relays.get(app, relay_id)
    except NotFound:
        return None
    return None if task.state in (TaskState.STOPPING, TaskState.EXITED) else task


async def stop(rt: Runtime, app: App, job: Task) -> None:
    """Stop the job's push (nothing when it has none or it ended)."""
    relay = await _live_relay(rt, app, job)
    if relay is not None:
        with contextlib.suppress(NotFound, Unavailable):
            await _relays(rt).stop(app, relay.task_id)


async def update_layout(rt: Runtime, app: App, job: Task, layout: LayoutRef) -> None:
    """A mix job's new layout, applied to its push too."""
    relay = await _live_relay(rt, app, job)
    if relay is None:
        return
    svc = _relays(rt)
    spec = svc.spec_of(relay)
    with contextlib.suppress(NotFound, Unavailable):
        await svc.update(app, relay.task_id, replace(spec, mix=replace(spec.mix, layout=layout)))


async def update_urls(
    rt: Runtime, app: App, job: Task, urls: tuple[str, ...], relay: RelaySpec
) -> dict[str, Any]:
    """An individual job's new URL list: the running push changes its destinations (a job
    without one starts pushing; an empty list stops it).  Returns the job's request after."""
    current = await _live_relay(rt, app, job)
    svc = _relays(rt)
    if current is not None and not urls:
        await stop(rt, app, job)
    elif current is not None:
        spec = svc.spec_of(current)
        try:
            await svc.update(app, current.task_id, replace(spec, outputs=urls))
        except RoomcastError as exc:
            raise _relay_error(exc) from None
    elif urls:
        job = await start(rt, app, job, replace(relay, outputs=urls))
    request = {**job.request, "publish_param": {"rtmp_urls": list(urls)}}
    request["echo"] = {**request.get("echo", {}), "publish_param": {"rtmp_urls": list(urls)}}
    return request
