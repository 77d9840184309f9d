"""The callback outbox delivers each event at least once, retries with backoff, gives up when old."""

from __future__ import annotations

import asyncio
import uuid

from roomcast.events.outbox import Callback, CallbackOutbox, RetryPolicy
from roomcast.runtime import Runtime
from tests.support.receiver import callback_receiver


def cb(url: str, n: int = 0, event_id: str | None = None) -> Callback:
    eid = event_id or uuid.uuid4().hex
    return Callback(eid, "1400000001", "test", url, f'{{"n":{n},"id":"{eid}"}}'.encode(), {"Sign": "abc"})


async def wait_for(pred, limit: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + limit
    while not await pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_delivers_with_retries(runtime: Runtime) -> None:
    policy = RetryPolicy(timeout_s=2, first_delay_s=0.2, max_delay_s=0.5, max_age_s=30)
    outbox = CallbackOutbox(runtime.db.sessions, policy, poll_s=0.1, url_policy=runtime.url_policy)
    with callback_receiver() as rx:
        rx.fail_next = 3
        await outbox.start()
        try:
            events = [cb(rx.url, i) for i in range(5)]
            for e in events:
                await outbox.enqueue(e)
            await outbox.enqueue(events[0])  # the same event again is not queued twice

            async def all_delivered() -> bool:
                states = await outbox.states("1400000001")
                return len(states) == 5 and set(states.values()) == {"delivered"}

            await wait_for(all_delivered)
        finally:
            await outbox.stop()
        ids = [b["id"] for b in rx.bodies()]
        assert sorted(set(ids)) == sorted(e.event_id for e in events)
        assert all(
            r.headers["Sign"] == "abc" and r.headers["Content-Type"] == "application/json"
            for r in rx.requests
        )


async def test_gives_up_when_too_old(runtime: Runtime) -> None:
    policy = RetryPolicy(timeout_s=1, first_delay_s=0.1, max_delay_s=0.2, max_age_s=0.8)
    outbox = CallbackOutbox(runtime.db.sessions, policy, poll_s=0.05, url_policy=runtime.url_policy)
    await outbox.start()
    try:
        # Nothing listens on this port: every attempt fails.
        await outbox.enqueue(cb("http://127.0.0.1:9/nothing"))

        async def failed() -> bool:
            return set((await outbox.states()).values()) == {"failed"}

        await wait_for(failed)
    finally:
        await outbox.stop()


async def test_survives_restart(runtime: Runtime) -> None:
    """A row queued by one outbox (process) is delivered by the next one."""
    policy = RetryPolicy(timeout_s=1, first_delay_s=0.1, max_delay_s=0.2, max_age_s=30)
    first = CallbackOutbox(runtime.db.sessions, policy, url_policy=runtime.url_policy)
    with callback_receiver() as rx:
        e = cb(rx.url, 7)
        await first.enqueue(e)  # never started: the process "died" before delivering
        second = CallbackOutbox(runtime.db.sessions, policy, poll_s=0.05, url_policy=runtime.url_policy)
        await second.start()
        try:

            async def delivered() -> bool:
                return (await second.states()).get(e.event_id) == "delivered"

            await wait_for(delivered)
        finally:
            await second.stop()
        assert [b["n"] for b in rx.bodies()] == [7]
