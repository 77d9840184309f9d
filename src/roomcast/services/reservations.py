"""Hands out and checks recording reservations."""

from __future__ import annotations

import secrets
from dataclasses import replace

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.domain.errors import AlreadyExists, NotFound
from roomcast.domain.reservation import RESERVATION_TTL, Reservation
from roomcast.store.tables import AppRow, ReservationRow, utcnow


def _new_id() -> str:
    # Same shape as the vendor's example: 60 hex, a dash, 16 hex.
    return f"{secrets.token_hex(30)}-{secrets.token_hex(8)}"


class ReservationService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, sdk_app_id: int, room_id: str | None = None) -> Reservation:
        async with self._sessions.begin() as s:
            app_pk = (
                await s.execute(select(AppRow.id).where(AppRow.sdk_app_id == sdk_app_id))
            ).scalar_one_or_none()
            if app_pk is None:
                raise NotFound(f"app {sdk_app_id} does not exist", subject="app")
            now = utcnow()
            row = ReservationRow(
                app_pk=app_pk,
                reservation_id=_new_id(),
                room_id=room_id,
                created_at=now,
                expires_at=now + RESERVATION_TTL,
            )
            s.add(row)
            return Reservation(row.reservation_id, sdk_app_id, room_id, now, row.expires_at)

    async def get(self, sdk_app_id: int, reservation_id: str) -> Reservation:
        async with self._sessions() as s:
            row = (
                await s.execute(
                    select(ReservationRow)
                    .join(AppRow, ReservationRow.app_pk == AppRow.id)
                    .where(ReservationRow.reservation_id == reservation_id, AppRow.sdk_app_id == sdk_app_id)
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFound("reservation does not exist", subject="reservation")
            return Reservation(
                row.reservation_id, sdk_app_id, row.room_id, row.created_at, row.expires_at, row.task_id
            )

    async def claim(self, sdk_app_id: int, reservation_id: str, marker: str) -> Reservation:
        """Take an unused, unexpired reservation for one start (compare-and-set on ``task_id``,
        set to ``marker`` until :meth:`bind`). Raises ``NotFound`` (unknown, another app's or
        expired) or ``AlreadyExists`` (used, or claimed by a concurrent start)."""
        found = await self.get(sdk_app_id, reservation_id)
        now = utcnow()
        if found.task_id is not None:
            raise AlreadyExists("the reservation was used", subject="reservation")
        if now >= found.expires_at:
            raise NotFound("the reservation expired", subject="reservation")
        async with self._sessions.begin() as s:
            result = await s.execute(
                update(ReservationRow)
                .where(
                    ReservationRow.reservation_id == reservation_id,
                    ReservationRow.task_id.is_(None),
                    ReservationRow.expires_at > now,
                )
                .values(task_id=marker)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise AlreadyExists("the reservation was used", subject="reservation")
        return replace(found, task_id=marker)

    async def bind(self, reservation_id: str, marker: str, task_id: str | None) -> None:
        """Replace a claim's marker with the task it started (``None``: give the claim back)."""
        async with self._sessions.begin() as s:
            await s.execute(
                update(ReservationRow)
                .where(ReservationRow.reservation_id == reservation_id, ReservationRow.task_id == marker)
                .values(task_id=task_id)
            )
