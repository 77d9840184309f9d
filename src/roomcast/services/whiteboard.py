"""Room whiteboards in the database: accepting operations in order, and reading boards back.

Each accepted operation is one row with the room's next ``seq``; the unique indexes on
``(room, seq)`` and ``(room, op_id)`` keep the order total and operations idempotent even when
two nodes write to the same room (the loser of a race retries with the next ``seq``). A board
is kept in memory per room and caught up from the database before each check, so another
node's operations are seen too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.domain.errors import LimitExceeded, RoomcastError
from roomcast.domain.whiteboard import SHAPES, Board, normalize_op
from roomcast.store.tables import WhiteboardOpRow

MAX_CACHED_BOARDS = 256
MAX_OPS_PER_ROOM = 200_000

RoomKey = tuple[str, str]


@dataclass(frozen=True)
class Accepted:
    op: dict[str, Any]
    duplicate: bool


def _op(row: WhiteboardOpRow) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(row.body)
    return {**body, "seq": row.seq, "t": row.at_ms, "user_id": row.user_id}


class WhiteboardService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._sessions = sessions
        self._clock_ms = clock_ms
        self._boards: OrderedDict[RoomKey, Board] = OrderedDict()
        self._locks: dict[RoomKey, asyncio.Lock] = {}

    def _lock(self, room: RoomKey) -> asyncio.Lock:
        lock = self._locks.get(room)
        if lock is None:
            lock = self._locks[room] = asyncio.Lock()
        return lock

    async def _caught_up(self, s: AsyncSession, room: RoomKey) -> Board:
        board = self._boards.pop(room, None) or Board()
        rows = await s.scalars(
            select(WhiteboardOpRow)
            .where(
                WhiteboardOpRow.app_key == room[0],
                WhiteboardOpRow.room_id == room[1],
                WhiteboardOpRow.seq > board.seq,
            )
            .order_by(WhiteboardOpRow.seq)
        )
        for row in rows:
            board.apply(_op(row))
        self._boards[room] = board
        while len(self._boards) > MAX_CACHED_BOARDS:
            gone, _ = self._boards.popitem(last=False)
            lock = self._locks.get(gone)
            if lock is not None and not lock.locked():
                del self._locks[gone]
        return board

    async def apply(self, app_key: str, room_id: str, user_id: str, raw: Any) -> Accepted:
        """Check ``raw`` and store it as the room's next operation (or find it stored before).

        Raises :class:`~roomcast.domain.errors.InvalidArgument` for a malformed operation or one
        that does not fit the board (an unknown page, ...)."""
        op = normalize_op(raw)
        room = (app_key, room_id)
        async with self._lock(room):
            for _ in range(5):
                async with self._sessions() as s:
                    old = await s.scalar(
                        select(WhiteboardOpRow).where(
                            WhiteboardOpRow.app_key == app_key,
                            WhiteboardOpRow.room_id == room_id,
                            WhiteboardOpRow.op_id == op["op_id"],
                        )
                    )
                    if old is not None:
                        return Accepted(_op(old), duplicate=True)
                    board = await self._caught_up(s, room)
                    board.check(op)
                    if board.seq >= MAX_OPS_PER_ROOM:
                        raise LimitExceeded("the board holds too many operations", subject="whiteboard")
                    row = WhiteboardOpRow(
                        app_key=app_key,
                        room_id=room_id,
                        seq=board.seq + 1,
                        op_id=op["op_id"],
                        user_id=user_id,
                        at_ms=self._clock_ms(),
                        body=json.dumps(op, separators=(",", ":")),
                    )
                    s.add(row)
                    try:
                        await s.commit()
                    except IntegrityError:
                        await s.rollback()
                        continue  # another node took this seq (or this op_id): look again
                    accepted = _op(row)
                    board.apply(accepted)
                    return Accepted(accepted, duplicate=False)
        raise RuntimeError("the whiteboard is too busy to order this operation")

    async def ops(
        self,
        app_key: str,
        room_id: str,
        *,
        since: int = 0,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The room's operations after ``since`` (and up to ``until_ms``), in order."""
        q = (
            select(WhiteboardOpRow)
            .where(
                WhiteboardOpRow.app_key == app_key,
                WhiteboardOpRow.room_id == room_id,
                WhiteboardOpRow.seq > since,
            )
            .order_by(WhiteboardOpRow.seq)
        )
        if until_ms is not None:
            q = q.where(WhiteboardOpRow.at_ms <= until_ms)
        if limit is not None:
            q = q.limit(limit)
        async with self._sessions() as s:
            return [_op(r) for r in await s.scalars(q)]

    async def board(self, app_key: str, room_id: str) -> Board:
        async with self._lock((app_key, room_id)), self._sessions() as s:
            return await self._caught_up(s, (app_key, room_id))

    async def last_op_ms(self, app_key: str, room_id: str) -> int | None:
        """When the room's board last changed (None: never)."""
        async with self._sessions() as s:
            value = await s.scalar(
                select(func.max(WhiteboardOpRow.at_ms)).where(
                    WhiteboardOpRow.app_key == app_key, WhiteboardOpRow.room_id == room_id
                )
            )
        return int(value) if value is not None else None


class SignallingBoards:
    """The whiteboard as signalling sees it (``roomcast.rtc.signalling.WhiteboardStore``):
    refusals become ``ValueError`` with the message for the client."""

    def __init__(self, service: Callable[[], WhiteboardService]) -> None:
        self._service = service

    async def apply(self, app_key: str, room_id: str, user_id: str, op: Any) -> tuple[dict[str, Any], bool]:
        try:
            accepted = await self._service().apply(app_key, room_id, user_id, op)
        except RoomcastError as exc:
            raise ValueError(exc.message) from None
        return accepted.op, accepted.duplicate

    async def ops(self, app_key: str, room_id: str, since: int, limit: int) -> list[dict[str, Any]]:
        return await self._service().ops(app_key, room_id, since=since, limit=limit)

    def draft(self, op: Any) -> dict[str, Any]:
        try:
            checked = normalize_op(op)
        except RoomcastError as exc:
            raise ValueError(exc.message) from None
        if checked["kind"] not in SHAPES:
            raise ValueError("only shapes have drafts")
        return checked
