"""The durable upload queue: outages, crashes, ordering, completion, on SQLite (and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from roomcast.crypto import SecretBox
from roomcast.storage import (
    LocalStore,
    ObjectInfo,
    ObjectStore,
    StorageError,
    StorageOptions,
    StorageTarget,
    UploadQueue,
    UploadQueueConfig,
    UploadRecord,
    open_store,
)
from roomcast.storage.queue import backoff_delay
from roomcast.store.db import Database
from roomcast.store.tables import UploadRow
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, free_port

FAST = UploadQueueConfig(
    workers=3, backoff_base_s=0.05, backoff_max_s=0.3, poll_interval_s=0.1, stop_grace_s=2.0
)


@pytest.fixture
def moto() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _files(folder: Path, n: int, size: int = 2048, ext: str = "ts") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"seg{i:05d}.{ext}"
        p.write_bytes(os.urandom(size))
        out.append(p)
    return out


def _s3_target(bucket: str) -> StorageTarget:
    return StorageTarget(
        kind="s3",
        vendor="tencent",
        region=REGION,
        bucket=bucket,
        prefix="rec",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )


def _s3_options(tmp_path: Path, endpoint: str, **kw: object) -> StorageOptions:
    return StorageOptions(
        local_root=tmp_path / "storage",
        s3_endpoint_override=endpoint,
        s3_client_retries=1,
        s3_connect_timeout_s=1.0,
        s3_read_timeout_s=float(kw.get("read_timeout_s", 10.0)),  # type: ignore[arg-type]
    )


def test_backoff_grows_and_is_capped() -> None:
    cfg = UploadQueueConfig(backoff_base_s=1.0, backoff_max_s=300.0, backoff_jitter=0.5)
    for n, full in [(1, 1.0), (2, 2.0), (5, 16.0), (9, 256.0), (10, 300.0), (1000, 300.0)]:
        for _ in range(20):
            d = backoff_delay(n, cfg)
            assert full * 0.5 <= d <= full
    assert backoff_delay(3, UploadQueueConfig(backoff_jitter=0.0)) == 4.0


async def test_local_target_uploads_and_removes_local_copies(
    db: Database, box: SecretBox, tmp_path: Path
) -> None:
    opts = StorageOptions(local_root=tmp_path / "storage")
    target = StorageTarget(bucket="recordings", prefix="app1")
    done: list[UploadRecord] = []

    async def on_done(rec: UploadRecord) -> None:
        # Called only once the object is in the store (and the local copy is gone).
        assert await open_store(rec.target, opts).exists(rec.key)
        assert rec.local_path.exists() == rec.keep_local
        done.append(rec)

    q = UploadQueue(db.sessions, box, opts, FAST, on_done=on_done)
    await q.start()
    try:
        files = _files(tmp_path / "work", 3)
        kept = _files(tmp_path / "work2", 1, ext="mp4")[0]
        ids = [await q.enqueue(target, f, f"task-1/{f.name}", owner="task-1") for f in files]
        ids.append(await q.enqueue(target, kept, "task-1/full.mp4", owner="task-1", keep_local=True))
        async with asyncio.timeout(10):
            recs = [await q.wait(i) for i in ids]
        assert all(r.done for r in recs)
        assert sorted(r.id for r in done) == sorted(ids)
        root = tmp_path / "storage" / "recordings" / "app1" / "task-1"
        assert sorted(p.name for p in root.iterdir()) == sorted([*(f.name for f in files), "full.mp4"])
        assert not any(f.exists() for f in files)
        assert kept.exists()
        assert recs[-1].content_type == "video/mp4" and recs[0].content_type == "video/mp2t"
        assert recs[0].size == 2048 and recs[0].attempts == 1
        assert await q.counts("task-1") == {"pending": 0, "uploading": 0, "done": 4, "failed": 0}
        with pytest.raises(StorageError):
            await q.enqueue(target, tmp_path / "missing.ts", "task-1/missing.ts")
    finally:
        await q.stop()


async def test_credentials_sealed_in_the_table(db: Database, box: SecretBox, tmp_path: Path) -> None:
    q = UploadQueue(db.sessions, box, StorageOptions(local_root=tmp_path), FAST)
    f = _files(tmp_path / "w", 1)[0]
    uid = await q.enqueue(_s3_target("bkt"), f, "a/b.ts", label="opaque-label")
    async with db.sessions() as s:
        row = (await s.execute(select(UploadRow).where(UploadRow.id == uid))).scalar_one()
    assert SECRET_KEY not in row.target and ACCESS_KEY not in row.target
    assert row.target_secrets_sealed is not None and SECRET_KEY not in row.target_secrets_sealed
    assert json.loads(box.open(row.target_secrets_sealed))["secret_key"] == SECRET_KEY
    rec = await q.get(uid)
    assert rec.label == "opaque-label" and rec.target.secret_key is None and rec.state == "pending"


async def test_outage_backs_off_keeps_files_then_delivers_each_once(
    db: Database, box: SecretBox, tmp_path: Path, moto: MotoS3
) -> None:
    bucket = moto.make_bucket(versioned=True)
    target = _s3_target(bucket)
    moto.stop()  # the store goes away before anything is uploaded

    confirmed: list[tuple[str, bool]] = []
    checker = moto.client()

    async def on_done(rec: UploadRecord) -> None:
        obj = await asyncio.to_thread(checker.head_object, Bucket=bucket, Key=f"rec/{rec.key}")
        confirmed.append((rec.key, obj["ContentLength"] == rec.size))

    q = UploadQueue(db.sessions, box, _s3_options(tmp_path, moto.endpoint), FAST, on_done=on_done)
    await q.start()
    try:
        files = _files(tmp_path / "work", 12, size=4096)
        data = {f.name: f.read_bytes() for f in files}
        for f in files:
            await q.enqueue(target, f, f"task-9/{f.name}", owner="task-9")
        await asyncio.sleep(1.5)
        recs = await q.records(owner="task-9")
        assert {r.state for r in recs} <= {"pending", "uploading"}
        assert max(r.attempts for r in recs) >= 3  # retried, with backoff
        assert max(r.attempts for r in recs) <= 25  # ... not in a tight loop
        assert all(f.exists() for f in files)
        errors = [r.last_error for r in recs if r.last_error]
        assert errors and all(SECRET_KEY not in e and ACCESS_KEY not in e for e in errors)

        moto.start()  # same port
        async with asyncio.timeout(20):
            recs = await q.wait_owner("task-9")
        assert all(r.done for r in recs)
        assert not any(f.exists() for f in files)
        assert sorted(confirmed) == sorted((f"task-9/{n}", True) for n in data)
        # Versioning counts every PUT: each file arrived exactly once.
        assert moto.versions(bucket) == {f"rec/task-9/{n}": 1 for n in data}
        c = moto.client()
        for n, body in data.items():
            assert c.get_object(Bucket=bucket, Key=f"rec/task-9/{n}")["Body"].read() == body
    finally:
        await q.stop()


async def test_max_attempts_then_failed_then_retry(
    db: Database, box: SecretBox, tmp_path: Path, moto: MotoS3
) -> None:
    bucket = moto.make_bucket()
    moto.stop()
    failed: list[UploadRecord] = []

    async def on_failed(rec: UploadRecord) -> None:
        failed.append(rec)

    cfg = UploadQueueConfig(
        workers=2, max_attempts=3, backoff_base_s=0.05, backoff_max_s=0.1, poll_interval_s=0.1
    )
    q = UploadQueue(db.sessions, box, _s3_options(tmp_path, moto.endpoint), cfg, on_failed=on_failed)
    await q.start()
    try:
        f = _files(tmp_path / "w", 1)[0]
        uid = await q.enqueue(_s3_target(bucket), f, "t/x.ts", owner="t")
        async with asyncio.timeout(10):
            rec = await q.wait(uid)
        assert rec.failed and rec.attempts == 3 and rec.last_error
        assert SECRET_KEY not in rec.last_error
        assert f.exists()
        assert [r.id for r in failed] == [uid]

        moto.start()
        assert await q.retry(owner="t") == 1
        async with asyncio.timeout(10):
            rec = await q.wait(uid)
        assert rec.done and not f.exists()
    finally:
        await q.stop()


async def test_crash_recovery(db: Database, box: SecretBox, tmp_path: Path) -> None:
    opts = StorageOptions(local_root=tmp_path / "storage")
    target = StorageTarget(bucket="b")
    files = _files(tmp_path / "w", 3)
    crashed = UploadQueue(db.sessions, box, opts, FAST)  # never started: enqueue only
    ids = [await crashed.enqueue(target, f, f"t/{f.name}", owner="t") for f in files]
    # What a crash leaves: one row mid-upload, one uploaded and marked done but with the local
    # copy and the hooks not handled yet, one never touched.
    await open_store(target, opts).put_file(files[1], f"t/{files[1].name}")
    st = files[1].stat()
    async with db.sessions.begin() as s:
        await s.execute(update(UploadRow).where(UploadRow.id == ids[0]).values(state="uploading", attempts=1))
        await s.execute(
            update(UploadRow)
            .where(UploadRow.id == ids[1])
            .values(state="done", attempts=1, size=st.st_size, mtime_ns=st.st_mtime_ns)
        )

    hooked: list[int] = []

    async def on_done(rec: UploadRecord) -> None:
        hooked.append(rec.id)

    q = UploadQueue(db.sessions, box, opts, FAST, on_done=on_done)
    await q.start()
    try:
        async with asyncio.timeout(10):
            recs = await q.wait_owner("t")
        assert [r.state for r in recs] == ["done", "done", "done"]
        assert recs[0].attempts == 2  # the interrupted attempt counts
        assert sorted(hooked) == sorted(ids)
        assert not any(f.exists() for f in files)
        store = LocalStore(tmp_path / "storage" / "b")
        assert [i.key for i in await store.list("t/")] == [f"t/{f.name}" for f in files]
    finally:
        await q.stop()


class _Blackhole:
    """A TCP server that accepts connections and never answers (a hung store)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> _Blackhole:
        async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self._writers.append(w)

        self._server = await asyncio.start_server(handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for w in self._writers:
            w.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_stop_requeues_hung_uploads(db: Database, box: SecretBox, tmp_path: Path) -> None:
    async with _Blackhole() as hole:
        opts = _s3_options(tmp_path, f"http://127.0.0.1:{hole.port}", read_timeout_s=3.0)
        q = UploadQueue(db.sessions, box, opts, FAST)
        await q.start()
        f = _files(tmp_path / "w", 1)[0]
        uid = await q.enqueue(_s3_target("bkt"), f, "t/x.ts")
        for _ in range(250):
            if (await q.get(uid)).state == "uploading":
                break
            await asyncio.sleep(0.02)
        assert (await q.get(uid)).state == "uploading"
        await q.stop(grace_s=0.1)
        rec = await q.get(uid)
        assert rec.state == "pending" and f.exists()


class _RecordingStore(LocalStore):
    """A real local store that is slow for segments and notes when each upload starts and ends."""

    def __init__(self, root: Path, log: list[tuple[str, str]], prefix: str = "") -> None:
        super().__init__(root, prefix=prefix)
        self.log = log

    async def put_file(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
        self.log.append(("start", key))
        if key.startswith("t/") and key.endswith(".ts"):
            n = int(key[-4])
            await asyncio.sleep(0.8 if n == 0 else 0.05 * (5 - n))  # later segments finish first
        info = await super().put_file(path, key, content_type)
        self.log.append(("end", key))
        return info


async def test_playlist_waits_for_its_segments(db: Database, box: SecretBox, tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []

    def factory(t: StorageTarget, o: StorageOptions) -> ObjectStore:
        return _RecordingStore(o.local_root, events)

    q = UploadQueue(
        db.sessions,
        box,
        StorageOptions(local_root=tmp_path / "storage"),
        UploadQueueConfig(workers=4, poll_interval_s=0.1),
        store_factory=factory,
    )
    target = StorageTarget()
    work = tmp_path / "w"
    segs = _files(work, 4)
    pl1 = work / "index.1.m3u8"
    pl1.write_text("#EXTM3U\n" + "".join(f"{s.name}\n" for s in segs[:2]))
    pl2 = work / "index.2.m3u8"
    pl2_text = "#EXTM3U\n" + "".join(f"{s.name}\n" for s in segs)
    pl2.write_text(pl2_text)
    await q.enqueue(target, segs[0], "t/seg00000.ts", owner="t")
    await q.enqueue(target, segs[1], "t/seg00001.ts", owner="t")
    await q.enqueue(target, pl1, "t/index.m3u8", owner="t", ordered=True)
    await q.enqueue(target, segs[2], "t/seg00002.ts", owner="t")
    await q.enqueue(target, segs[3], "t/seg00003.ts", owner="t")
    await q.enqueue(target, pl2, "t/index.m3u8", owner="t", ordered=True)
    # Another owner's uploads are not held back by this one.
    other = _files(tmp_path / "o", 1)[0]
    await q.enqueue(target, other, "u/seg00000.ts", owner="u", ordered=True)
    await q.start()
    try:
        async with asyncio.timeout(10):
            recs = await q.wait_owner("t")
            await q.wait_owner("u")
        assert all(r.done for r in recs)
        pos = {e: i for i, e in enumerate(events)}
        first_pl = [i for i, e in enumerate(events) if e == ("start", "t/index.m3u8")]
        assert len(first_pl) == 2
        assert pos[("end", "t/seg00000.ts")] < first_pl[0] and pos[("end", "t/seg00001.ts")] < first_pl[0]
        assert pos[("end", "t/seg00003.ts")] < first_pl[1] and pos[("end", "t/seg00002.ts")] < first_pl[1]
        # Segments 2 and 3 did not wait for the first playlist (they are not ordered).
        assert pos[("start", "t/seg00002.ts")] < first_pl[0] or pos[("start", "t/seg00003.ts")] < first_pl[0]
        # The newest playlist is what the store holds.
        assert (tmp_path / "storage" / "t" / "index.m3u8").read_text() == pl2_text
        # Another owner is not held back: it ran while this owner's first segment was still going.
        assert pos[("start", "u/seg00000.ts")] < pos[("end", "t/seg00000.ts")]
    finally:
        await q.stop()


async def test_failed_segment_holds_back_the_playlist(db: Database, box: SecretBox, tmp_path: Path) -> None:
    opts = StorageOptions(local_root=tmp_path / "storage")
    q = UploadQueue(db.sessions, box, opts, FAST)
    target = StorageTarget()
    segs = _files(tmp_path / "w", 2)
    pl = tmp_path / "w" / "index.m3u8"
    pl.write_text("#EXTM3U\n")
    s0 = await q.enqueue(target, segs[0], "t/seg00000.ts", owner="t")
    s1 = await q.enqueue(target, segs[1], "t/seg00001.ts", owner="t")
    p = await q.enqueue(target, pl, "t/index.m3u8", owner="t", ordered=True)
    backup = segs[1].read_bytes()
    segs[1].unlink()  # lost before upload: a permanent failure
    await q.start()
    try:
        async with asyncio.timeout(10):
            recs = {r.id: r for r in await q.wait_owner("t")}
        assert recs[s0].done
        assert recs[s1].failed and "missing" in (recs[s1].last_error or "")
        assert recs[p].failed and f"#{s1}" in (recs[p].last_error or "")
        assert pl.exists()
        assert not (tmp_path / "storage" / "t" / "index.m3u8").exists()
        # A later ordered upload of the same owner fails at once too.
        pl2 = tmp_path / "w" / "index.2.m3u8"
        pl2.write_text("#EXTM3U\n")
        late = await q.enqueue(target, pl2, "t/index.m3u8", owner="t", ordered=True)
        assert (await q.get(late)).failed

        segs[1].write_bytes(backup)
        assert await q.retry(owner="t") == 3
        async with asyncio.timeout(10):
            recs2 = await q.wait_owner("t")
        assert all(r.done for r in recs2)
        assert (tmp_path / "storage" / "t" / "index.m3u8").exists()
    finally:
        await q.stop()


async def test_file_changed_during_upload_is_not_deleted(
    db: Database, box: SecretBox, tmp_path: Path
) -> None:
    changed = {"done": False}

    class Rewriting(LocalStore):
        async def put_file(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
            info = await super().put_file(path, key, content_type)
            if not changed["done"]:
                changed["done"] = True
                await asyncio.to_thread(path.write_bytes, b"a newer, longer version of the file")
            return info

    q = UploadQueue(
        db.sessions,
        box,
        StorageOptions(local_root=tmp_path / "storage"),
        FAST,
        store_factory=lambda t, o: Rewriting(o.local_root),
    )
    f = _files(tmp_path / "w", 1)[0]
    uid = await q.enqueue(StorageTarget(), f, "t/a.ts")
    await q.start()
    try:
        async with asyncio.timeout(10):
            rec = await q.wait(uid)
        assert rec.done and rec.attempts == 2
        assert (tmp_path / "storage" / "t" / "a.ts").read_bytes() == b"a newer, longer version of the file"
    finally:
        await q.stop()
