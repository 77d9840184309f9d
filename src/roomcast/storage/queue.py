"""The durable upload queue: recorded files reach object storage, and nothing is lost on the way.

Every file to upload is a row in the ``uploads`` table before any byte moves. A few workers take
due rows (``pending`` -> ``uploading``), upload, check the stored size, mark the row ``done`` and
only then remove the local copy (unless told to keep it). A failure puts the row back to
``pending`` with an exponential, jittered delay (1 s .. 5 min by default) and the local file kept;
after ``max_attempts`` (unlimited by default) it becomes ``failed`` with the error, still with the
local file. On start-up, rows left ``uploading`` by a crashed process go back to ``pending``, and
finished rows whose local copy or hooks were not handled yet are finished off.

Ordering: rows share an ``owner`` (a task id). A row enqueued with ``ordered=True`` is uploaded
only after every earlier row (smaller id) of its owner is done, so an HLS playlist never reaches
the store before its segments, and playlist versions never overtake each other. Unordered rows
(segments) upload in parallel. If an earlier row fails for good, waiting ordered rows fail too
(:meth:`UploadQueue.retry` puts them all back).

Completion: ``on_finished_tx(session, record)`` runs inside the very transaction that marks a row
done or failed, so what the owner reports about a file (its state, its event) commits with the
upload's completion: no crash point loses or repeats it. ``await queue.wait(upload_id)`` returns
when the row is finished (local copy handled), and the ``on_done`` / ``on_failed`` hooks run after
the commit, once per finished row per process (at least once overall: for local reactions only).

Retries and backup: a permanent error (``StorageError.retryable`` false: no such bucket, access
denied, bad keys) fails the row at once. Transient errors retry with backoff up to
``max_attempts``; then a row enqueued with ``fallback=True`` goes to the backup store (the media
library) instead of failing, together with the waiting rows of its owner for the same target.

Nodes: with a ``node_id`` the queue uploads only its own rows (their local files are on its disk);
:meth:`take_over` moves rows of nodes that are gone to it (see ``roomcast.services.nodes``), and
claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL plus a compare-and-set on the state. Without a
``node_id`` (a single process, the CLI) start-up resets every ``uploading`` row as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import and_, exists, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from roomcast.crypto import SecretBox, SecretBoxError
from roomcast.domain.errors import NotFound
from roomcast.log import event, register_secret
from roomcast.storage.base import (
    MAX_KEY_BYTES,
    ObjectInfo,
    ObjectStore,
    StorageError,
    check_key,
    guess_content_type,
)
from roomcast.storage.target import StorageOptions, StorageTarget, open_store
from roomcast.store.ownership import orphaned
from roomcast.store.tables import UploadRow, utcnow

log = logging.getLogger("roomcast.uploads")

UploadState = Literal["pending", "uploading", "done", "failed"]
PENDING: UploadState = "pending"
UPLOADING: UploadState = "uploading"
DONE: UploadState = "done"
FAILED: UploadState = "failed"
TERMINAL = (DONE, FAILED)

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class UploadQueueConfig:
    workers: int = 4
    """How many uploads run at once."""
    keep_local: bool = False
    """Keep local copies after a confirmed upload (per-upload override in :meth:`UploadQueue.enqueue`)."""
    max_attempts: int | None = None
    """Give up (state ``failed``) after this many attempts; ``None`` retries forever."""
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    backoff_jitter: float = 0.5
    """Each delay is reduced by a random fraction in [0, jitter) so retries of many files spread out."""
    poll_interval_s: float = 2.0
    """How often idle workers look for rows enqueued by other processes (the CLI)."""
    wait_poll_s: float = 5.0
    """How often :meth:`UploadQueue.wait` re-reads the row (for rows another process uploads); rows
    this process uploads wake their waiters at once."""
    stop_grace_s: float = 10.0
    """On stop, how long running uploads may take to finish before they are cancelled (and re-queued)."""
    max_open_stores: int = 16
    """Idle store clients (connection pools) kept open, least recently used closed first."""


@dataclass(frozen=True)
class UploadRecord:
    """One queued upload, as the database knows it (the target without credentials)."""

    id: int
    owner: str | None
    ordered: bool
    label: str | None
    target: StorageTarget
    local_path: Path
    key: str
    content_type: str
    keep_local: bool
    state: UploadState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    size: int | None
    etag: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    finalized_at: datetime | None
    node_id: str | None = None
    report: str | None = None
    fallback: bool = False
    backed_up: bool = False

    @property
    def done(self) -> bool:
        return self.state == DONE

    @property
    def failed(self) -> bool:
        return self.state == FAILED

    @property
    def finished(self) -> bool:
        """Done or failed, with the local copy handled and hooks run."""
        return self.state in TERMINAL and self.finalized_at is not None


Hook = Callable[[UploadRecord], Awaitable[None]]
TxHook = Callable[[AsyncSession, UploadRecord], Awaitable[None]]
"""Runs inside the transaction that finishes a row (done or failed); raising rolls it back."""


def _record(row: UploadRow) -> UploadRecord:
    return UploadRecord(
        id=row.id,
        owner=row.owner,
        ordered=row.ordered,
        label=row.label,
        target=StorageTarget.from_parts(json.loads(row.target)),
        local_path=Path(row.local_path),
        key=row.object_key,
        content_type=row.content_type,
        keep_local=row.keep_local,
        state=row.state,  # type: ignore[arg-type]
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        size=row.size,
        etag=row.etag,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        finalized_at=row.finalized_at,
        node_id=row.node_id,
        report=row.report,
        fallback=bool(row.fallback),
        backed_up=bool(row.backed_up),
    )


def _local_file(path: Path) -> tuple[Path, int]:
    path = path.absolute()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise StorageError(f"file to upload does not exist: {path}", kind="source_missing") from None
    if not path.is_file():
        raise StorageError(f"not a regular file: {path}", kind="source_missing")
    return path, st.st_size


def backoff_delay(attempts: int, config: UploadQueueConfig, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
    n = max(1, attempts)
    delay = min(config.backoff_max_s, config.backoff_base_s * (2.0 ** min(n - 1, 60)))
    r = (rng or random).random()
    return max(0.0, delay * (1.0 - config.backoff_jitter * r))


class _Claimed:
    """A row taken by this process, with what the upload needs."""

    __slots__ = ("content_type", "id", "keep_local", "key", "local_path", "owner", "sealed", "target_json")

    def __init__(self, row: UploadRow) -> None:
        self.id = row.id
        self.owner = row.owner
        self.key = row.object_key
        self.local_path = Path(row.local_path)
        self.content_type = row.content_type
        self.keep_local = row.keep_local
        self.target_json = row.target
        self.sealed = row.target_secrets_sealed


class UploadQueue:
    """Durable, retrying, ordered uploads of local files to storage targets."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        options: StorageOptions,
        config: UploadQueueConfig | None = None,
        *,
        on_done: Hook | None = None,
        on_failed: Hook | None = None,
        on_finished_tx: TxHook | None = None,
        store_factory: Callable[[StorageTarget, StorageOptions], ObjectStore] = open_store,
        node_id: str | None = None,
        backup_target: StorageTarget | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self.options = options
        self.config = config or UploadQueueConfig()
        self.on_done = on_done
        self.on_failed = on_failed
        self.on_finished_tx = on_finished_tx
        self.node_id = node_id
        self.backup_target = backup_target
        self._store_factory = store_factory
        self._stores: OrderedDict[StorageTarget, ObjectStore] = OrderedDict()
        self._store_users: dict[StorageTarget, int] = {}
        self._wake = asyncio.Event()
        self._pulse = asyncio.Event()
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._inflight: dict[asyncio.Task[None], int] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._dispatcher is not None and not self._dispatcher.done()

    async def start(self) -> None:
        """Recover what a previous process left behind, then start the workers."""
        if self.running:
            return
        self._stopping = False
        if self.node_id is None:
            await self.recover()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="upload-dispatcher")

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking rows; let running uploads finish for ``grace_s``, cancel and re-queue the rest."""
        self._stopping = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        grace = self.config.stop_grace_s if grace_s is None else grace_s
        tasks = list(self._inflight)
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=grace)
            ids = [self._inflight[t] for t in still if t in self._inflight]
            for t in still:
                t.cancel()
            await asyncio.gather(*still, return_exceptions=True)
            if ids:
                async with self._sessions.begin() as s:
                    await s.execute(
                        update(UploadRow)
                        .where(UploadRow.id.in_(ids), UploadRow.state == UPLOADING)
                        .values(state=PENDING, next_attempt_at=utcnow(), updated_at=utcnow())
                    )
                event(log, "upload.requeued_on_stop", level=logging.WARNING, ids=ids)
        for store in list(self._stores.values()):
            with contextlib.suppress(Exception):
                await store.close()
        self._stores.clear()
        self._store_users.clear()

    def wake(self) -> None:
        """Look for due rows now (after committing rows added with ``enqueue(session=...)``)."""
        self._wake.set()

    async def take_over(self) -> int:
        """Move to this node the rows of nodes that are gone, if their local files are here.

        Rows left ``uploading`` go back to pending; finished rows whose local copy and hooks were
        not handled are finished off. Returns how many rows this node took.
        """
        if self.node_id is None:
            return 0
        me = self.node_id
        async with self._sessions() as s:
            rows = (
                await s.execute(
                    select(UploadRow.id, UploadRow.node_id, UploadRow.local_path, UploadRow.state)
                    .where(orphaned(UploadRow.node_id, me))
                    .where(or_(UploadRow.state.not_in(TERMINAL), UploadRow.finalized_at.is_(None)))
                    .order_by(UploadRow.id)
                    .limit(10_000)
                )
            ).all()
        if not rows:
            return 0
        here = await asyncio.to_thread(lambda: {r.id for r in rows if Path(r.local_path).exists()})
        taken: list[int] = []
        unfinalized: list[int] = []
        now = utcnow()
        async with self._sessions.begin() as s:
            for r in rows:
                if r.id not in here and r.state not in TERMINAL:
                    continue  # its file is on another host: left for a node there
                owner = UploadRow.node_id.is_(None) if r.node_id is None else UploadRow.node_id == r.node_id
                values: dict[str, Any] = {"node_id": me, "updated_at": now}
                if r.state not in TERMINAL:  # a fresh start on the new node
                    values.update(state=PENDING, next_attempt_at=now)
                res = await s.execute(update(UploadRow).where(UploadRow.id == r.id, owner).values(**values))
                if int(getattr(res, "rowcount", 0) or 0) == 1:
                    taken.append(r.id)
                    if r.state in TERMINAL:
                        unfinalized.append(r.id)
        for uid in unfinalized:
            await self._finalize(uid)
        if taken:
            event(log, "upload.taken_over", node_id=me, rows=len(taken))
            self._wake.set()
        return len(taken)

    async def recover(self) -> int:
        """Single process: reset rows a crash left ``uploading``; finish off unfinalized rows.

        Returns how many rows went back to pending.
        """
        now = utcnow()
        async with self._sessions.begin() as s:
            res = await s.execute(
                update(UploadRow)
                .where(UploadRow.state == UPLOADING)
                .values(state=PENDING, next_attempt_at=now, updated_at=now)
            )
            reset = int(getattr(res, "rowcount", 0) or 0)
        async with self._sessions() as s:
            ids = list(
                (
                    await s.execute(
                        select(UploadRow.id)
                        .where(UploadRow.state.in_(TERMINAL), UploadRow.finalized_at.is_(None))
                        .order_by(UploadRow.id)
                    )
                ).scalars()
            )
        for uid in ids:
            await self._finalize(uid)
        if reset or ids:
            event(log, "upload.recovered", requeued=reset, finalized=len(ids))
        return reset

    # -- enqueue and queries ------------------------------------------------------------------------

    async def enqueue(
        self,
        target: StorageTarget,
        local_path: Path | str,
        key: str,
        *,
        content_type: str | None = None,
        owner: str | None = None,
        ordered: bool = False,
        label: str | None = None,
        keep_local: bool | None = None,
        report: str | None = None,
        fallback: bool = False,
        session: AsyncSession | None = None,
    ) -> int:
        """Queue ``local_path`` for upload to ``key`` in ``target``; returns the upload id.

        The file must be complete and must not change afterwards (write a new file for a new
        version of a playlist). The row is committed before this returns (from here on the file
        survives restarts), or, with ``session``, in the caller's transaction: then call
        :meth:`wake` after the commit. ``report`` is handed to ``on_finished_tx`` with the row.
        """
        check_key(key)
        full_len = len((target.prefix.strip("/") + "/" + key).encode())
        if full_len > MAX_KEY_BYTES:
            raise StorageError(
                f"object key with prefix is longer than {MAX_KEY_BYTES} bytes", retryable=False
            )
        path, size = await asyncio.to_thread(_local_file, Path(local_path))
        secrets = target.secrets()
        for v in secrets.values():
            register_secret(v)
        now = utcnow()
        row = UploadRow(
            owner=owner,
            ordered=bool(ordered and owner is not None),
            label=label,
            target=target.public_json(),
            target_secrets_sealed=self._box.seal(json.dumps(secrets)) if secrets else None,
            local_path=str(path),
            object_key=key,
            content_type=content_type or guess_content_type(key),
            keep_local=self.config.keep_local if keep_local is None else keep_local,
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
            node_id=self.node_id,
            report=report,
            fallback=fallback,
            backed_up=False,
        )

        async def add(s: AsyncSession) -> int:
            s.add(row)
            await s.flush()
            if row.ordered:
                failed_before = (
                    await s.execute(
                        select(UploadRow.id)
                        .where(UploadRow.owner == owner, UploadRow.id < row.id, UploadRow.state == FAILED)
                        .limit(1)
                    )
                ).scalar_one_or_none()
                if failed_before is not None:
                    row.state = FAILED
                    row.finished_at = now
                    row.last_error = f"an earlier upload of this owner failed (#{failed_before})"
                    if session is not None:
                        # Nothing to clean up for a failed row (its local copy stays) and the
                        # caller's transaction decides: it is finished as it commits.
                        row.finalized_at = now
                    await s.flush()
                    if self.on_finished_tx is not None:
                        await self.on_finished_tx(s, _record(row))
            return row.id

        if session is not None:
            uid = await add(session)
        else:
            async with self._sessions.begin() as s:
                uid = await add(s)
        event(log, "upload.queued", id=uid, owner=owner, key=key, bytes=size)
        if row.state == FAILED and session is None:
            await self._finalize(uid)
        self._wake.set()
        return uid

    async def get(self, upload_id: int) -> UploadRecord:
        async with self._sessions() as s:
            row = await s.get(UploadRow, upload_id)
            if row is None:
                raise NotFound(f"upload {upload_id} does not exist", subject="upload")
            return _record(row)

    async def records(
        self, *, owner: str | None = None, state: UploadState | None = None, limit: int = 1000
    ) -> list[UploadRecord]:
        q = select(UploadRow).order_by(UploadRow.id).limit(limit)
        if owner is not None:
            q = q.where(UploadRow.owner == owner)
        if state is not None:
            q = q.where(UploadRow.state == state)
        async with self._sessions() as s:
            return [_record(r) for r in (await s.execute(q)).scalars()]

    async def counts(self, owner: str | None = None) -> dict[str, int]:
        """Rows per state (every state present, zero if none)."""
        q = select(UploadRow.state, func.count()).group_by(UploadRow.state)
        if owner is not None:
            q = q.where(UploadRow.owner == owner)
        out: dict[str, int] = {PENDING: 0, UPLOADING: 0, DONE: 0, FAILED: 0}
        async with self._sessions() as s:
            for st, n in (await s.execute(q)).all():
                out[str(st)] = int(n)
        return out

    async def retry(self, upload_id: int | None = None, *, owner: str | None = None) -> int:
        """Put failed rows (one id, or all of an owner, or all) back to pending with fresh attempts."""
        now = utcnow()
        q = update(UploadRow).where(UploadRow.state == FAILED)
        if upload_id is not None:
            q = q.where(UploadRow.id == upload_id)
        if owner is not None:
            q = q.where(UploadRow.owner == owner)
        async with self._sessions.begin() as s:
            res = await s.execute(
                q.values(
                    state=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    updated_at=now,
                    finished_at=None,
                    finalized_at=None,
                )
            )
        n = int(getattr(res, "rowcount", 0) or 0)
        if n:
            self._wake.set()
        return n

    async def wait(self, upload_id: int) -> UploadRecord:
        """Wait until the upload is finished (done or failed) and return its record.

        Bound it with ``asyncio.timeout``. Works for rows another process uploads too (the
        database is re-read every ``wait_poll_s``).
        """
        loop = asyncio.get_running_loop()
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(upload_id, []).append(fut)
            try:
                rec = await self.get(upload_id)
                if rec.finished:
                    return rec
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, self.config.wait_poll_s)
            finally:
                lst = self._waiters.get(upload_id)
                if lst is not None:
                    with contextlib.suppress(ValueError):
                        lst.remove(fut)
                    if not lst:
                        self._waiters.pop(upload_id, None)

    async def wait_owner(self, owner: str) -> list[UploadRecord]:
        """Wait until every row of ``owner`` is finished; return them all (check for failures).

        Bound it with ``asyncio.timeout``.
        """
        while True:
            pulse = self._pulse
            rows = await self.records(owner=owner, limit=1_000_000)
            if all(r.finished for r in rows):
                return rows
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pulse.wait(), self.config.poll_interval_s)

    # -- the workers --------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        workers = max(1, self.config.workers)
        while not self._stopping:
            self._wake.clear()
            free = workers - len(self._inflight)
            if free <= 0:
                await self._wake.wait()  # a running upload ended
                continue
            try:
                claimed = await self._claim(free)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                event(log, "upload.claim_error", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self.config.poll_interval_s)
                continue
            for c in claimed:
                task = asyncio.create_task(self._process(c), name=f"upload-{c.id}")
                self._inflight[task] = c.id
                task.add_done_callback(self._task_done)
            if claimed:
                continue
            try:
                budget = await self._idle_budget()
            except Exception:
                budget = self.config.poll_interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), budget)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            event(log, "upload.worker_error", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")

    async def _idle_budget(self) -> float:
        """Seconds until the earliest pending row is due (capped by the poll interval)."""
        async with self._sessions() as s:
            due = (
                await s.execute(select(func.min(UploadRow.next_attempt_at)).where(UploadRow.state == PENDING))
            ).scalar_one_or_none()
        if due is None:
            return self.config.poll_interval_s
        if isinstance(due, str):  # SQLite aggregate results bypass the column type
            due = datetime.fromisoformat(due)
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        left = (due - utcnow()).total_seconds()
        return max(0.01, min(self.config.poll_interval_s, left + 0.005))

    async def _claim(self, limit: int) -> list[_Claimed]:
        """Take up to ``limit`` due, unblocked rows (compare-and-set: one queue wins each row)."""
        now = utcnow()
        prior = aliased(UploadRow)
        blocked = exists().where(prior.owner == UploadRow.owner, prior.id < UploadRow.id, prior.state != DONE)
        q = (
            select(UploadRow.id)
            .where(
                UploadRow.state == PENDING,
                UploadRow.next_attempt_at <= now,
                or_(UploadRow.ordered.is_(False), UploadRow.owner.is_(None), not_(blocked)),
            )
            .order_by(UploadRow.next_attempt_at, UploadRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=UploadRow)
        )
        if self.node_id is not None:
            # Rows enqueued with no node (the CLI) may be taken by any node.
            q = q.where(or_(UploadRow.node_id == self.node_id, UploadRow.node_id.is_(None)))
        async with self._sessions.begin() as s:
            ids = list((await s.execute(q)).scalars())
            won: list[int] = []
            for uid in ids:
                res = await s.execute(
                    update(UploadRow)
                    .where(UploadRow.id == uid, UploadRow.state == PENDING)
                    .values(
                        state=UPLOADING,
                        attempts=UploadRow.attempts + 1,
                        updated_at=now,
                        node_id=self.node_id if self.node_id is not None else UploadRow.node_id,
                    )
                )
                if int(getattr(res, "rowcount", 0) or 0) == 1:
                    won.append(uid)
            if not won:
                return []
            rows = (await s.execute(select(UploadRow).where(UploadRow.id.in_(won)))).scalars()
            by_id = {r.id: _Claimed(r) for r in rows}
        return [by_id[i] for i in won if i in by_id]

    def _target(self, c: _Claimed) -> StorageTarget:
        secrets: dict[str, str] = {}
        if c.sealed:
            try:
                secrets = json.loads(self._box.open(c.sealed))
            except SecretBoxError as exc:
                raise StorageError(str(exc), retryable=False, code="SealedSecret") from None
        for v in secrets.values():
            register_secret(v)
        return StorageTarget.from_parts(json.loads(c.target_json), secrets)

    def _acquire_store(self, target: StorageTarget) -> ObjectStore:
        store = self._stores.get(target)
        if store is None:
            store = self._store_factory(target, self.options)
            self._stores[target] = store
        self._stores.move_to_end(target)
        self._store_users[target] = self._store_users.get(target, 0) + 1
        return store

    async def _release_store(self, target: StorageTarget) -> None:
        self._store_users[target] = self._store_users.get(target, 1) - 1
        if len(self._stores) <= self.config.max_open_stores:
            return
        for t in list(self._stores):
            if len(self._stores) <= self.config.max_open_stores:
                break
            if self._store_users.get(t, 0) <= 0:
                store = self._stores.pop(t)
                self._store_users.pop(t, None)
                with contextlib.suppress(Exception):
                    await store.close()

    async def _process(self, c: _Claimed) -> None:
        started = time.monotonic()
        try:
            target = self._target(c)
        except Exception as exc:
            await self._failed_attempt(c, exc, [])
            return
        secrets = list(target.secrets().values())
        store = self._acquire_store(target)
        try:
            try:
                before = await asyncio.to_thread(os.stat, c.local_path)
            except FileNotFoundError:
                raise StorageError(f"local file is missing: {c.local_path}", kind="source_missing") from None
            info: ObjectInfo = await store.put_file(c.local_path, c.key, c.content_type)
            if info.size != before.st_size:
                raise StorageError(f"stored size {info.size} differs from the local size {before.st_size}")
            after = await asyncio.to_thread(os.stat, c.local_path)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise StorageError("the local file changed during the upload; uploading it again")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed_attempt(c, exc, secrets)
            return
        finally:
            await self._release_store(target)
        now = utcnow()
        async with self._sessions.begin() as s:
            row = await s.get(UploadRow, c.id)
            if row is None:  # deleted meanwhile (an operator cleaning up): nothing to record
                return
            if row.state != UPLOADING or (self.node_id is not None and row.node_id != self.node_id):
                # Another node took the row over meanwhile (this one lost its lease): it reports.
                event(log, "upload.lost_row", level=logging.WARNING, id=c.id, key=c.key)
                return
            row.state = DONE
            row.size = before.st_size
            row.mtime_ns = before.st_mtime_ns
            row.etag = (info.etag or "")[:128] or None
            if not row.backed_up:
                row.last_error = None
            row.updated_at = now
            row.finished_at = now
            await s.flush()
            rec = _record(row)
            if self.on_finished_tx is not None:
                await self.on_finished_tx(s, rec)
        event(
            log,
            "upload.done",
            id=c.id,
            owner=c.owner,
            key=c.key,
            bytes=before.st_size,
            seconds=round(time.monotonic() - started, 3),
        )
        await self._finalize(c.id, (rec, before.st_size, before.st_mtime_ns))

    async def _failed_attempt(self, c: _Claimed, exc: BaseException, secrets: Iterable[str]) -> None:
        msg = exc.message if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}"
        for secret in secrets:
            if secret:
                msg = msg.replace(secret, "***")
        msg = msg[:MAX_ERROR_CHARS]
        retryable = exc.retryable if isinstance(exc, StorageError) else True
        now = utcnow()
        async with self._sessions.begin() as s:
            row = await s.get(UploadRow, c.id)
            if row is None:
                return
            attempts = row.attempts
            give_up = not retryable or (
                self.config.max_attempts is not None and attempts >= self.config.max_attempts
            )
            row.last_error = msg
            row.updated_at = now
            cascaded: list[int] = []
            backup = (
                self.backup_target if give_up and retryable and row.fallback and not row.backed_up else None
            )
            if backup is not None:
                moved = await self._to_backup(s, row, backup, now)
                give_up = False
                delay = 0.0
            elif give_up:
                row.state = FAILED
                row.finished_at = now
                if row.owner is not None:
                    # Ordered rows waiting behind this one would wait forever: fail them too.
                    cascaded = list(
                        (
                            await s.execute(
                                select(UploadRow.id).where(
                                    and_(
                                        UploadRow.owner == row.owner,
                                        UploadRow.id > row.id,
                                        UploadRow.ordered.is_(True),
                                        UploadRow.state == PENDING,
                                    )
                                )
                            )
                        ).scalars()
                    )
                    if cascaded:
                        await s.execute(
                            update(UploadRow)
                            .where(UploadRow.id.in_(cascaded), UploadRow.state == PENDING)
                            .values(
                                state=FAILED,
                                finished_at=now,
                                updated_at=now,
                                last_error=f"an earlier upload of this owner failed (#{row.id})",
                            )
                        )
                await s.flush()
                if self.on_finished_tx is not None:
                    await self.on_finished_tx(s, _record(row))
                    for other in (
                        await s.execute(select(UploadRow).where(UploadRow.id.in_(cascaded)))
                    ).scalars():
                        await self.on_finished_tx(s, _record(other))
                delay = 0.0
            else:
                delay = backoff_delay(attempts, self.config)
                row.state = PENDING
                row.next_attempt_at = now + timedelta(seconds=delay)
        if backup is not None:
            event(
                log,
                "upload.backup",
                level=logging.ERROR,
                id=c.id,
                owner=c.owner,
                key=c.key,
                attempts=attempts,
                rows=moved,
                error=msg,
            )
            self._wake.set()
        elif give_up:
            event(
                log,
                "upload.failed",
                level=logging.ERROR,
                id=c.id,
                owner=c.owner,
                key=c.key,
                attempts=attempts,
                error=msg,
            )
            for uid in [c.id, *cascaded]:
                await self._finalize(uid)
        else:
            event(
                log,
                "upload.retry",
                level=logging.WARNING,
                id=c.id,
                owner=c.owner,
                key=c.key,
                attempts=attempts,
                retry_in_s=round(delay, 3),
                error=msg,
            )

    async def _to_backup(self, s: AsyncSession, row: UploadRow, backup: StorageTarget, now: datetime) -> int:
        """Send ``row`` and its owner's waiting rows for the same target to the backup store."""
        rows = [row]
        if row.owner is not None:
            rows += list(
                (
                    await s.execute(
                        select(UploadRow).where(
                            UploadRow.owner == row.owner,
                            UploadRow.id != row.id,
                            UploadRow.target == row.target,
                            UploadRow.state == PENDING,
                            UploadRow.fallback.is_(True),
                            UploadRow.backed_up.is_(False),
                        )
                    )
                ).scalars()
            )
        for r in rows:
            r.target = backup.public_json()
            r.target_secrets_sealed = None
            r.object_key = backup_key(r.owner, r.object_key)
            r.backed_up = True
            r.attempts = 0
            r.state = PENDING
            r.next_attempt_at = now
            r.updated_at = now
            if r is not row:
                r.last_error = f"moved to backup storage with #{row.id}: {row.last_error or ''}"[
                    :MAX_ERROR_CHARS
                ]
        return len(rows)

    async def _finalize(
        self, upload_id: int, loaded: tuple[UploadRecord, int | None, int | None] | None = None
    ) -> None:
        """For a finished row: remove the local copy (done only), run the hooks, wake the waiters.

        ``loaded`` is (record, uploaded size, uploaded mtime) when the caller has just written them.
        """
        if loaded is None:
            async with self._sessions() as s:
                row = await s.get(UploadRow, upload_id)
                if row is None or row.state not in TERMINAL or row.finalized_at is not None:
                    self._notify(upload_id)
                    return
                loaded = (_record(row), row.size, row.mtime_ns)
        rec, size, mtime_ns = loaded
        if rec.state == DONE and not rec.keep_local:
            await asyncio.to_thread(self._remove_local, rec, size, mtime_ns)
        hook = self.on_done if rec.state == DONE else self.on_failed
        if hook is not None:
            # A failing hook is logged, not retried: the upload itself is finished either way.
            try:
                await hook(rec)
            except Exception as exc:
                event(
                    log,
                    "upload.hook_error",
                    level=logging.ERROR,
                    id=upload_id,
                    error=f"{type(exc).__name__}: {exc}",
                )
        async with self._sessions.begin() as s:
            await s.execute(
                update(UploadRow)
                .where(UploadRow.id == upload_id, UploadRow.finalized_at.is_(None))
                .values(finalized_at=utcnow())
            )
        self._notify(upload_id)

    @staticmethod
    def _remove_local(rec: UploadRecord, size: int | None, mtime_ns: int | None) -> None:
        try:
            st = rec.local_path.stat()
        except FileNotFoundError:
            return
        if size is not None and (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            # Not the file that was uploaded (rewritten since, or the path reused): keep it.
            event(
                log, "upload.local_changed_kept", level=logging.WARNING, id=rec.id, path=str(rec.local_path)
            )
            return
        with contextlib.suppress(FileNotFoundError):
            rec.local_path.unlink()

    def _notify(self, upload_id: int) -> None:
        for fut in self._waiters.get(upload_id, []):
            if not fut.done():
                fut.set_result(None)
        pulse, self._pulse = self._pulse, asyncio.Event()
        pulse.set()


def backup_key(owner: str | None, key: str) -> str:
    """Where a file that could not reach its target is kept in the backup store."""
    return f"backup/{owner or 'unowned'}/{key}"


def queue_from_runtime(runtime: Any, config: UploadQueueConfig | None = None, **hooks: Any) -> UploadQueue:
    """Build the node's queue from a :class:`roomcast.runtime.Runtime` (settings, database, box)."""
    return UploadQueue(
        runtime.db.sessions,
        runtime.box,
        StorageOptions.from_settings(runtime.settings),
        config,
        **hooks,
    )
