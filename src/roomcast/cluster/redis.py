"""The Redis client every cluster component shares, and the key names they use."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["Keys", "RedisError", "connect", "unreachable"]


def connect(url: str, *, timeout_s: float = 2.0) -> Redis:
    """A pooled client; every call fails within ``timeout_s`` when Redis is unreachable."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=10,
        retry_on_timeout=False,
    )


def unreachable(exc: BaseException) -> bool:
    """A failure to reach Redis (as opposed to a script or data error)."""
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)


class Keys:
    """Key and channel names, all under one prefix so several services can share a Redis."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip(":")

    def node(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}:nodes"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    def room(self, app_key: str, room_id: str) -> str:
        return f"{self.prefix}:room:{len(app_key)}:{app_key}:{room_id}"

    def rpc(self, node_id: str) -> str:
        return f"{self.prefix}:rpc:{node_id}"

    def reply(self, call_id: str) -> str:
        return f"{self.prefix}:reply:{call_id}"

    def bucket(self, key: str) -> str:
        return f"{self.prefix}:bucket:{key}"

    def nonce(self, scope: str, nonce: str) -> str:
        return f"{self.prefix}:nonce:{len(scope)}:{scope}:{nonce}"
