"""The in-process nonce memory: once per scope inside the window, forgotten after it, bounded."""

from __future__ import annotations

from roomcast.services.nonces import LocalNonceMemory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_nonce_is_claimed_once_per_scope_until_it_expires() -> None:
    clock = Clock()
    memory = LocalNonceMemory(clock)
    assert await memory.claim("key-a", "1", expires_at=1300)
    assert not await memory.claim("key-a", "1", expires_at=1300)
    assert await memory.claim("key-b", "1", expires_at=1300)
    assert await memory.claim("key-a", "2", expires_at=1300)
    clock.now = 1299.0
    assert not await memory.claim("key-a", "1", expires_at=1600)
    clock.now = 1300.0  # expired: forgotten, and the memory shrinks
    assert len(memory) == 0
    assert await memory.claim("key-a", "1", expires_at=1600)


async def test_already_expired_claims_are_not_remembered() -> None:
    memory = LocalNonceMemory(Clock())
    assert await memory.claim("k", "1", expires_at=999)
    assert len(memory) == 0


async def test_full_memory_refuses_new_nonces() -> None:
    clock = Clock()
    memory = LocalNonceMemory(clock, max_entries=2)
    assert await memory.claim("k", "1", expires_at=1010)
    assert await memory.claim("k", "2", expires_at=1020)
    assert not await memory.claim("k", "3", expires_at=1020)
    clock.now = 1010.0
    assert await memory.claim("k", "3", expires_at=1020)
