"""Hands out and checks recording reservations."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.domain.errors import NotFound
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
