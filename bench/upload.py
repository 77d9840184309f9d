"""Upload figures against a local S3 protocol server (moto on loopback).

Starts moto's S3 server in a child process on a free loopback port, then prints (1) the throughput
of S3Store.put_file for large files (multipart) and a mid-size file, and
(2) for N small segment files pushed through the durable UploadQueue (SQLite), the time from
enqueue to confirmed upload (p50/p95/max) and the overall rate.

    .venv/bin/python bench/upload.py [--segments 200] [--segment-kib 256] [--big-mib 64] [--workers 4]

moto keeps objects in memory in this process, so the figures measure roomcast's overhead plus a
Python S3 server, not a real network or disk-backed store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from roomcast.crypto import SecretBox
from roomcast.storage import (
    S3Store,
    StorageOptions,
    StorageTarget,
    UploadQueue,
    UploadQueueConfig,
    open_store,
)
from roomcast.store.db import Database

MiB = 1024 * 1024
AK, SK, REGION = "AKIDbench0000", "bench-secret-key-000000", "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(min(size, MiB))
    with path.open("wb") as f:
        left = size
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return path


async def bench_put(endpoint: str, bucket: str, work: Path, big_mib: int) -> None:
    opts = StorageOptions(local_root=work, s3_endpoint_override=endpoint)
    target = StorageTarget(kind="s3", vendor="s3", bucket=bucket, access_key=AK, secret_key=SK)
    store = open_store(target, opts)
    assert isinstance(store, S3Store)
    try:
        await store.put_file(_write(work / "warm.bin", 1024), "warm.bin")  # client creation
        for label, size, count in [
            ("8 MiB single PUT", 8 * MiB, 4),
            (f"{big_mib} MiB multipart", big_mib * MiB, 2),
        ]:
            src = _write(work / f"f{size}.bin", size)
            t0 = time.perf_counter()
            for i in range(count):
                await store.put_file(src, f"put/{size}-{i}.bin")
            dt = time.perf_counter() - t0
            print(
                f"put_file {label:>22}: {count} x, {count * size / MiB / dt:8.1f} MiB/s "
                f"({dt / count:.3f} s each)"
            )
    finally:
        await store.close()


async def bench_queue(
    endpoint: str, bucket: str, work: Path, n: int, kib: int, workers: int, interval: float
) -> None:
    db = Database(f"sqlite+aiosqlite:///{work / 'bench.db'}")
    await db.migrate()
    box = SecretBox.from_file(work / "secret.key")
    opts = StorageOptions(local_root=work, s3_endpoint_override=endpoint)
    target = StorageTarget(kind="s3", vendor="s3", bucket=bucket, prefix="q", access_key=AK, secret_key=SK)
    files = [_write(work / "segs" / f"seg{i:05d}.ts", kib * 1024) for i in range(n)]
    q = UploadQueue(db.sessions, box, opts, UploadQueueConfig(workers=workers, poll_interval_s=0.5))
    await q.start()
    try:
        # Warm the store client so the first segment does not pay for boto3 start-up.
        warm = _write(work / "warm.ts", 1024)
        await q.wait(await q.enqueue(target, warm, "warm.ts"))

        latencies: list[float] = []

        async def one(path: Path, delay: float) -> None:
            await asyncio.sleep(delay)
            t0 = time.perf_counter()
            uid = await q.enqueue(target, path, f"task/{path.name}", owner="task")
            rec = await q.wait(uid)
            assert rec.done, rec.last_error
            latencies.append(time.perf_counter() - t0)

        # A burst (a backlog, e.g. after an outage) ...
        t0 = time.perf_counter()
        await asyncio.gather(*(one(f, 0.0) for f in files))
        wall = time.perf_counter() - t0
        lat = sorted(latencies)
        print(
            f"queue burst   {n} x {kib} KiB, {workers} workers: {n / wall:7.1f} files/s, "
            f"{n * kib / 1024 / wall:6.1f} MiB/s; enqueue->confirmed "
            f"p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p95 {lat[int(0.95 * (n - 1))] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
        )
        # ... and a steady trickle (one segment every `interval` s, like many recordings at once).
        files2 = [_write(work / "segs2" / f"seg{i:05d}.ts", kib * 1024) for i in range(n)]
        latencies.clear()
        cpu0 = time.process_time()
        await asyncio.gather(*(one(f, i * interval) for i, f in enumerate(files2)))
        cpu = time.process_time() - cpu0
        lat = sorted(latencies)
        print(
            f"queue steady  {n} x {kib} KiB every {interval * 1000:.0f} ms: enqueue->confirmed p50 "
            f"{statistics.median(lat) * 1000:.0f} ms, p95 {lat[int(0.95 * (n - 1))] * 1000:.0f} ms, "
            f"max {lat[-1] * 1000:.0f} ms; uploader CPU {cpu / n * 1000:.1f} ms per file"
        )
        left = [f for f in files + files2 if f.exists()]
        print(f"local copies left after confirmed uploads: {len(left)}")
    finally:
        await q.stop()
        await db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=200)
    ap.add_argument("--segment-kib", type=int, default=256)
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--interval-ms", type=float, default=50.0, help="gap between segments (steady)")
    args = ap.parse_args()

    port = _free_port()
    # moto in its own process, so the S3 server does not compete with the uploader for the GIL.
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=AK,
            aws_secret_access_key=SK,
            config=Config(s3={"addressing_style": "path"}),
        ).create_bucket(Bucket="bench")
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            print(f"machine: {os.cpu_count()} CPUs; S3 server: moto (separate process) on {endpoint}")
            asyncio.run(bench_put(endpoint, "bench", work, args.big_mib))
            asyncio.run(
                bench_queue(
                    endpoint,
                    "bench",
                    work,
                    args.segments,
                    args.segment_kib,
                    args.workers,
                    args.interval_ms / 1000,
                )
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
