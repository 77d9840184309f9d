"""Callbacks as an operator sees them: what was sent where, its delivery state, and redelivery.

Reads and updates the outbox table (``callbacks``); the deliverer in :mod:`roomcast.events.outbox`
picks a row that is due again on its next poll (or at once when notified).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.domain.errors import NotFound
from roomcast.store.tables import CallbackRow, utcnow

REDELIVERY_WINDOW_S = 3600.0
"""A redelivered callback is retried (with the usual backoff) for this long."""


@dataclass(frozen=True)
class CallbackView:
    event_id: str
    sdk_app_id: str
    kind: str
    url: str
    state: str  # pending | delivered | failed
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    body: Any = None
    """The payload as sent (parsed JSON when it is JSON); only in :meth:`CallbackAdmin.get`."""


def _view(row: CallbackRow, with_body: bool) -> CallbackView:
    body: Any = None
    if with_body:
        try:
            body = json.loads(row.body)
        except ValueError:
            body = row.body
    return CallbackView(
        event_id=row.event_id,
        sdk_app_id=row.app_key,
        kind=row.kind,
        url=row.url,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        body=body,
    )


class CallbackAdmin:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list(
        self,
        *,
        app_keys: Collection[str] | None = None,
        state: str | None = None,
        limit: int = 100,
        with_body: bool = False,
    ) -> list[CallbackView]:
        """Newest first; ``app_keys`` (sdk_app_ids as strings) limits to one tenant's apps."""
        q = select(CallbackRow)
        if app_keys is not None:
            q = q.where(CallbackRow.app_key.in_(list(app_keys)))
        if state is not None:
            q = q.where(CallbackRow.state == state)
        q = q.order_by(CallbackRow.id.desc()).limit(limit)
        async with self._sessions() as s:
            return [_view(r, with_body) for r in (await s.execute(q)).scalars()]

    async def get(self, event_id: str, *, app_keys: Collection[str] | None = None) -> CallbackView:
        async with self._sessions() as s:
            row = await self._row(s, event_id, app_keys)
            return _view(row, True)

    async def redeliver(self, event_id: str, *, app_keys: Collection[str] | None = None) -> CallbackView:
        """Send a callback again (delivered or given up on): due now, with a fresh retry window."""
        async with self._sessions.begin() as s:
            row = await self._row(s, event_id, app_keys)
            now = utcnow()
            row.state = "pending"
            row.next_attempt_at = now
            row.expires_at = now + timedelta(seconds=REDELIVERY_WINDOW_S)
            row.delivered_at = None
            await s.flush()
            return _view(row, True)

    @staticmethod
    async def _row(s: AsyncSession, event_id: str, app_keys: Collection[str] | None) -> CallbackRow:
        row = (
            await s.execute(select(CallbackRow).where(CallbackRow.event_id == event_id))
        ).scalar_one_or_none()
        if row is None or (app_keys is not None and row.app_key not in app_keys):
            raise NotFound(f"callback {event_id} does not exist", subject="callback")
        return row
