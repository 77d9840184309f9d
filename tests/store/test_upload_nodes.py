"""The upload queue with nodes: completion reported in the upload's own transaction (no crash point
loses or repeats it), permanent errors fail at once, transient ones end in the backup store, and
two nodes' queues on one database never touch each other's live rows."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roomcast.crypto import SecretBox
from roomcast.services.nodes import NodeRegistry
from roomcast.storage import LocalStore, ObjectInfo, ObjectStore, StorageError, StorageOptions, StorageTarget
from roomcast.storage.queue import UploadQueue, UploadQueueConfig, UploadRecord, backup_key
from roomcast.store.db import Database
from roomcast.store.tables import NodeRow, UploadRow, utcnow

FAST = UploadQueueConfig(
    workers=2,
    backoff_base_s=0.02,
    backoff_max_s=0.05,
    poll_interval_s=0.05,
    stop_grace_s=1.0,
    wait_poll_s=0.1,
)
BACKUP = StorageTarget(bucket="library")


def _file(folder: Path, name: str, size: int = 1024) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(os.urandom(size))
    return p


class _Reports:
    """What an owner records in the finishing transaction: one row per report, rolled back with it."""

    def __init__(self) -> None:
        self.crash_next = 0
        self.seen: list[tuple[int, str, bool]] = []

    async def hook(self, s: AsyncSession, rec: UploadRecord) -> None:
        if self.crash_next:
            self.crash_next -= 1
            raise RuntimeError("the process died between the store's answer and the report")
        # A durable effect in the same transaction: the row's label is rewritten.
        await s.execute(update(UploadRow).where(UploadRow.id == rec.id).values(label=f"reported:{rec.state}"))
        self.seen.append((rec.id, rec.state, rec.backed_up))


class _FailingStore(LocalStore):
    def __init__(self, root: Path, error: StorageError, fail_times: int = 10**9) -> None:
        super().__init__(root)
        self.error = error
        self.fail_times = fail_times
        self.calls = 0

    async def put_file(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise self.error
        return await super().put_file(path, key, content_type)


async def _labels(db: Database) -> list[str | None]:
    async with db.sessions() as s:
        return list((await s.execute(select(UploadRow.label).order_by(UploadRow.id))).scalars())


async def test_crash_between_upload_and_report_reports_once(
    db: Database, box: SecretBox, tmp_path: Path
) -> None:
    opts = StorageOptions(local_root=tmp_path / "storage")
    reports = _Reports()
    reports.crash_next = 1
    q = UploadQueue(db.sessions, box, opts, FAST, on_finished_tx=reports.hook, node_id="n-a")
    await q.start()
    try:
        f = _file(tmp_path / "w", "a.mp4")
        uid = await q.enqueue(StorageTarget(bucket="b"), f, "t/a.mp4", owner="t", report="file")
        # The object reached the store but the finishing transaction rolled back: the row is still
        # 'uploading' (as after a crash) and nothing was reported.
        for _ in range(100):
            if (await LocalStore(tmp_path / "storage" / "b").exists("t/a.mp4")) and not reports.seen:
                break
            await asyncio.sleep(0.02)
        assert (await q.get(uid)).state == "uploading" and reports.seen == []
    finally:
        await q.stop()
    # The node is gone; the next one takes the row over, uploads again (idempotent) and reports once.
    async with db.sessions.begin() as s:
        s.add(
            NodeRow(
                node_id="n-a",
                host="elsewhere",
                pid=1,
                state="stopped",
                started_at=utcnow(),
                heartbeat_at=utcnow(),
                lease_expires_at=utcnow(),
            )
        )
    reg = NodeRegistry(db.sessions, lease_s=5)
    await reg.register()
    q2 = UploadQueue(db.sessions, box, opts, FAST, on_finished_tx=reports.hook, node_id=reg.node_id)
    reg.on_take_over("uploads", q2.take_over)
    await q2.start()
    try:
        await reg.reap()
        async with asyncio.timeout(10):
            rec = await q2.wait(uid)
        assert rec.done and rec.node_id == reg.node_id
        assert reports.seen == [(uid, "done", False)]
        assert await _labels(db) == ["reported:done"]
        assert not f.exists()
    finally:
        await q2.stop()


async def test_permanent_error_fails_at_once_and_reports(
    db: Database, box: SecretBox, tmp_path: Path
) -> None:
    opts = StorageOptions(local_root=tmp_path / "storage")
    store = _FailingStore(tmp_path / "s", StorageError("NoSuchBucket: bucket b", retryable=False))
    reports = _Reports()
    q = UploadQueue(
        db.sessions,
        box,
        opts,
        UploadQueueConfig(**{**FAST.__dict__, "max_attempts": 5}),
        on_finished_tx=reports.hook,
        store_factory=lambda t, o: store,
        node_id="n-1",
        backup_target=BACKUP,
    )
    await q.start()
    try:
        f = _file(tmp_path / "w", "a.mp4")
        uid = await q.enqueue(
            StorageTarget(bucket="b"), f, "t/a.mp4", owner="t", report="file", fallback=True
        )
        async with asyncio.timeout(10):
            rec = await q.wait(uid)
        assert rec.failed and rec.attempts == 1 and not rec.backed_up
        assert rec.last_error is not None and "NoSuchBucket" in rec.last_error
        assert store.calls == 1 and reports.seen == [(uid, "failed", False)]
        assert f.exists()  # a failed upload keeps its local copy
    finally:
        await q.stop()


async def test_transient_errors_past_the_limit_go_to_the_backup_store(
    db: Database, box: SecretBox, tmp_path: Path
) -> None:
    opts = StorageOptions(local_root=tmp_path / "storage")
    failing = _FailingStore(tmp_path / "s", StorageError("connection refused", retryable=True))

    def factory(t: StorageTarget, o: StorageOptions) -> ObjectStore:
        return failing if t.bucket == "b" else LocalStore(tmp_path / "storage" / (t.bucket or ""))

    reports = _Reports()
    q = UploadQueue(
        db.sessions,
        box,
        opts,
        UploadQueueConfig(**{**FAST.__dict__, "max_attempts": 3}),
        on_finished_tx=reports.hook,
        store_factory=factory,
        node_id="n-1",
        backup_target=BACKUP,
    )
    await q.start()
    try:
        f = _file(tmp_path / "w", "a.mp4")
        uid = await q.enqueue(
            StorageTarget(bucket="b"), f, "t/a.mp4", owner="t", report="file", fallback=True
        )
        async with asyncio.timeout(10):
            rec = await q.wait(uid)
        assert rec.done and rec.backed_up and rec.key == backup_key("t", "t/a.mp4")
        assert rec.last_error is not None and "connection refused" in rec.last_error
        assert failing.calls == 3
        assert await LocalStore(tmp_path / "storage" / "library").exists(backup_key("t", "t/a.mp4"))
        assert reports.seen == [(uid, "done", True)]
    finally:
        await q.stop()


async def test_two_nodes_never_take_each_others_live_rows(
    db: Database, box: SecretBox, tmp_path: Path
) -> None:
    opts = StorageOptions(local_root=tmp_path / "storage")
    a = NodeRegistry(db.sessions, lease_s=1.0)
    b = NodeRegistry(db.sessions, lease_s=1.0)
    await a.register()
    await b.register()
    qa = UploadQueue(db.sessions, box, opts, FAST, node_id=a.node_id)  # never started: A is busy
    qb = UploadQueue(db.sessions, box, opts, FAST, node_id=b.node_id)
    b.on_take_over("uploads", qb.take_over)
    await qb.start()
    try:
        f = _file(tmp_path / "w", "a.mp4")
        uid = await qa.enqueue(StorageTarget(bucket="b"), f, "t/a.mp4", owner="t")
        assert await b.reap() == []  # A's lease is live: its row is not B's to take
        await asyncio.sleep(0.3)
        rec = await qb.get(uid)
        assert rec.state == "pending" and rec.node_id == a.node_id
        await asyncio.sleep(1.1)  # A stops renewing its lease
        assert await b.reap() == [a.node_id]
        async with asyncio.timeout(10):
            rec = await qb.wait(uid)
        assert rec.done and rec.node_id == b.node_id
        await b.heartbeat()
        let_go: list[str] = []

        async def give_up() -> None:
            let_go.append(a.node_id)

        a.on_lease_lost("test", give_up)
        assert await a.reap() == []  # A finds out it lost its lease: it gives up, takes nothing
        assert let_go == [a.node_id] and not a.lease_lost  # and it is back as a live node
        async with db.sessions() as s:
            states = dict((await s.execute(select(NodeRow.node_id, NodeRow.state))).all())
            count = (await s.execute(select(func.count()).select_from(UploadRow))).scalar_one()
        assert states == {a.node_id: "alive", b.node_id: "alive"} and count == 1
        assert (await qb.get(uid)).node_id == b.node_id  # what B took stays B's
    finally:
        await qb.stop()


async def test_a_crashed_process_on_this_host_is_taken_over_at_once(db: Database) -> None:
    gone = NodeRegistry(db.sessions, lease_s=600)
    gone.pid = 2**22 + 12345  # no such process (pid_max is at most 2**22)
    await gone.register()
    me = NodeRegistry(db.sessions, lease_s=600)
    await me.register()
    assert await me.reap() == [gone.node_id]
    assert await me.reap() == []
    await me.stop()
    other = NodeRegistry(db.sessions, lease_s=600)
    await other.register()
    assert await other.reap() == [me.node_id]  # a node that stopped cleanly is free at once
