"""Relay tasks: a room's mix (or one user's stream) pushed to RTMP destinations, as durable tasks.

A relay is a task row (kind ``relay``) like a recording: the normalized :class:`RelaySpec` as
versioned JSON, the dialect's own request apart (robot signatures left out), forward-only
states (``running`` while pushing, ``stopping``, ``exited`` with a reason).  The node that runs
it holds the media job (:class:`roomcast.media.relay.RelayJob`); when a node is gone another
node takes its relays over (:meth:`RelayService.take_over`) and pushes again from the stored
spec (the CDN sees a reconnect).  An update changes the stored spec and the live job together.

Several nodes (:class:`TaskNodes`, as for ingests): a relay subscribes to its room's tracks in
process, so it runs on the node serving its room. Start through another node asks the room's node
(``relays.start``; the room is placed on the node asked first if nobody serves it); Update and Stop
go to the task's node (``relays.update``, ``relays.stop``; refused with :class:`Unavailable` if
that node does not answer, until another node takes its relays over). A relay taken over from a
dead node is handed to the node serving its room (``relays.adopt``), or its room placed on the
taking node.

Destination trouble is reported where the user looks: every change of a destination's state is
logged (``relay.push_state``, URL without its query), the live states are returned by
:meth:`RelayService.outputs`, and the first failure's message is kept in the task's ``error``.

Usage: the statistics recorder meters the running relay tasks of its node into the usage ledger
(``relay``, and ``transcode`` for a mix; :mod:`roomcast.stats.recorder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from roomcast.background import Background
from roomcast.domain.errors import FailedPrecondition, InvalidArgument, LimitExceeded, NotFound, Unavailable
from roomcast.domain.relay import RelaySpec, relay_from_json, relay_to_json, validate_relay
from roomcast.domain.task import EndReason, Task, TaskState
from roomcast.domain.tenancy import App
from roomcast.log import event
from roomcast.media.images import ImageFetcher
from roomcast.media.mixed import TrackSource
from roomcast.media.relay import RelayEnded, RelayJob
from roomcast.media.rtmp import PushState, redact
from roomcast.net.stream_urls import connect_refusal
from roomcast.net.urls import UrlPolicy
from roomcast.services.task_nodes import hand_over
from roomcast.services.tasks import TaskNodes, TaskService

log = logging.getLogger("roomcast.relays")

KIND = "relay"
_END_REASONS = {
    "stopped": EndReason.STOPPED,
    "idle": EndReason.IDLE,
    "error": EndReason.FAILED,
    "room_dismissed": EndReason.ROOM_DISMISSED,
}


@dataclass(frozen=True)
class RelayRequest:
    app: App
    room_id: str
    spec: RelaySpec
    dialect: str
    dialect_request: dict[str, Any]
    robot_user_id: str | None = None


@dataclass
class _Run:
    task: Task
    job: RelayJob
    watcher: asyncio.Task[None] | None = None


class RelayService:
    def __init__(
        self,
        *,
        tasks: TaskService,
        source: TrackSource,
        node_id: str,
        images: ImageFetcher | None = None,
        max_tasks: int = 50,
        room_users: Callable[[str, str], list[str]] | None = None,
        url_policy: UrlPolicy | None = None,
        base_url: str | None = None,
        token_for: Callable[[int, str], Awaitable[str]] | None = None,
        nodes: TaskNodes | None = None,
        apps: Callable[[int], Awaitable[App]] | None = None,
    ) -> None:
        self.nodes = nodes
        self.apps = apps
        self.base_url = base_url
        self._token_for = token_for
        self.url_policy = url_policy or UrlPolicy()
        self.tasks = tasks
        self.source = source
        self.node_id = node_id
        self.images = images
        self.max_tasks = max_tasks
        self._room_users = room_users or (lambda app, room: [])
        self._running: dict[str, _Run] = {}
        self._lock = asyncio.Lock()
        self._background = Background("relays")
        self._shutting_down = False

    # -- the API -------------------------------------------------------------------------------
    async def create(self, req: RelayRequest) -> Task:
        validate_relay(req.spec)
        if not req.app.enabled:
            raise FailedPrecondition("the app is disabled", subject="app_state")
        app_key = str(req.app.sdk_app_id)
        if self.nodes is not None and (owner := await self.nodes.room_node(app_key, req.room_id)) is not None:
            task_id = await self.nodes.call(
                owner,
                "relays.start",
                {
                    "sdk_app_id": req.app.sdk_app_id,
                    "room_id": req.room_id,
                    "spec": relay_to_json(req.spec),
                    "dialect": req.dialect,
                    "dialect_request": req.dialect_request,
                    "robot_user_id": req.robot_user_id,
                },
            )
            event(log, "relay.started_on", task_id=task_id, node_id=owner)
            return await self.tasks.get(req.app.sdk_app_id, str(task_id))
        return await self._create_here(req)

    async def _create_here(self, req: RelayRequest) -> Task:
        app_key = str(req.app.sdk_app_id)
        async with self._lock:
            if len(self._running) >= self.max_tasks:
                raise LimitExceeded("the maximum number of concurrent relays is reached", subject="relay")
            if req.robot_user_id is not None:
                if req.robot_user_id in self._room_users(app_key, req.room_id):
                    raise InvalidArgument(
                        "the robot's user id is already in the room", subject="robot_user_id"
                    )
                for other in await self.tasks.active_in_room(req.app.sdk_app_id, req.room_id):
                    if other.robot_user_id == req.robot_user_id:
                        raise InvalidArgument(
                            "another task in the room uses this user id", subject="robot_user_id"
                        )
            self.check_robots(app_key, req.spec)
            task = await self.tasks.create(
                sdk_app_id=req.app.sdk_app_id,
                kind=KIND,
                dialect=req.dialect,
                room_id=req.room_id,
                spec=relay_to_json(req.spec),
                request=req.dialect_request,
                target=None,
                node_id=self.node_id,
                robot_user_id=req.robot_user_id,
            )
            try:
                await self._launch(task, req.spec)
            except Exception:
                await self.tasks.set_state(task.task_id, TaskState.EXITED, EndReason.FAILED.value)
                raise
            return task

    def check_robots(self, app_key: str, spec: RelaySpec, task_id: str | None = None) -> None:
        """Feedback robots must not be users already in their rooms, nor another relay's."""
        for f in spec.feedback:
            if f.user_id in self._room_users(app_key, f.room_id):
                raise InvalidArgument(
                    f"the robot {f.user_id} is already in room {f.room_id}", subject="robot_user_id"
                )
            for run in self._running.values():
                mine = run.task.task_id == task_id or str(run.task.sdk_app_id) != app_key
                if not mine and any(
                    o.room_id == f.room_id and o.user_id == f.user_id for o in run.job.spec.feedback
                ):
                    raise InvalidArgument(
                        f"another relay publishes as {f.user_id} in room {f.room_id}", subject="robot_user_id"
                    )

    def _is_robot(self, sdk_app_id: int, task_id: str) -> Callable[[str], bool]:
        def check(user_id: str) -> bool:
            return any(
                user_id in run.job.robots()
                for run in self._running.values()
                if run.task.sdk_app_id == sdk_app_id and run.task.task_id != task_id
            )

        return check

    async def _launch(self, task: Task, spec: RelaySpec) -> None:
        task_id = task.task_id
        number = await self.tasks.next_run(task_id)
        loop = asyncio.get_running_loop()

        def on_push_state(url: str, state: str, error: str | None) -> None:
            if state == PushState.RECONNECTING and error:
                message = f"output {redact(url)}: {error}"
                loop.call_soon_threadsafe(
                    lambda: self._background.spawn(
                        f"push-error-{task_id[:12]}", self._record_error(task_id, message)
                    )
                )

        job = RelayJob(
            task_id,
            str(task.sdk_app_id),
            task.room_id,
            spec,
            self.source,
            images=self.images,
            on_push_state=on_push_state,
            url_check=lambda url: connect_refusal(self.url_policy, url),
            base_url=self.base_url,
            token_for=self._robot_token(task.sdk_app_id),
            is_robot=self._is_robot(task.sdk_app_id, task_id),
        )
        await job.start()
        run = _Run(task=replace(task, run=number), job=job)
        self._running[task_id] = run
        run.task = await self.tasks.set_state(task_id, TaskState.RUNNING)
        run.watcher = self._background.spawn(f"watch-{task_id[:12]}", self._watch(run))

    def _robot_token(self, sdk_app_id: int) -> Callable[[str], Awaitable[str]] | None:
        issue = self._token_for
        if issue is None:
            return None

        async def token(user_id: str) -> str:
            return await issue(sdk_app_id, user_id)

        return token

    async def _record_error(self, task_id: str, message: str) -> None:
        async with self.tasks.sessions.begin() as s:
            await self.tasks.set_error_in(s, task_id, message)

    async def _watch(self, run: _Run) -> None:
        """When the job ends (stopped, idle, failed), the task exits with its reason."""
        ended = await run.job.wait()
        await self._finish(run, ended)

    async def _finish(self, run: _Run, ended: RelayEnded) -> None:
        task_id = run.task.task_id
        if self._running.get(task_id) is not run:
            return  # let go (another node owns it) or shutting down: the row stays as it is
        if self._shutting_down and ended.reason == "stopped" and run.task.state is not TaskState.STOPPING:
            return  # server shutdown: the next node takes the task over
        reason = _END_REASONS.get(ended.reason, EndReason.FAILED).value
        async with self.tasks.sessions.begin() as s:
            await self.tasks.transition_in(s, task_id, TaskState.STOPPING, reason=reason, error=ended.error)
            await self.tasks.transition_in(s, task_id, TaskState.EXITED, reason=reason)
        self._running.pop(task_id, None)
        event(log, "relay.exited", task_id=task_id, reason=reason, error=ended.error)

    def spec_of(self, task: Task) -> RelaySpec:
        return relay_from_json(task.spec)

    async def get(self, app: App, task_id: str) -> Task:
        task = await self.tasks.get(app.sdk_app_id, task_id)
        if task.kind != KIND:
            raise NotFound("task does not exist", subject="task")
        return task

    def _live(self, task: Task) -> _Run:
        if task.state in (TaskState.STOPPING, TaskState.EXITED):
            raise NotFound("the task has ended", subject="task")
        run = self._running.get(task.task_id)
        if run is None:
            if task.node_id != self.node_id:
                raise Unavailable("the task is run by another node", subject="task")
            raise NotFound("the task has ended", subject="task")
        return run

    async def update(
        self, app: App, task_id: str, spec: RelaySpec, dialect_request: dict[str, Any] | None = None
    ) -> Task:
        """Change a running relay; the stored spec and the live job change together."""
        task = await self.get(app, task_id)
        if (owner := self._elsewhere(task)) is not None:
            assert self.nodes is not None
            params = {"spec": relay_to_json(spec), "dialect_request": dialect_request}
            await self.nodes.call(
                owner, "relays.update", {"sdk_app_id": app.sdk_app_id, "task_id": task_id, **params}
            )
            return await self.tasks.get(app.sdk_app_id, task_id)
        run = self._live(task)
        validate_relay(spec)
        self.check_robots(str(app.sdk_app_id), spec, task_id)
        old = self.spec_of(task)
        if spec.source is not old.source:
            raise InvalidArgument(
                "a relay cannot switch between mixing and a single stream", subject="source"
            )
        if spec.mix.media is not old.mix.media:
            raise InvalidArgument("a relay cannot switch between audio, video and both", subject="media")
        if spec.mix.video != old.mix.video or spec.mix.audio != old.mix.audio:
            raise InvalidArgument("codec parameters cannot change while relaying", subject="encoding")
        run.job.update(spec)
        await self.tasks.update_spec(task_id, relay_to_json(spec), dialect_request or task.request)
        return await self.tasks.get(app.sdk_app_id, task_id)

    async def stop(self, app: App, task_id: str) -> Task:
        task = await self.get(app, task_id)
        if (owner := self._elsewhere(task)) is not None:
            assert self.nodes is not None
            await self.nodes.call(owner, "relays.stop", {"sdk_app_id": app.sdk_app_id, "task_id": task_id})
            return await self.tasks.get(app.sdk_app_id, task_id)
        run = self._live(task)
        run.task = await self.tasks.set_state(task_id, TaskState.STOPPING, reason=EndReason.STOPPED.value)
        self._background.spawn(f"stop-{task_id[:12]}", run.job.stop("stopped"))
        return run.task

    async def room_dismissed(self, app_key: str, room_id: str) -> None:
        """A dismissed room ends the relays whose main room it is (their robot was kicked)."""
        for run in list(self._running.values()):
            t = run.task
            if str(t.sdk_app_id) != app_key or t.room_id != room_id or t.state is TaskState.STOPPING:
                continue
            run.task = await self.tasks.set_state(
                t.task_id, TaskState.STOPPING, reason=EndReason.ROOM_DISMISSED.value
            )
            self._background.spawn(f"dismissed-{t.task_id[:12]}", run.job.stop("room_dismissed"))

    def outputs(self, task_id: str) -> dict[str, str]:
        """The live state of each destination (URL -> connecting/connected/reconnecting)."""
        run = self._running.get(task_id)
        return run.job.push_states() if run is not None else {}

    def job(self, task_id: str) -> RelayJob | None:
        run = self._running.get(task_id)
        return run.job if run is not None else None

    # -- nodes ---------------------------------------------------------------------------------
    def _elsewhere(self, task: Task) -> str | None:
        """The other node running ``task`` (several nodes), or None."""
        if (
            self.nodes is None
            or task.node_id in (None, self.node_id)
            or task.task_id in self._running
            or task.state in (TaskState.STOPPING, TaskState.EXITED)
        ):
            return None
        return task.node_id

    def calls(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
        """What other nodes may ask of this one (cluster RPC methods)."""

        async def app_of(p: dict[str, Any]) -> App:
            assert self.apps is not None, "several nodes need the app lookup"
            return await self.apps(int(p["sdk_app_id"]))

        async def start(p: dict[str, Any]) -> str:
            robot = p.get("robot_user_id")
            req = RelayRequest(
                app=await app_of(p),
                room_id=str(p["room_id"]),
                spec=relay_from_json(dict(p["spec"])),
                dialect=str(p["dialect"]),
                dialect_request=dict(p.get("dialect_request") or {}),
                robot_user_id=str(robot) if robot is not None else None,
            )
            return (await self._create_here(req)).task_id

        async def update(p: dict[str, Any]) -> None:
            request = p.get("dialect_request")
            await self.update(
                await app_of(p),
                str(p["task_id"]),
                relay_from_json(dict(p["spec"])),
                dict(request) if request is not None else None,
            )

        async def stop(p: dict[str, Any]) -> None:
            await self.stop(await app_of(p), str(p["task_id"]))

        async def adopt(p: dict[str, Any]) -> None:
            task = await self.tasks.by_id(str(p["task_id"]))
            if (
                task is None
                or task.kind != KIND
                or task.node_id != self.node_id
                or task.task_id in self._running
                or self._shutting_down
            ):
                raise FailedPrecondition("the task cannot be run on this node", subject="task")
            self._background.spawn(f"adopt-{task.task_id[:12]}", self._resume(task, None))

        return {"relays.start": start, "relays.update": update, "relays.stop": stop, "relays.adopt": adopt}

    async def take_over(self) -> None:
        """Relays of nodes that are gone (a restart is the same case) push again from here; with
        several nodes, a relay whose room another node serves is handed to that node."""
        if self._shutting_down:
            return
        for task, previous in await self.tasks.claim_orphaned(KIND, self.node_id):
            if self.nodes is None:
                await self._resume(task, previous)
            else:  # handing over may wait for the dead node's rooms to be released
                self._background.spawn(f"resume-{task.task_id[:12]}", self._resume(task, previous))

    async def _resume(self, task: Task, previous: str | None) -> None:
        spec: RelaySpec | None = None
        with contextlib.suppress(InvalidArgument):
            spec = relay_from_json(task.spec)
        if spec is None or task.state not in (TaskState.IDLE, TaskState.RUNNING):
            await self.tasks.set_state(
                task.task_id, TaskState.EXITED, task.reason or EndReason.SERVER_RESTART.value
            )
            return
        if (
            self.nodes is not None
            and previous is not None
            and await hand_over(self.tasks, self.nodes, self.node_id, task, "relays.adopt", log)
        ):
            return
        try:
            async with self._lock:
                current = await self.tasks.by_id(task.task_id)
                if (
                    current is None
                    or current.node_id != self.node_id
                    or current.state not in (TaskState.IDLE, TaskState.RUNNING)
                    or task.task_id in self._running
                ):
                    return  # stopped or moved meanwhile
                await self._launch(current, relay_from_json(current.spec))
        except Exception:
            log.exception("relay.resume_failed", extra={"fields": {"task_id": task.task_id}})
            await self.tasks.set_state(task.task_id, TaskState.EXITED, EndReason.SERVER_RESTART.value)
            return
        event(log, "relay.taken_over", task_id=task.task_id, previous=previous, node=self.node_id)

    async def let_go(self) -> None:
        """This node lost its lease and another took some relays: stop pushing those here."""
        for task_id, run in list(self._running.items()):
            task = await self.tasks.by_id(task_id)
            if task is None or task.node_id == self.node_id:
                continue
            self._running.pop(task_id, None)
            with contextlib.suppress(Exception):
                await run.job.stop("stopped")
            event(log, "relay.let_go", level=logging.WARNING, task_id=task_id, owner=task.node_id)

    async def close(self, grace_s: float = 10.0) -> None:
        """Server shutdown: connections close; running relays stay for the next node."""
        self._shutting_down = True
        stops = [run.job.stop("stopped") for run in list(self._running.values())]
        if stops:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.1, grace_s)):
                    await asyncio.gather(*stops, return_exceptions=True)
        await self._background.close()
