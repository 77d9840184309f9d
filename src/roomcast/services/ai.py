"""AI robot tasks (transcription, conversation): persisted like recordings, run by this node.

A task row holds the spec (``domain.ai``; keys sealed) and the dialect's request. States move
forward: idle (the robot is joining) -> running -> stopping -> exited. Final sentences are stored
in ``ai_transcript_lines`` and listed by the native task API. On restart or when another node is
gone, unfinished tasks are claimed (``services.nodes`` take-over) and their robots join again.

Several nodes (:class:`TaskNodes`, as for ingests): a robot is an in-process participant, so it
runs on the node serving its room. Start through another node asks the room's node (``ai.start``;
the room is placed on the node asked first if nobody serves it); Stop, Update and Control go to
the task's node (``ai.stop``, ``ai.update``, ``ai.control``). If that node does not answer, Stop
ends the task row and Update rewrites the stored spec, which the robot's node reads every
:data:`FOLLOW_S` seconds (its robot leaves, or follows the new settings); Control is refused.
A task taken over from a dead node is handed to the node serving its room (``ai.adopt``), or its
room placed on the taking node.

Dedup (as TRTC documents it): a session id names one live task per app; without one, a
transcription of the whole room is one per room and one of a user is one per target user.
A robot user id that is already in the room is refused; starting a task while another robot of
the same kind uses that user id is refused too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.ai.robots import ConversationRobot, Robot, TranscriptionRobot
from roomcast.background import Background
from roomcast.crypto import SecretBox
from roomcast.domain import ai
from roomcast.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from roomcast.domain.task import EndReason, Task, TaskState
from roomcast.domain.tenancy import App
from roomcast.log import event, register_secret
from roomcast.net.urls import UrlPolicy
from roomcast.rtc.errors import RtcError
from roomcast.rtc.room import RoomManager
from roomcast.services.task_nodes import call_owner, hand_over
from roomcast.services.tasks import TaskNodes, TaskService, _open_tree, _seal_tree
from roomcast.store.tables import TaskRow, TranscriptLineRow, utcnow

log = logging.getLogger("roomcast.ai")

KINDS = (ai.KIND_TRANSCRIPTION, ai.KIND_CONVERSATION)
FOLLOW_S = 2.0  # several nodes: how often robots read their task rows (ends, moves, specs)
FORGET_AFTER = timedelta(minutes=10)
"""An ended task is described as stopped this long, then it no longer exists for Describe."""

_END_REASONS = {
    "stopped": EndReason.STOPPED,
    "idle": EndReason.IDLE,
    "room_dismissed": EndReason.ROOM_DISMISSED,
    "removed": EndReason.STOPPED,
    "replaced": EndReason.STOPPED,
    "server_shutdown": EndReason.SERVER_RESTART,
}


@dataclass(frozen=True)
class TranscriptLine:
    seq: int
    user_id: str
    text: str
    start_ms: int
    end_ms: int
    at: datetime


async def transcript(sessions: async_sessionmaker[AsyncSession], task_id: str) -> list[TranscriptLine]:
    async with sessions() as s:
        rows = await s.execute(
            select(TranscriptLineRow)
            .join(TaskRow, TranscriptLineRow.task_pk == TaskRow.id)
            .where(TaskRow.task_id == task_id)
            .order_by(TranscriptLineRow.seq, TranscriptLineRow.id)
        )
        return [
            TranscriptLine(r.seq, r.user_id, r.text, r.start_ms, r.end_ms, r.created_at)
            for r in rows.scalars()
        ]


def _keys(spec: ai.AiSpec) -> list[str]:
    parts: list[object] = [spec.asr]
    if isinstance(spec, ai.ConversationSpec):
        parts += [spec.llm, spec.tts]
    return [k for p in parts if (k := getattr(p, "api_key", None))]


class AiService:
    def __init__(
        self,
        *,
        tasks: TaskService,
        box: SecretBox,
        sfu: RoomManager,
        apps: Callable[[int], Awaitable[App]],
        node_id: str,
        url_policy: UrlPolicy,
        default_asr: ai.AsrConfig | None = None,
        max_tasks: int = 20,
        nodes: TaskNodes | None = None,
    ) -> None:
        self.tasks = tasks
        self._box = box
        self.sfu = sfu
        self._apps = apps
        self.node_id = node_id
        self.policy = url_policy
        self.default_asr = default_asr or ai.AsrConfig()
        self.max_tasks = max_tasks
        self.nodes = nodes
        self.robots: dict[str, Robot] = {}
        self._background = Background("ai")
        self._lock = asyncio.Lock()
        self._closing = False
        self._seen: dict[str, dict[str, Any]] = {}  # task id -> the stored spec its robot runs
        self._follower: asyncio.Task[None] | None = None

    # -- specs ------------------------------------------------------------------------------------
    def _seal(self, spec: ai.AiSpec) -> dict[str, Any]:
        sealed: dict[str, Any] = _seal_tree(ai.spec_to_json(spec), self._box, ai.SECRET_FIELDS)
        return sealed

    def spec_of(self, task: Task) -> ai.AiSpec:
        return ai.spec_from_json(_open_tree(task.spec, self._box))

    def asr_for(self, asr: ai.AsrConfig | None) -> ai.AsrConfig:
        """A task's recognizer: its own, else the server-wide one (keeping the task's language)."""
        if asr is not None and asr.engine is ai.AsrEngine.OPENAI:
            return asr
        language = asr.language if asr is not None else None
        return dataclasses.replace(self.default_asr, language=language or self.default_asr.language)

    # -- queries ----------------------------------------------------------------------------------
    async def _live(self, sdk_app_id: int, kind: str | None = None) -> list[Task]:
        async with self.tasks.sessions() as s:
            q = select(TaskRow).where(
                TaskRow.sdk_app_id == sdk_app_id,
                TaskRow.kind.in_([kind] if kind else list(KINDS)),
                TaskRow.state != TaskState.EXITED.value,
            )
            return [self.tasks.task(r) for r in (await s.execute(q)).scalars()]

    async def find(self, task_id: str, kinds: tuple[str, ...] = KINDS) -> Task | None:
        """A task by id if it is one of ``kinds`` and still known (ended not long ago)."""
        task = await self.tasks.by_id(task_id)
        if task is None or task.kind not in kinds:
            return None
        if (
            task.state is TaskState.EXITED
            and task.ended_at is not None
            and utcnow() - task.ended_at > FORGET_AFTER
        ):
            return None
        return task

    async def find_session(self, sdk_app_id: int, session_id: str, kind: str) -> Task | None:
        async with self.tasks.sessions() as s:
            rows = await s.execute(
                select(TaskRow)
                .where(TaskRow.sdk_app_id == sdk_app_id, TaskRow.kind == kind)
                .order_by(TaskRow.id.desc())
                .limit(200)
            )
            for r in rows.scalars():
                if json.loads(r.spec).get("session_id") == session_id:
                    return await self.find(r.task_id, (kind,))
        return None

    # -- start ------------------------------------------------------------------------------------
    async def start(
        self, app: App, room_id: str, spec: ai.AiSpec, *, dialect: str, request: dict[str, Any]
    ) -> Task:
        if not app.enabled:
            raise FailedPrecondition("the app is disabled", subject="app_state")
        ai.check_asr(spec.asr)
        for key in _keys(spec):
            register_secret(key)  # masked should it ever reach a log line
        app_key = str(app.sdk_app_id)
        if self.nodes is not None and (owner := await self.nodes.room_node(app_key, room_id)) is not None:
            task_id = await self.nodes.call(
                owner,
                "ai.start",
                {
                    "sdk_app_id": app.sdk_app_id,
                    "room_id": room_id,
                    "spec": self._seal(spec),
                    "dialect": dialect,
                    "request": _seal_tree(request, self._box, TaskService.SECRET_KEYS),
                },
            )
            event(log, "ai.started_on", task_id=task_id, node_id=owner)
            return await self.tasks.get(app.sdk_app_id, str(task_id))
        return await self._start_here(app, room_id, spec, dialect=dialect, request=request)

    async def _start_here(
        self, app: App, room_id: str, spec: ai.AiSpec, *, dialect: str, request: dict[str, Any]
    ) -> Task:
        kind = ai.KIND_TRANSCRIPTION if isinstance(spec, ai.TranscriptionSpec) else ai.KIND_CONVERSATION
        app_key = str(app.sdk_app_id)
        for key in _keys(spec):
            register_secret(key)
        async with self._lock:
            if len(self.robots) >= self.max_tasks:
                raise LimitExceeded("the maximum number of AI robots on this node is reached", subject="ai")
            for other in await self._live(app.sdk_app_id, kind):
                o = self.spec_of(other)
                if spec.session_id is not None:
                    if o.session_id == spec.session_id:
                        raise AlreadyExists("a task with this session id exists", subject="task")
                    continue
                if other.room_id != room_id or o.session_id is not None:
                    continue
                if isinstance(spec, ai.TranscriptionSpec) and o.target_user_id == spec.target_user_id:
                    raise AlreadyExists("a transcription of this room or user exists", subject="task")
            # A robot's user id must not be a present user's; reusing another robot's interrupts
            # that robot's task (its participant is replaced), as TRTC documents.
            room = self.sfu.get_room(app_key, room_id)
            robots = {(r.room_id, r.user_id) for r in self.robots.values() if r.app_key == app_key}
            if (
                room is not None
                and spec.robot_user_id in room.participants
                and (room_id, spec.robot_user_id) not in robots
            ):
                raise InvalidArgument("the robot's user id is already in the room", subject="robot_user_id")
            task = await self.tasks.create(
                sdk_app_id=app.sdk_app_id,
                kind=kind,
                dialect=dialect,
                room_id=room_id,
                spec=self._seal(spec),
                request=request,
                target=None,
                node_id=self.node_id,
                robot_user_id=spec.robot_user_id,
            )
            try:
                await self._launch(task, spec, time.time())
            except Exception as exc:
                await self.tasks.set_state(
                    task.task_id, TaskState.EXITED, EndReason.FAILED.value, str(exc)[:500]
                )
                if isinstance(exc, RtcError):  # the room is full or closing, the server at its limit
                    raise Unavailable(f"the robot cannot join the room: {exc}", subject="room") from None
                raise
        event(log, "ai.started", task_id=task.task_id, kind=kind, room_id=room_id)
        return task

    async def _launch(self, task: Task, spec: ai.AiSpec, t0: float, *, resumed: bool = False) -> None:
        task_id = task.task_id
        await self.tasks.next_run(task_id)

        async def on_final(user: str, text: str, start_ms: float, end_ms: float) -> None:
            await self._store_line(task_id, user, text, start_ms, end_ms)

        async def on_end(reason: str) -> None:
            self._background.spawn(f"end-{task_id[:12]}", self._finish(task_id, reason))

        async def on_error(message: str) -> None:
            async with self.tasks.sessions.begin() as s:
                await self.tasks.set_error_in(s, task_id, message[:500])

        cls = TranscriptionRobot if isinstance(spec, ai.TranscriptionSpec) else ConversationRobot
        robot = cls(
            self.sfu,
            str(task.sdk_app_id),
            task.room_id,
            spec,
            task_id=task_id,
            t0=t0,
            policy=self.policy,
            on_final=on_final,
            on_end=on_end,
            on_error=on_error,
        )
        robot.resumed = resumed
        self.robots[task_id] = robot
        self._seen[task_id] = task.spec
        if self.nodes is not None and self._follower is None:
            self._follower = self._background.spawn("follow", self._follow())
        try:
            await robot.start()
        except Exception:
            self.robots.pop(task_id, None)
            await robot.stop()
            raise
        await self.tasks.set_state(task_id, TaskState.RUNNING)

    async def _store_line(self, task_id: str, user: str, text: str, start_ms: float, end_ms: float) -> None:
        async with self.tasks.sessions.begin() as s:
            row = await self.tasks.row_in(s, task_id)
            if row is None:
                return
            seq = (
                await s.execute(
                    select(func.coalesce(func.max(TranscriptLineRow.seq), 0)).where(
                        TranscriptLineRow.task_pk == row.id
                    )
                )
            ).scalar_one()
            s.add(
                TranscriptLineRow(
                    task_pk=row.id,
                    seq=int(seq) + 1,
                    user_id=user,
                    text=text,
                    start_ms=int(start_ms),
                    end_ms=int(end_ms),
                    created_at=utcnow(),
                )
            )

    # -- control ----------------------------------------------------------------------------------
    def _running(self, task: Task) -> Robot:
        robot = self.robots.get(task.task_id)
        if robot is None or task.state in (TaskState.STOPPING, TaskState.EXITED):
            raise NotFound("the task has ended or runs on another node", subject="task")
        return robot

    def _elsewhere(self, task: Task) -> str | None:
        """The other node running ``task`` (several nodes), or None."""
        if self.nodes is None or task.node_id in (None, self.node_id) or task.task_id in self.robots:
            return None
        return task.node_id

    async def stop(self, task: Task) -> None:
        if task.state is TaskState.EXITED:
            return
        if (owner := self._elsewhere(task)) is not None:
            assert self.nodes is not None
            if await call_owner(self.nodes, owner, "ai.stop", task, {}, log):
                return
            # That node does not answer: end the record; a robot still there leaves when the
            # node finds its task taken (lease lost) or ended.
        elif task.task_id not in self.robots and task.node_id not in (None, self.node_id):
            raise NotFound("the task runs on another node", subject="task")
        await self._finish(task.task_id, "stopped")

    async def update(self, task: Task, **changes: Any) -> ai.AiSpec:
        """Change a conversation's settings live (None: unchanged); the stored spec follows."""
        spec = self.spec_of(task)
        new = dataclasses.replace(spec, **{k: v for k, v in changes.items() if v is not None})
        assert isinstance(new, ai.ConversationSpec)
        for key in _keys(new):
            register_secret(key)
        if (owner := self._elsewhere(task)) is not None:
            assert self.nodes is not None
            if task.state in (TaskState.STOPPING, TaskState.EXITED):
                raise NotFound("the task has ended", subject="task")
            if not await call_owner(self.nodes, owner, "ai.update", task, {"spec": self._seal(new)}, log):
                # Its node does not answer: the stored spec is what a taking node's robot uses.
                await self.tasks.update_spec(task.task_id, self._seal(new), task.request)
            return new
        await self._apply(task, new)
        return new

    async def _apply(self, task: Task, new: ai.ConversationSpec) -> None:
        robot = self._running(task)
        assert isinstance(robot, ConversationRobot)
        robot.update(new)
        sealed = self._seal(new)
        await self.tasks.update_spec(task.task_id, sealed, task.request)
        self._seen[task.task_id] = sealed

    async def push_text(self, task: Task, text: str, *, interrupt: bool, stop_after: bool) -> None:
        if (owner := self._elsewhere(task)) is not None:
            assert self.nodes is not None
            if task.state in (TaskState.STOPPING, TaskState.EXITED):
                raise NotFound("the task has ended", subject="task")
            params = {"text": text, "interrupt": interrupt, "stop_after": stop_after}
            if not await call_owner(self.nodes, owner, "ai.control", task, params, log):
                raise NotFound("the node running the task does not answer", subject="task")
            return
        robot = self._running(task)
        if not isinstance(robot, ConversationRobot):
            raise NotFound("not a conversation", subject="task")
        await robot.push_text(text, interrupt=interrupt, stop_after=stop_after)

    async def _finish(self, task_id: str, reason: str) -> None:
        mapped = _END_REASONS.get(reason, EndReason.STOPPED)
        await self.tasks.set_state(task_id, TaskState.STOPPING, reason=mapped.value)
        robot = self.robots.pop(task_id, None)
        self._seen.pop(task_id, None)
        if robot is not None:
            with contextlib.suppress(Exception):
                await robot.stop()
        await self.tasks.set_state(task_id, TaskState.EXITED, reason=mapped.value)
        event(log, "ai.exited", task_id=task_id, reason=mapped.value)

    # -- other nodes ------------------------------------------------------------------------------
    async def _follow(self) -> None:
        """Several nodes: what other nodes wrote to the task rows while this node did not answer
        them (an end, a take-over, a new spec) reaches the robots here every :data:`FOLLOW_S`."""
        while not self._closing:
            await asyncio.sleep(FOLLOW_S)
            for task_id, robot in list(self.robots.items()):
                try:
                    task = await self.tasks.by_id(task_id)
                except Exception as exc:  # the database away for a moment: next round
                    event(
                        log, "ai.follow_failed", level=logging.WARNING, task_id=task_id, error=str(exc)[:200]
                    )
                    break
                if task is None or self.robots.get(task_id) is not robot:
                    continue
                if task.state is TaskState.EXITED or task.node_id != self.node_id:
                    self.robots.pop(task_id, None)
                    self._seen.pop(task_id, None)
                    with contextlib.suppress(Exception):
                        await robot.stop()
                    event(log, "ai.left", task_id=task_id, state=task.state.value, node_id=task.node_id)
                elif task.spec != self._seen.get(task_id) and isinstance(robot, ConversationRobot):
                    spec = self.spec_of(task)
                    if isinstance(spec, ai.ConversationSpec):
                        robot.update(spec)
                    self._seen[task_id] = task.spec

    def calls(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
        """What other nodes may ask of this one (cluster RPC methods)."""

        async def task_of(p: dict[str, Any]) -> Task:
            task = await self.find(str(p["task_id"]))
            if task is None or task.sdk_app_id != int(p["sdk_app_id"]):
                raise NotFound("task does not exist", subject="task")
            return task

        async def start(p: dict[str, Any]) -> str:
            spec = ai.spec_from_json(_open_tree(p["spec"], self._box))
            request = _open_tree(p.get("request") or {}, self._box)
            app = await self._apps(int(p["sdk_app_id"]))
            task = await self._start_here(
                app, str(p["room_id"]), spec, dialect=str(p["dialect"]), request=request
            )
            return task.task_id

        async def stop(p: dict[str, Any]) -> None:
            await self.stop(await task_of(p))

        async def update(p: dict[str, Any]) -> None:
            new = ai.spec_from_json(_open_tree(p["spec"], self._box))
            if not isinstance(new, ai.ConversationSpec):
                raise NotFound("not a conversation", subject="task")
            for key in _keys(new):
                register_secret(key)
            await self._apply(await task_of(p), new)

        async def control(p: dict[str, Any]) -> None:
            await self.push_text(
                await task_of(p),
                str(p["text"]),
                interrupt=bool(p["interrupt"]),
                stop_after=bool(p["stop_after"]),
            )

        async def adopt(p: dict[str, Any]) -> None:
            await self.adopt(str(p["task_id"]))

        return {
            "ai.start": start,
            "ai.stop": stop,
            "ai.update": update,
            "ai.control": control,
            "ai.adopt": adopt,
        }

    async def adopt(self, task_id: str) -> None:
        """Run a task another node gave this one (the room is served here); the robot joins in
        the background, so the call answers at once."""
        task = await self.tasks.by_id(task_id)
        if (
            task is None
            or task.kind not in KINDS
            or task.node_id != self.node_id
            or task.state in (TaskState.STOPPING, TaskState.EXITED)
            or task_id in self.robots
            or self._closing
        ):
            raise FailedPrecondition("the task cannot be run on this node", subject="task")
        self._background.spawn(f"adopt-{task_id[:12]}", self._resume(task, None))

    # -- node lifecycle -----------------------------------------------------------------------------
    async def take_over(self) -> None:
        """Robots of tasks whose node is gone (this one before a restart) join again here."""
        if self._closing:
            return
        for kind in KINDS:
            for task, previous in await self.tasks.claim_orphaned(kind, self.node_id):
                if task.task_id in self.robots:
                    continue
                if self.nodes is None:
                    await self._resume(task, previous)
                else:  # handing over may wait for the dead node's rooms to be released
                    self._background.spawn(f"resume-{task.task_id[:12]}", self._resume(task, previous))

    async def _resume(self, task: Task, previous: str | None) -> None:
        """The robot of a task this node took over or adopted joins its room again (with several
        nodes, a taken-over task whose room another node serves is handed to that node)."""
        if (
            self.nodes is not None
            and previous is not None
            and task.state is not TaskState.STOPPING
            and await hand_over(self.tasks, self.nodes, self.node_id, task, "ai.adopt", log)
        ):
            return
        try:
            spec = self.spec_of(task)
            for key in _keys(spec):
                register_secret(key)
            if task.state is TaskState.STOPPING:
                raise InvalidArgument("was stopping", subject="task")
            started = task.started_at or task.created_at
            async with self._lock:
                current = await self.tasks.by_id(task.task_id)
                if (
                    current is None
                    or current.node_id != self.node_id
                    or current.state is TaskState.EXITED
                    or task.task_id in self.robots
                ):
                    return  # stopped or moved meanwhile
                await self._launch(current, spec, started.timestamp(), resumed=True)
            event(log, "ai.resumed", task_id=task.task_id, kind=task.kind)
        except Exception as exc:
            event(
                log,
                "ai.resume_failed",
                level=logging.WARNING,
                task_id=task.task_id,
                error=str(exc)[:200],
            )
            await self.tasks.set_state(task.task_id, TaskState.EXITED, EndReason.SERVER_RESTART.value)

    async def let_go(self) -> None:
        """This node lost its lease: robots of tasks another node took leave the room here."""
        for task_id, robot in list(self.robots.items()):
            task = await self.tasks.by_id(task_id)
            if task is not None and task.node_id != self.node_id:
                self.robots.pop(task_id, None)
                await robot.stop()

    async def room_dismissed(self, app_key: str, room_id: str) -> None:
        for task_id, robot in list(self.robots.items()):
            if robot.app_key == app_key and robot.room_id == room_id:
                await self._finish(task_id, "room_dismissed")

    async def close(self) -> None:
        """Server shutdown: robots leave; their tasks stay unfinished for the next start to resume."""
        self._closing = True
        for robot in list(self.robots.values()):
            with contextlib.suppress(Exception):
                await robot.stop()
        self.robots.clear()
        await self._background.close()
