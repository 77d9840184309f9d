"""Event callbacks: a transactional outbox and a deliverer with retries.

A callback is written to the ``callbacks`` table in the same transaction as the state change it
reports (:meth:`CallbackOutbox.add`), so an event is never lost and never sent for a change that
did not commit. Writing is idempotent per event id (an insert that does nothing on a conflict), so
a producer that replays after a crash, with ids derived from what the event reports, adds nothing.
Workers POST due rows; a 2xx answer marks a row delivered, anything else schedules
a retry with exponential backoff until the row is too old. Delivery is at least once: a crash
between the POST and the commit sends the event again, so every body carries a stable event id
for receivers to drop duplicates.

The body and headers (vendor signature included) are fixed when the row is written; the dialect
adapters build them (see ``roomcast.api.*.callbacks``), nothing here knows a vendor format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.log import event
from roomcast.net.urls import UrlPolicy, UrlRefused
from roomcast.store.tables import CallbackRow, utcnow

log = logging.getLogger("roomcast.callbacks")


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again. The first retry is immediate (as TRTC does), then backoff with jitter."""

    timeout_s: float = 5.0
    first_delay_s: float = 10.0
    max_delay_s: float = 300.0
    max_age_s: float = 3600.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed tries."""
        if attempts <= 1:
            return 0.0
        base = min(self.max_delay_s, self.first_delay_s * 2.0 ** (attempts - 2))
        return float(base * (0.8 + 0.4 * random.random()))


@dataclass(frozen=True)
class Callback:
    event_id: str
    app_key: str
    kind: str
    url: str
    body: bytes
    headers: Mapping[str, str]
    task_id: str | None = None


class CallbackOutbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policy: RetryPolicy | None = None,
        *,
        workers: int = 4,
        poll_s: float = 1.0,
        node_id: str | None = None,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self.node_id = node_id
        self.policy = policy or RetryPolicy()
        self.url_policy = url_policy or UrlPolicy()
        """Where callbacks may go; checked again at each delivery (DNS may have changed)."""
        self._workers = workers
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._claim_lock = asyncio.Lock()

    # -- writing ---------------------------------------------------------------------------------
    async def add(self, s: AsyncSession, cb: Callback, now: datetime | None = None) -> bool:
        """Queue ``cb`` inside the caller's transaction; call :meth:`notify` after it commits.

        Returns False when a callback with this event id exists already (nothing is written)."""
        now = now or utcnow()
        values = {
            "event_id": cb.event_id,
            "app_key": cb.app_key,
            "kind": cb.kind,
            "url": cb.url,
            "body": cb.body.decode("utf-8"),
            "headers": json.dumps(dict(cb.headers)),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": now + timedelta(seconds=self.policy.max_age_s),
            "created_at": now,
            "task_id": cb.task_id,
        }
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        res = await s.execute(
            insert(CallbackRow).values(**values).on_conflict_do_nothing(index_elements=["event_id"])
        )
        return int(getattr(res, "rowcount", 0) or 0) == 1

    async def enqueue(self, cb: Callback) -> bool:
        """Queue ``cb`` in a transaction of its own (idempotent per event id)."""
        async with self._sessions.begin() as s:
            added = await self.add(s, cb)
        self.notify()
        return added

    def notify(self) -> None:
        self._wake.set()

    # -- delivering ------------------------------------------------------------------------------
    async def start(self) -> None:
        # No proxies from the environment: the request must go to the address the policy checked.
        self._client = httpx.AsyncClient(
            timeout=self.policy.timeout_s, follow_redirects=False, trust_env=False
        )
        self._tasks = [
            asyncio.create_task(self._worker(i), name=f"callbacks-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _claim(self) -> CallbackRow | None:
        """Take the oldest due row, leasing it so no other worker takes it meanwhile."""
        async with self._claim_lock, self._sessions.begin() as s:
            now = utcnow()
            row = (
                await s.execute(
                    select(CallbackRow)
                    .where(CallbackRow.state == "pending", CallbackRow.next_attempt_at <= now)
                    .order_by(CallbackRow.next_attempt_at, CallbackRow.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            if now >= row.expires_at:
                row.state = "failed"
                row.last_error = (row.last_error or "") + " (gave up: too old)"
                event(log, "callback.gave_up", event_id=row.event_id, attempts=row.attempts, kind=row.kind)
                return None
            # Lease: if this process dies mid-delivery, the row becomes due again after this.
            row.next_attempt_at = now + timedelta(seconds=self.policy.timeout_s * 3)
            row.attempts += 1
            row.claimed_by = self.node_id
            await s.flush()
            s.expunge(row)
            return row

    async def _worker(self, index: int) -> None:
        while True:
            try:
                row = await self._claim()
            except Exception:
                log.exception("callback.claim_failed")
                row = None
            if row is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)
                continue
            await self._deliver(row)

    async def _deliver(self, row: CallbackRow) -> None:
        assert self._client is not None
        error: str | None = None
        try:
            headers = {"Content-Type": "application/json", **json.loads(row.headers)}
            resp = await self.url_policy.send(
                self._client, "POST", row.url, content=row.body.encode("utf-8"), headers=headers
            )
            if not 200 <= resp.status_code < 300:
                error = f"HTTP {resp.status_code}"  # a redirect (3xx) is not followed: a failure
        except UrlRefused as exc:  # checked at delivery: the URL or its DNS answer is not allowed
            error = f"refused URL: {exc}"[:500]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        except Exception as exc:  # a bad URL must never kill the worker
            error = f"{type(exc).__name__}"
        async with self._sessions.begin() as s:
            current = await s.get(CallbackRow, row.id)
            if current is None:
                return
            if error is None:
                current.state = "delivered"
                current.delivered_at = utcnow()
                current.last_error = None
                event(log, "callback.delivered", event_id=row.event_id, kind=row.kind, attempts=row.attempts)
            else:
                current.last_error = error
                current.next_attempt_at = utcnow() + timedelta(seconds=self.policy.delay(row.attempts))
                event(
                    log,
                    "callback.retry",
                    level=logging.WARNING,
                    event_id=row.event_id,
                    kind=row.kind,
                    attempts=row.attempts,
                    error=error,
                )
        if error is not None:
            self.notify()

    # -- inspection ------------------------------------------------------------------------------
    async def states(self, app_key: str | None = None) -> dict[str, str]:
        async with self._sessions() as s:
            q = select(CallbackRow.event_id, CallbackRow.state)
            if app_key is not None:
                q = q.where(CallbackRow.app_key == app_key)
            return {eid: st for eid, st in (await s.execute(q)).all()}
