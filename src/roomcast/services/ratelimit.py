"""Token-bucket request throttling, keyed by whatever a dialect documents (app, action, tenant).

:class:`RateLimiter` keeps the buckets in this process (one node). With several nodes
(``redis_url``) ``cluster.throttle.SharedRateLimiter`` keeps them in Redis behind the same
:class:`Throttle` call, so a documented limit holds for the whole service.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol


class Throttle(Protocol):
    async def allow(self, key: Hashable, rate: float, per: float = 1.0) -> bool:
        """At most ``rate`` requests per ``per`` seconds for ``key``, with that burst."""
        ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``allow(key, rate, per)``: at most ``rate`` requests per ``per`` seconds, with that burst."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._max_keys = max_keys

    async def allow(self, key: Hashable, rate: float, per: float = 1.0) -> bool:
        now = self._clock()
        capacity = max(rate, 1.0)
        refill = rate / per
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._evict(now)
            bucket = self._buckets[key] = _Bucket(capacity, now)
        else:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * refill)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def _evict(self, now: float) -> None:
        # Drop the buckets idle the longest; a full bucket and a missing one behave the same.
        for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1].updated)[
            : self._max_keys // 10 or 1
        ]:
            del self._buckets[key]
