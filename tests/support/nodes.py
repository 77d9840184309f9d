"""Several ``roomcast serve`` nodes on one PostgreSQL database and one Redis, for the multi-node
tests (``tests/cluster``)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from roomcast.rtc.client import RoomClient
from tests.support.live import free_port, serve_process
from tests.support.redis import RedisServer

LEASE_S = 3
"""The nodes' lease: a dead node's rooms and tasks move after this."""


@dataclass
class Node:
    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Nodes:
    def __init__(self, data: Path, pg: str, redis: RedisServer, **env: str) -> None:
        self.data = data
        self.pg = pg
        self.redis = redis
        self.env = env
        self.nodes = {name: Node(name, free_port()) for name in ("a", "b")}

    def start(self, name: str) -> Node:
        node = self.nodes[name]
        node.proc = serve_process(
            self.data,  # one data directory: the nodes share the secret key that seals credentials
            node.port,
            ROOMCAST_DATABASE_URL=self.pg,
            ROOMCAST_REDIS_URL=self.redis.url,
            ROOMCAST_NODE_LEASE_S=str(LEASE_S),
            ROOMCAST_RPC_TIMEOUT_S="3",
            ROOMCAST_ICE_HOST_ADDRESSES='["127.0.0.1"]',
            ROOMCAST_ALLOW_PRIVATE_URLS="true",
            ROOMCAST_EMPTY_ROOM_GRACE_S="1",
            **self.env,
        )
        return node

    def kill(self, name: str) -> None:
        node = self.nodes[name]
        if node.proc is not None and node.proc.poll() is None:
            os.kill(node.proc.pid, signal.SIGKILL)
            node.proc.wait(timeout=10)
        node.proc = None

    def pause(self, name: str) -> None:
        """SIGSTOP: the process is frozen (a long GC pause, a VM stall), its sockets stay open."""
        proc = self.nodes[name].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        proc = self.nodes[name].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGCONT)

    def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                os.kill(node.proc.pid, signal.SIGCONT)
                node.proc.terminate()
                try:
                    node.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(timeout=10)
            node.proc = None

    def serving(self, client: RoomClient) -> Node:
        """The node a joined client ended up on."""
        for node in self.nodes.values():
            if f":{node.port}/" in client.url:
                return node
        raise AssertionError(client.url)

    def other(self, node: Node) -> Node:
        return next(n for n in self.nodes.values() if n is not node)
