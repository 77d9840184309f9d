"""Shared cluster moves of task services whose job must run on the node serving its room
(ingests, AI robots): ask the task's node to act, and hand a taken-over task to the room's node."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from roomcast.domain.errors import RoomcastError, Unavailable
from roomcast.domain.task import Task
from roomcast.log import event
from roomcast.services.tasks import TaskNodes, TaskService

HANDOVER_TRIES = 30  # a taken-over task waits this many seconds at most for its room's node to be known


async def call_owner(
    nodes: TaskNodes, owner: str, method: str, task: Task, params: dict[str, Any], log: logging.Logger
) -> bool:
    """Ask the task's node to act on it; False if it does not answer (gone, slow, Redis down):
    the caller then acts on the task row, which that node's job follows (or a taking node reads)."""
    try:
        await nodes.call(owner, method, {"sdk_app_id": task.sdk_app_id, "task_id": task.task_id, **params})
    except Unavailable as exc:
        event(log, "task.owner_unavailable", level=logging.WARNING, task_id=task.task_id, error=str(exc))
        return False
    return True


async def hand_over(
    tasks: TaskService, nodes: TaskNodes, node_id: str, task: Task, adopt: str, log: logging.Logger
) -> bool:
    """A task this node took over: give it to the node serving its room, if another one does
    (True once it is that node's; ``adopt`` is that node's RPC method). A node that is gone still
    holds the room for a moment (its directory entry expires after its lease): asked again every
    second."""
    for _ in range(HANDOVER_TRIES):
        try:
            owner = await nodes.room_node(str(task.sdk_app_id), task.room_id)
        except RoomcastError as exc:
            event(log, "task.placement_failed", level=logging.WARNING, task_id=task.task_id, error=str(exc))
            return False
        if owner is None:
            return False  # placed here: the job joins it
        if not await tasks.move(task.task_id, node_id, owner):
            return True  # stopped or moved meanwhile
        try:
            await nodes.call(owner, adopt, {"task_id": task.task_id})
        except RoomcastError as exc:
            if not await tasks.move(task.task_id, owner, node_id):
                return True
            if not isinstance(exc, Unavailable):  # gone or slow: ask again
                event(
                    log, "task.hand_over_failed", level=logging.WARNING, task_id=task.task_id, error=str(exc)
                )
                return False
            await asyncio.sleep(1.0)
            continue
        event(log, "task.handed_over", task_id=task.task_id, node_id=owner)
        return True
    return False
