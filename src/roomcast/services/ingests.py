"""Stream ingest tasks: pull a media URL into a room as a user, durably.

A task row (kind ``ingest``) holds the normalized :class:`IngestSpec`; the dialect's request is
kept beside it. Start checks the URL (:mod:`roomcast.net.urls`), opens the source once to learn
that it plays, records the task and starts an :class:`IngestJob` on this node; the task is
``running`` once the user is in the room. Update rewrites the spec (so a restart or a take-over
plays the current URL, volume and pause state) and turns the running job's knobs. The task ends
(``exited``, with a reason) when the media ends after its repeats, at its maximum duration, on
Stop, when the user is removed or replaced or the room dismissed, or when the source keeps
failing; the same transaction writes its usage row (:class:`IngestUsageRow`).

Restarts and take-over: tasks of a node that is gone (a restart is the same case) are claimed by
another node, which joins the room again and plays a file from where it was (the job saves its
position every :data:`FOLLOW_S` seconds), a live stream from its live edge; the maximum duration
keeps counting from the task's first start. Any node answers Update and
Stop: a running job reads its task row every :data:`FOLLOW_S` seconds and follows a new spec, an
end, or a move to another node.

Several nodes (:class:`TaskNodes`, as for recordings): the ingest user is an in-process participant,
so a job runs on the node serving its room. Start through another node probes the source there
and asks the room's node to start the task (``ingests.start``; the room is placed on the node
asked first if nobody serves it); Update and Stop go to the task's node (falling back to the task
row, which the job follows, if that node does not answer); a task taken over from a dead node is
handed to the node serving its room (``ingests.adopt``), or placed on the taking node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError

from roomcast.background import Background
from roomcast.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from roomcast.domain.ingest import FOREVER, IngestSpec, spec_from_json, spec_to_json, updated, validate
from roomcast.domain.task import Task, TaskState
from roomcast.domain.tenancy import App
from roomcast.log import event
from roomcast.media.ingest import Probe, SourceError, probe
from roomcast.media.ingest_job import IngestJob, JobEnd
from roomcast.net.urls import MEDIA_SCHEMES, UnresolvedHost, UrlPolicy, UrlRefused
from roomcast.rtc.room import RoomManager
from roomcast.services.task_nodes import call_owner, hand_over
from roomcast.services.tasks import TaskNodes, TaskService
from roomcast.store.tables import IngestProgressRow, IngestUsageRow, utcnow

log = logging.getLogger("roomcast.ingests")

KIND = "ingest"
PROBE_TIMEOUT_S = 8.0
FOLLOW_S = 2.0  # how often a running job reads its task row (updates and stops from other nodes)
STOP_WAIT_S = 10.0

# Job end -> the task's end reason.
_REASONS = {
    "completed": "completed",
    "max_duration": "max_duration",
    "stopped": "stopped",
    "failed": "failed",
    "removed": "removed",
    "replaced": "replaced",
    "dismissed": "room_dismissed",
    "moved": "removed",  # one node: the room closed under the user
}


@dataclass(frozen=True)
class IngestRequest:
    app: App
    room_id: str
    user_id: str
    spec: IngestSpec
    dialect: str
    dialect_request: dict[str, Any]  # the dialect's own request, for its answers (no UserSig)


@dataclass
class _Run:
    task_id: str
    job: IngestJob
    spec: IngestSpec  # what the job plays now
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # spec changes, local or polled
    runner: asyncio.Task[Any] | None = None
    stop_reason: str | None = None  # set by Stop: the task ends with it whatever the job says
    abandoned: bool = False  # another node owns the task now: end the job, not the task
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class IngestService:
    def __init__(
        self,
        tasks: TaskService,
        sfu: RoomManager,
        url_policy: UrlPolicy,
        *,
        node_id: str | None,
        max_tasks: int = 20,
        retries: int = 3,
        nodes: TaskNodes | None = None,
        apps: Callable[[int], Awaitable[App]] | None = None,
    ) -> None:
        self.tasks = tasks
        self.sfu = sfu
        self.url_policy = url_policy
        self.node_id = node_id
        self.max_tasks = max_tasks
        self.retries = retries
        self.nodes = nodes
        self.apps = apps
        self._runs: dict[str, _Run] = {}
        self._resuming: set[str] = set()  # adopted tasks whose job is being started
        self._background = Background("ingest")
        self._shutting_down = False

    # ------------------------------------------------------------- checks

    async def check_url(self, url: str) -> None:
        """The URL rules for tenant URLs (schemes http, https, rtmp, rtmps)."""
        try:
            await self.url_policy.resolve(url, MEDIA_SCHEMES)
        except UnresolvedHost:
            return  # not now: opening the source fails, and that is retried (or reported)
        except UrlRefused as exc:
            raise InvalidArgument(f"stream URL: {exc}", subject="stream_url") from None

    async def probe(self, url: str) -> Probe:
        """Open the source once: unreachable is :class:`Unavailable`, unplayable is
        :class:`InvalidArgument` (subject ``codec``)."""
        await self.check_url(url)
        try:
            return await asyncio.to_thread(probe, url, PROBE_TIMEOUT_S)
        except SourceError as exc:
            if exc.permanent:
                raise InvalidArgument(str(exc), subject="codec") from None
            raise Unavailable(str(exc), subject="stream_url") from None

    # -------------------------------------------------------------- calls

    async def start(self, req: IngestRequest) -> Task:
        validate(req.spec)
        sdk_app_id, room_id = req.app.sdk_app_id, req.room_id
        if self.nodes is None:
            return await self._start_here(req, None)
        await self._check_unique(sdk_app_id, room_id, req.user_id)
        # Probed before the room is placed: the user joins right after placement.
        source = await self.probe(req.spec.url)
        owner = await self.nodes.room_node(str(sdk_app_id), room_id)
        if owner is None:
            return await self._start_here(req, _media(source))
        task_id = await self.nodes.call(
            owner,
            "ingests.start",
            {
                "sdk_app_id": sdk_app_id,
                "room_id": room_id,
                "user_id": req.user_id,
                "spec": spec_to_json(req.spec),
                "dialect": req.dialect,
                "dialect_request": req.dialect_request,
                "media": list(_media(source)),
            },
        )
        event(log, "ingest.started_on", task_id=task_id, node_id=owner)
        return await self.tasks.get(sdk_app_id, str(task_id))

    async def _check_unique(self, sdk_app_id: int, room_id: str, user_id: str) -> None:
        for t in await self.tasks.active_in_room(sdk_app_id, room_id):
            if t.kind == KIND and t.robot_user_id == user_id:
                raise AlreadyExists("an ingest task with this user runs in the room", subject="task")

    async def _start_here(self, req: IngestRequest, media: tuple[str, ...] | None) -> Task:
        """Start the task on this node (``media``: the probed source's, or probe it here)."""
        sdk_app_id, room_id, user_id = req.app.sdk_app_id, req.room_id, req.user_id
        await self._check_unique(sdk_app_id, room_id, user_id)
        room = self.sfu.get_room(str(sdk_app_id), room_id)
        if room is not None and user_id in room.participants:
            raise FailedPrecondition(f"user {user_id} is already in the room", subject="user")
        if len(self._runs) >= self.max_tasks:
            raise LimitExceeded(f"at most {self.max_tasks} ingest tasks per node", subject="ingest")
        if media is None:
            media = _media(await self.probe(req.spec.url))
        task = await self.tasks.create(
            sdk_app_id=sdk_app_id,
            kind=KIND,
            dialect=req.dialect,
            room_id=room_id,
            spec=spec_to_json(req.spec),
            request=req.dialect_request,
            target=None,
            node_id=self.node_id,
            robot_user_id=user_id,
        )
        run = self._launch(task, req.spec, elapsed_s=0.0, media=media)
        await self._wait_joined(run)
        if not run.job.joined.is_set():
            ended = await self.tasks.get(sdk_app_id, task.task_id)
            raise LimitExceeded(f"the user could not join the room ({ended.error})", subject="room")
        await self.tasks.set_state(task.task_id, TaskState.RUNNING)  # the job's own change may lag
        event(
            log,
            "ingest.started",
            task_id=task.task_id,
            sdk_app_id=sdk_app_id,
            room_id=room_id,
            user_id=user_id,
        )
        return await self.tasks.get(sdk_app_id, task.task_id)

    async def get(self, app: App, task_id: str) -> Task:
        task = await self.tasks.get(app.sdk_app_id, task_id)
        if task.kind != KIND:
            raise NotFound("task does not exist", subject="task")
        return task

    async def update(
        self,
        app: App,
        task_id: str,
        *,
        url: str | None = None,
        volume: int | None = None,
        paused: bool | None = None,
        dialect_request: dict[str, Any] | None = None,
        probed: bool = False,
    ) -> Task:
        task = await self.get(app, task_id)
        if task.state is TaskState.EXITED:
            raise NotFound("the task has ended", subject="task")
        if url is not None and not probed:
            await self.probe(url)
        if (owner := self._elsewhere(task)) is not None:
            params = {"url": url, "volume": volume, "paused": paused, "dialect_request": dialect_request}
            if await self._call_owner(owner, "ingests.update", task, params):
                return await self.get(app, task_id)
        spec = updated(spec_from_json(task.spec), url=url, volume=volume, paused=paused)
        run = self._runs.get(task_id)
        if run is None:
            # Run by another node (or not at the moment): its job picks the spec up (_follow).
            await self.tasks.update_spec(task_id, spec_to_json(spec), dialect_request or task.request)
        else:
            async with run.lock:
                await self.tasks.update_spec(task_id, spec_to_json(spec), dialect_request or task.request)
                self._apply(run, spec)
        event(
            log, "ingest.updated", task_id=task_id, url_changed=url is not None, volume=volume, paused=paused
        )
        return await self.get(app, task_id)

    async def stop(self, app: App, task_id: str) -> Task:
        """End the task: the user leaves the room. An ended task is :class:`FailedPrecondition`."""
        task = await self.get(app, task_id)
        if task.state is TaskState.EXITED:
            raise FailedPrecondition("the task has ended", subject="task_finished")
        if (owner := self._elsewhere(task)) is not None and await self._call_owner(
            owner, "ingests.stop", task, {}
        ):
            return await self.get(app, task_id)
        run = self._runs.get(task_id)
        if run is not None:
            run.stop_reason = "stopped"
            run.job.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.ended.wait(), STOP_WAIT_S)
        else:
            # Its job is not on this node (or no longer runs anywhere): end the record.
            await self._finish(task, JobEnd("stopped"), video_mode=None, size=(None, None))
        return await self.get(app, task_id)

    # -------------------------------------------------------- other nodes

    def _elsewhere(self, task: Task) -> str | None:
        """The other node running ``task`` (several nodes), or None."""
        if self.nodes is None or task.node_id in (None, self.node_id) or task.task_id in self._runs:
            return None
        return task.node_id

    async def _call_owner(self, owner: str, method: str, task: Task, params: dict[str, Any]) -> bool:
        assert self.nodes is not None
        return await call_owner(self.nodes, owner, method, task, params, log)

    def calls(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
        """What other nodes may ask of this one (cluster RPC methods)."""

        async def start(p: dict[str, Any]) -> str:
            req = IngestRequest(
                app=await self._app(int(p["sdk_app_id"])),
                room_id=str(p["room_id"]),
                user_id=str(p["user_id"]),
                spec=spec_from_json(dict(p["spec"])),
                dialect=str(p["dialect"]),
                dialect_request=dict(p.get("dialect_request") or {}),
            )
            media = tuple(str(m) for m in p.get("media") or ()) or ("audio", "video")
            return (await self._start_here(req, media)).task_id

        async def adopt(p: dict[str, Any]) -> None:
            await self.adopt(str(p["task_id"]))

        async def update(p: dict[str, Any]) -> None:
            await self.update(
                await self._app(int(p["sdk_app_id"])),
                str(p["task_id"]),
                url=p.get("url"),
                volume=p.get("volume"),
                paused=p.get("paused"),
                dialect_request=p.get("dialect_request"),
                probed=True,  # by the node that was asked
            )

        async def stop(p: dict[str, Any]) -> None:
            await self.stop(await self._app(int(p["sdk_app_id"])), str(p["task_id"]))

        return {
            "ingests.start": start,
            "ingests.adopt": adopt,
            "ingests.update": update,
            "ingests.stop": stop,
        }

    async def _app(self, sdk_app_id: int) -> App:
        assert self.apps is not None, "several nodes need the app lookup"
        return await self.apps(sdk_app_id)

    async def adopt(self, task_id: str) -> None:
        """Run a task another node gave this one (the room is served here); its job starts in the
        background (the source is probed first), so the call answers at once."""
        task = await self.tasks.by_id(task_id)
        if (
            task is None
            or task.kind != KIND
            or task.node_id != self.node_id
            or task.state is TaskState.EXITED
            or task_id in self._runs
            or task_id in self._resuming
            or self._shutting_down
        ):
            raise FailedPrecondition("the task cannot be run on this node", subject="task")
        self._resuming.add(task_id)
        self._background.spawn(f"adopt {task_id[:12]}", self._resume(task, None))

    async def _hand_over(self, task: Task) -> bool:
        assert self.nodes is not None and self.node_id is not None
        return await hand_over(self.tasks, self.nodes, self.node_id, task, "ingests.adopt", log)

    # ------------------------------------------------------------ the jobs

    def _launch(
        self,
        task: Task,
        spec: IngestSpec,
        *,
        elapsed_s: float,
        media: tuple[str, ...],
        play: IngestSpec | None = None,
    ) -> _Run:
        """Start the task's job; ``play`` (default ``spec``) is where it starts playing."""
        assert task.robot_user_id is not None
        job = IngestJob(
            self.sfu,
            str(task.sdk_app_id),
            task.room_id,
            task.robot_user_id,
            play or spec,
            check_url=self.check_url,
            retries=self.retries,
            elapsed_s=elapsed_s,
            media=media,
        )
        run = _Run(task.task_id, job, spec)
        self._runs[task.task_id] = run
        run.runner = self._background.spawn(f"job {task.task_id[:12]}", self._drive(task, run))
        return run

    async def _wait_joined(self, run: _Run) -> None:
        joined = asyncio.ensure_future(run.job.joined.wait())
        ended = asyncio.ensure_future(run.ended.wait())
        try:
            await asyncio.wait([joined, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            joined.cancel()
            ended.cancel()

    @staticmethod
    def _apply(run: _Run, spec: IngestSpec) -> None:
        """Turn the running job's knobs to ``spec`` (what differs from what it plays)."""
        old, run.spec = run.spec, spec
        if spec.volume != old.volume:
            run.job.set_volume(spec.volume)
        if spec.paused != old.paused:
            run.job.set_paused(spec.paused)
        if spec.url != old.url:
            run.job.switch(spec.url)

    async def _resume_point(self, task_id: str, spec: IngestSpec) -> IngestSpec:
        """``spec`` from where its file was when the task's last job stopped."""
        async with self.tasks.sessions() as s:
            row = await s.get(IngestProgressRow, task_id)
        if row is None or row.url != spec.url:
            return spec
        repeats = spec.repeats if spec.repeats == FOREVER else max(1, spec.repeats - row.plays_done)
        return replace(spec, seek_s=max(0.0, row.position_s), repeats=repeats)

    async def _save_progress(self, run: _Run) -> None:
        pipe = run.job.pipeline
        if pipe is None or pipe.live:
            return
        async with self.tasks.sessions.begin() as s:
            await s.merge(
                IngestProgressRow(
                    task_id=run.task_id,
                    url=pipe.url,
                    position_s=pipe.position_s,
                    plays_done=pipe.plays_done,
                    updated_at=utcnow(),
                )
            )

    async def _follow(self, run: _Run) -> None:
        """Apply what other nodes do to the task: an update (new spec), a stop (the task has
        exited) or a take-over (another node owns it now)."""
        while True:
            await asyncio.sleep(FOLLOW_S)
            try:
                async with run.lock:
                    task = await self.tasks.by_id(run.task_id)
                    if task is None or task.state is TaskState.EXITED:
                        run.stop_reason = run.stop_reason or (task.reason if task else None) or "stopped"
                        run.job.stop()
                        return
                    if task.node_id != self.node_id:
                        run.abandoned = True
                        run.job.stop()
                        return
                    spec = spec_from_json(task.spec)
                    if spec != run.spec:
                        self._apply(run, spec)
                    await self._save_progress(run)
            except (OSError, ValueError, SQLAlchemyError) as exc:
                log.warning(
                    "ingest.follow_failed", extra={"fields": {"task_id": run.task_id, "error": str(exc)}}
                )

    async def _drive(self, task: Task, run: _Run) -> None:
        job = run.job
        end: JobEnd | None = None
        runner = asyncio.ensure_future(job.run())
        follower = asyncio.ensure_future(self._follow(run))
        try:
            joined = asyncio.ensure_future(job.joined.wait())
            await asyncio.wait([joined, runner], return_when=asyncio.FIRST_COMPLETED)
            joined.cancel()
            if job.joined.is_set():
                await self.tasks.set_state(task.task_id, TaskState.RUNNING)
            try:
                end = await runner
            except Exception as exc:
                log.exception("ingest.job_failed", extra={"fields": {"task_id": task.task_id}})
                end = JobEnd("failed", f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            runner.cancel()
            with contextlib.suppress(BaseException):
                await runner
            raise
        finally:
            follower.cancel()
            with contextlib.suppress(BaseException):
                await follower
            if self._shutting_down and run.stop_reason is None and not run.abandoned:
                with contextlib.suppress(Exception):
                    await self._save_progress(run)  # where the next process resumes
            self._runs.pop(task.task_id, None)
            if end is not None and not run.abandoned and run.stop_reason is None and not self._shutting_down:
                with contextlib.suppress(Exception):
                    await self._after_job(task.task_id, run, end)
            if (
                end is not None
                and not run.abandoned
                and not (self._shutting_down and run.stop_reason is None)
            ):
                stats = job.pipeline.stats if job.pipeline is not None else None
                final = JobEnd(run.stop_reason, None) if run.stop_reason else end
                with contextlib.suppress(Exception):
                    await self._finish(
                        task,
                        final,
                        video_mode=stats.video_mode if stats else None,
                        size=(stats.width, stats.height) if stats else (None, None),
                    )
            run.ended.set()

    async def _after_job(self, task_id: str, run: _Run, end: JobEnd) -> None:
        """Whether a job that ended by itself leaves its task to another node (``run.abandoned``):
        the task was taken over meanwhile, or its room was placed on another node (this node was
        paused or cut off), which the task then follows."""
        current = await self.tasks.by_id(task_id)
        if current is None or current.node_id in (None, self.node_id):
            if end.reason != "moved" or self.nodes is None or current is None:
                return
            if current.state is TaskState.EXITED or task_id in self._resuming:
                return
            self._resuming.add(task_id)
            self._background.spawn(f"follow room {task_id[:12]}", self._resume(current, self.node_id))
        run.abandoned = True

    async def _finish(
        self, task: Task, end: JobEnd, *, video_mode: str | None, size: tuple[int | None, int | None]
    ) -> None:
        """The task exits with its reason; its usage row is written in the same transaction."""
        reason = _REASONS.get(end.reason, end.reason)
        async with self.tasks.sessions.begin() as s:
            await self.tasks.transition_in(
                s, task.task_id, TaskState.STOPPING, reason=reason, error=end.error
            )
            row = await self.tasks.transition_in(
                s, task.task_id, TaskState.EXITED, reason=reason, error=end.error
            )
            if row is None:
                return  # already ended
            await s.execute(delete(IngestProgressRow).where(IngestProgressRow.task_id == task.task_id))
            ended = row.ended_at or utcnow()
            started = row.started_at or row.created_at
            s.add(
                IngestUsageRow(
                    task_id=task.task_id,
                    sdk_app_id=task.sdk_app_id,
                    room_id=task.room_id,
                    user_id=task.robot_user_id or "",
                    started_at=started,
                    ended_at=ended,
                    seconds=max(0, math.ceil((ended - started).total_seconds())) if row.started_at else 0,
                    video_mode=video_mode,
                    width=size[0],
                    height=size[1],
                    reason=row.reason,
                )
            )
        event(
            log,
            "ingest.ended",
            level=logging.WARNING if reason == "failed" else logging.INFO,
            task_id=task.task_id,
            reason=reason,
            error=end.error,
        )

    # ------------------------------------------------------- node lifecycle

    async def take_over(self) -> None:
        """Resume the ingest tasks of nodes that are gone (a restart of this one included); with
        several nodes, a task whose room another node serves is handed to that node."""
        if self._shutting_down:
            return
        for task, previous in await self.tasks.claim_orphaned(KIND, self.node_id or ""):
            if task.task_id in self._runs or task.task_id in self._resuming:
                continue
            self._resuming.add(task.task_id)
            if self.nodes is None:
                await self._resume(task, previous)
            else:
                self._background.spawn(f"take over {task.task_id[:12]}", self._resume(task, previous))

    async def _resume(self, task: Task, previous: str | None) -> None:
        """Start the job of a task this node took over or adopted, from where it was."""
        try:
            if self.nodes is not None and previous is not None and await self._hand_over(task):
                return
            try:
                spec = spec_from_json(task.spec)
            except (ValueError, TypeError) as exc:
                await self._finish(
                    task, JobEnd("failed", f"unreadable spec: {exc}"), video_mode=None, size=(None, None)
                )
                return
            started = task.started_at or task.created_at
            elapsed = max(0.0, (datetime.now(UTC) - started).total_seconds())
            event(
                log,
                "ingest.resumed",
                task_id=task.task_id,
                previous_node=previous,
                elapsed_s=round(elapsed, 1),
            )
            source: Probe | None = None
            with contextlib.suppress(InvalidArgument, Unavailable):
                source = await self.probe(spec.url)  # which tracks to publish (the job retries the source)
            current = await self.tasks.by_id(task.task_id)
            if current is None or current.state is TaskState.EXITED or current.node_id != self.node_id:
                return  # stopped or moved while the source was probed
            with contextlib.suppress(ValueError, TypeError):
                spec = spec_from_json(current.spec)  # updated meanwhile
            play = await self._resume_point(task.task_id, spec)
            self._launch(current, spec, elapsed_s=elapsed, media=_media(source), play=play)
        finally:
            self._resuming.discard(task.task_id)

    async def let_go(self) -> None:
        """This node lost its lease: end the jobs of tasks another node owns now (not the tasks)."""
        for task_id, run in list(self._runs.items()):
            task = await self.tasks.by_id(task_id)
            if task is None or task.node_id == self.node_id:
                continue
            run.abandoned = True
            run.job.stop()

    async def close(self) -> None:
        """Server shutdown: the users leave; unfinished tasks stay for the next start to resume."""
        self._shutting_down = True
        for run in list(self._runs.values()):
            run.job.stop()
        waits = [r.ended.wait() for r in list(self._runs.values())]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), STOP_WAIT_S)
        await self._background.close()

    def running(self) -> list[str]:
        return list(self._runs)


def _media(source: Probe | None) -> tuple[str, ...]:
    """The kinds of track to publish for a probed source (both if it could not be probed)."""
    if source is None:
        return ("audio", "video")
    return tuple(m for m, codec in (("audio", source.audio_codec), ("video", source.video_codec)) if codec)
