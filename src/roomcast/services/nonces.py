"""Single-use nonces: remember each (key, nonce) until it expires, so a signed request replayed
inside its time window is refused.

:class:`NonceMemory` is the interface gateways use; :class:`LocalNonceMemory` keeps the memory in
this process. Several nodes (``redis_url``) share ``cluster.throttle.SharedNonceMemory`` instead
(``SET key NX PXAT`` is exactly :meth:`NonceMemory.claim`), injected behind the same call.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol


class NonceMemory(Protocol):
    async def claim(self, scope: str, nonce: str, expires_at: float) -> bool:
        """True the first time ``nonce`` is seen for ``scope`` before ``expires_at`` (wall-clock
        seconds); False if it was already claimed and has not expired."""
        ...


class LocalNonceMemory:
    """In-process memory with expiry. Bounded: past ``max_entries`` claims are refused (fail closed)
    until old ones expire, so a flood of signed requests cannot grow it without limit."""

    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = 1_000_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, str, str]] = []

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._expiry)

    def _expire(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            at, scope, nonce = heapq.heappop(self._heap)
            if self._expiry.get((scope, nonce)) == at:
                del self._expiry[(scope, nonce)]

    async def claim(self, scope: str, nonce: str, expires_at: float) -> bool:
        now = self._clock()
        self._expire(now)
        key = (scope, nonce)
        if key in self._expiry:
            return False
        if expires_at <= now:
            return True  # already outside any window: nothing to remember
        if len(self._expiry) >= self._max:
            return False
        self._expiry[key] = expires_at
        heapq.heappush(self._heap, (expires_at, scope, nonce))
        return True
