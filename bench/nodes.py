"""Several nodes on one machine: forwarded streams per core with one node, then with two.

Run: ``.venv/bin/python bench/nodes.py`` (about a minute; ``--help`` for the knobs). Needs a
PostgreSQL role that may create databases (``--pg-url``, default ``$ROOMCAST_TEST_PG_URL``) and
``redis-server`` (a private one is started on a free port).

What it does, once with one node and once with two (``roomcast serve`` processes on one
PostgreSQL database and one Redis, node ``i`` pinned to core ``i`` with ``taskset``):

* ``--rooms`` rooms, each with ``--publishers`` publishers and ``--subscribers`` subscribers;
  clients join through the nodes in turn, so with two nodes half of them are redirected to their
  room's node. Publishers replay pre-encoded H.264 + Opus (``bench/sfu.py``), subscribers count
  RTP without decoding, so the client side (this process, sharing the box) stays cheap.
* After a warm-up, a window of ``--seconds``: each node's CPU (``utime + stime`` from
  ``/proc/<pid>/stat``) and each subscriber's received video frames per publisher.

It prints, per configuration: the rooms each node serves, each node's CPU (% of a core), the
forwarded streams (one publisher's video + audio to one subscriber) and how many were delivered at
>= 95 % of the frame rate, and forwarded streams per core (delivered streams / cores the nodes
used). With one node the SFU can never use more than one core (one Python process); with two the
same load spreads over two. On a 2-core box the clients share the cores with the nodes: compare
the per-core figures, not the totals, and read ``other`` (CPU used by everything else on the box).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sfu  # bench/sfu.py: pre-encoded media, counting receivers

from roomcast.config import Settings
from roomcast.rtc.client import RoomClient
from roomcast.rtc.track import TrackKind
from roomcast.rtc.usersig import gen_usersig
from roomcast.runtime import Runtime


async def _pg_exec(admin_url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = sfu._free_port()
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *("--bind", "127.0.0.1", "--port", str(self.port), "--save", ""),
                *("--appendonly", "no", "--dir", str(workdir)),
            ],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.3)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


class Node:
    def __init__(self, data: Path, core: int, pg: str, redis: str) -> None:
        self.port = sfu._free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMCAST_")}
        env.update(
            ROOMCAST_DATABASE_URL=pg,
            ROOMCAST_REDIS_URL=redis,
            ROOMCAST_ICE_HOST_ADDRESSES='["127.0.0.1"]',
            ROOMCAST_MAX_PARTICIPANTS_PER_ROOM="1000",
            ROOMCAST_LOG_LEVEL="warning",
        )
        cmd = [sys.executable, "-m", "roomcast", "serve", "--data-dir", str(data), "--port", str(self.port)]
        self.proc = subprocess.Popen(["taskset", "-c", str(core), *cmd], env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("a node did not start")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _box_busy() -> float:
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


async def run_config(args: argparse.Namespace, n_nodes: int, video: Any, audio: Any) -> dict[str, Any]:
    admin = args.pg_url
    db = "rc_bench_" + uuid.uuid4().hex[:10]
    await _pg_exec(admin, f'CREATE DATABASE "{db}"')
    pg = f"{admin.rsplit('/', 1)[0]}/{db}"
    tmp = Path(tempfile.mkdtemp(prefix="roomcast-nodes-"))
    redis = Redis(tmp)
    nodes: list[Node] = []
    clients: list[RoomClient] = []
    try:
        data = tmp / "var"
        # Migrate and create the app before the nodes start (they share the data directory).
        rt = await Runtime.open(Settings(data_dir=data, database_url=pg))
        try:
            creds = await rt.tenancy.create_account("bench")
            app = await rt.tenancy.create_app(creds.account_id, "bench")
        finally:
            await rt.close()
        nodes = [
            await asyncio.to_thread(Node, data, i % (os.cpu_count() or 1), pg, redis.url)
            for i in range(n_nodes)
        ]
        entry = 0

        def client(room: str, user: str) -> RoomClient:
            nonlocal entry
            node = nodes[entry % len(nodes)]
            entry += 1
            return RoomClient(
                node.url,
                app_id=str(app.sdk_app_id),
                room_id=room,
                user_id=user,
                token=gen_usersig(app.sdk_app_id, app.app_key, user, 3600),
            )

        subscribers: list[tuple[str, RoomClient]] = []
        placed: dict[str, int] = {n.url: 0 for n in nodes}
        for r in range(args.rooms):
            room = f"bench{r}"
            for p in range(args.publishers):
                c = client(room, f"pub{p}")
                clients.append(c)
                await c.connect()
                await c.publish(
                    {TrackKind.CAMERA: sfu.ReplayTrack(video), TrackKind.AUDIO: sfu.ReplayTrack(audio)}
                )
            placed[next(n.url for n in nodes if f":{n.port}/" in c.url)] += 1
            for s in range(args.subscribers):
                c = client(room, f"sub{s}")
                clients.append(c)
                await c.connect(auto_subscribe=True)
                subscribers.append((room, c))
        await asyncio.sleep(args.warmup)

        def frames() -> dict[tuple[int, str], int]:
            out: dict[tuple[int, str], int] = {}
            for i, (_, c) in enumerate(subscribers):
                if c.sub_pc is None:
                    continue
                for tr in c.sub_pc.getTransceivers():
                    key = c.mapping.get(tr.mid or "")
                    counts = tr.receiver.__dict__.get("_bench_counts")
                    if key and key.endswith("/camera") and counts is not None:
                        out[(i, key)] = counts.frames
            return out

        cpu0 = [n.cpu_seconds() for n in nodes]
        box0, f0, t0 = _box_busy(), frames(), time.monotonic()
        await asyncio.sleep(args.seconds)
        cpu1 = [n.cpu_seconds() for n in nodes]
        box1, f1, t1 = _box_busy(), frames(), time.monotonic()
        window = t1 - t0
        node_cpu = [100 * (b - a) / window for a, b in zip(cpu0, cpu1, strict=True)]
        box = 100 * (box1 - box0) / window
        streams = args.rooms * args.publishers * args.subscribers
        fps = [(f1.get(k, 0) - f0.get(k, 0)) / window for k in f1]
        fps += [0.0] * (streams - len(fps))
        delivered = sum(1 for x in fps if x >= 0.95 * args.fps)
        cores = sum(node_cpu) / 100
        return {
            "nodes": n_nodes,
            "rooms_per_node": list(placed.values()),
            "node_cpu": node_cpu,
            "other_cpu": box - sum(node_cpu),
            "streams": streams,
            "delivered": delivered,
            "min_fps": min(fps) if fps else 0.0,
            "median_fps": statistics.median(fps) if fps else 0.0,
            "streams_per_core": delivered / cores if cores else 0.0,
        }
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()
        for n in nodes:
            await asyncio.to_thread(n.stop)
        redis.stop()
        await _pg_exec(admin, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


async def bench_main(args: argparse.Namespace) -> None:
    sfu.install_light_receivers()
    profile = sfu.PROFILES[args.profile]
    args.fps = profile.fps
    video = await asyncio.to_thread(
        sfu.encode_video, profile.width, profile.height, profile.fps, 4.0, profile.kbps
    )
    audio = await asyncio.to_thread(sfu.encode_audio, 1.0)
    print(
        f"{args.rooms} rooms x {args.publishers} publisher(s) x {args.subscribers} subscribers, "
        f"{profile.name}, {os.cpu_count()} cores on this box"
    )
    print(f"{'nodes':>5} {'rooms/node':>11} {'node CPU % of a core':>24} {'other %':>8} "
          f"{'streams':>8} {'delivered':>9} {'min fps':>8} {'med fps':>8} {'streams/core':>13}")  # fmt: skip
    for n in args.nodes:
        r = await run_config(args, n, video, audio)
        cpu = " ".join(f"{c:5.1f}" for c in r["node_cpu"])
        print(
            f"{r['nodes']:>5} {'/'.join(map(str, r['rooms_per_node'])):>11} {cpu:>24} {r['other_cpu']:8.1f} "
            f"{r['streams']:>8} {r['delivered']:>9} {r['min_fps']:8.1f} {r['median_fps']:8.1f} "
            f"{r['streams_per_core']:13.1f}"
        )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--pg-url", default=os.environ.get("ROOMCAST_TEST_PG_URL"), help="admin asyncpg URL")
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--publishers", type=int, default=1)
    p.add_argument("--subscribers", type=int, default=4)
    p.add_argument("--profile", choices=sorted(sfu.PROFILES), default="360p15")
    p.add_argument("--warmup", type=float, default=4.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--nodes", type=int, nargs="+", default=[1, 2], help="configurations to run")
    args = p.parse_args(argv)
    if not args.pg_url:
        p.error("--pg-url (or ROOMCAST_TEST_PG_URL) is needed")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(bench_main(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
