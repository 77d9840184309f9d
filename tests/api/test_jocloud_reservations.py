"""A resid starts one recording: claims are compare-and-set, also when starts race (SQLite and
PostgreSQL), a failed start gives the resid back, and an expired or foreign resid is refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from roomcast.domain.errors import AlreadyExists, NotFound
from roomcast.runtime import Runtime
from roomcast.store.tables import ReservationRow, utcnow


async def test_one_claim_per_resid(runtime: Runtime) -> None:
    acc = await runtime.tenancy.create_account("joy")
    app = await runtime.tenancy.create_app(acc.account_id, "a")
    other = await runtime.tenancy.create_app(acc.account_id, "b")
    svc = runtime.reservations
    res = await svc.create(app.sdk_app_id, "room")

    results = await asyncio.gather(
        *(svc.claim(app.sdk_app_id, res.reservation_id, f"m{i}") for i in range(6)), return_exceptions=True
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1 and all(isinstance(r, AlreadyExists) for r in results if r not in won)
    marker = won[0].task_id
    assert marker is not None

    await svc.bind(res.reservation_id, marker, None)  # the start failed: the resid is free again
    again = await svc.claim(app.sdk_app_id, res.reservation_id, "m9")
    await svc.bind(res.reservation_id, "m9", "task-1")
    assert again.task_id == "m9" and (await svc.get(app.sdk_app_id, res.reservation_id)).task_id == "task-1"
    await svc.bind(res.reservation_id, "m9", None)  # a stale marker changes nothing
    with pytest.raises(AlreadyExists):
        await svc.claim(app.sdk_app_id, res.reservation_id, "m10")

    fresh = await svc.create(app.sdk_app_id)
    with pytest.raises(NotFound):
        await svc.claim(other.sdk_app_id, fresh.reservation_id, "x")  # another app's
    async with runtime.db.sessions.begin() as s:
        await s.execute(
            update(ReservationRow)
            .where(ReservationRow.reservation_id == fresh.reservation_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(NotFound):
        await svc.claim(app.sdk_app_id, fresh.reservation_id, "x")  # expired
