"""Throttling and replay protection shared by every node, in Redis.

The limits are the ones each dialect documents, now for the whole service instead of per node.
The token bucket runs as one Lua script on Redis's clock, so nodes with skewed clocks agree.

If Redis cannot be reached, each node falls back to its own in-process bucket and nonce memory
(the single-node behaviour) rather than refusing every call: API calls keep working, limits are
per node until Redis is back. The fallback is logged once per outage.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Hashable

from redis.asyncio import Redis

from roomcast.log import event
from roomcast.services.nonces import LocalNonceMemory
from roomcast.services.ratelimit import RateLimiter

from .redis import Keys, RedisError, unreachable

log = logging.getLogger("roomcast.cluster.throttle")

_BUCKET = """
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(b[1])
local updated = tonumber(b[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
end
tokens = math.min(capacity, tokens + math.max(0, now - updated) * refill)
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return ok
"""


def _key_text(key: Hashable) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return "|".join(str(p).replace("|", "||") for p in parts)


class _Outage:
    """Logs the start and the end of a Redis outage once each."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            event(
                log, "cluster.redis_unreachable", level=logging.WARNING, fallback=self.what, error=repr(exc)
            )

    def ok(self) -> None:
        if self.down:
            self.down = False
            event(log, "cluster.redis_back", fallback=self.what)


class SharedRateLimiter:
    """Token buckets in Redis: at most ``rate`` requests per ``per`` seconds per key, service-wide."""

    def __init__(self, redis: Redis, keys: Keys, fallback: RateLimiter | None = None) -> None:
        self._redis = redis
        self._keys = keys
        self._script = redis.register_script(_BUCKET)
        self._fallback = fallback or RateLimiter()
        self._outage = _Outage("local rate limits")

    async def allow(self, key: Hashable, rate: float, per: float = 1.0) -> bool:
        capacity = max(rate, 1.0)
        refill = rate / per
        # A bucket left alone refills in capacity/refill seconds: it may be forgotten after that.
        ttl_ms = math.ceil(capacity / refill * 1000) + 1000
        try:
            ok = await self._script(keys=[self._keys.bucket(_key_text(key))], args=[capacity, refill, ttl_ms])
        except RedisError as exc:
            if not unreachable(exc):
                raise
            self._outage.failed(exc)
            return await self._fallback.allow(key, rate, per)
        self._outage.ok()
        return bool(ok)


class SharedNonceMemory:
    """Single-use nonces in Redis: ``SET NX PXAT`` is exactly a claim that expires."""

    def __init__(self, redis: Redis, keys: Keys, fallback: LocalNonceMemory | None = None) -> None:
        self._redis = redis
        self._keys = keys
        self._fallback = fallback or LocalNonceMemory()
        self._outage = _Outage("local nonce memory")

    async def claim(self, scope: str, nonce: str, expires_at: float) -> bool:
        if expires_at <= time.time():
            return True  # already outside any window: nothing to remember
        try:
            done = await self._redis.set(
                self._keys.nonce(scope, nonce), "1", nx=True, pxat=int(expires_at * 1000) + 1
            )
        except RedisError as exc:
            if not unreachable(exc):
                raise
            self._outage.failed(exc)
            return await self._fallback.claim(scope, nonce, expires_at)
        self._outage.ok()
        # Also remember it locally: a replay during a later outage is still refused on this node.
        await self._fallback.claim(scope, nonce, expires_at)
        return bool(done)
