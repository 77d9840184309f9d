"""Callback URLs pass the URL policy when they are set and again at each delivery."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from roomcast.domain.errors import InvalidArgument
from roomcast.events.outbox import Callback, CallbackOutbox, RetryPolicy
from roomcast.net.urls import UrlPolicy
from roomcast.runtime import Runtime
from roomcast.services.tenancy import TenancyService
from roomcast.store.tables import CallbackRow
from tests.support.receiver import callback_receiver


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/cb", "http://169.254.169.254/latest/", "http://[::1]/cb", "file:///tmp/x"]
)
async def test_setting_a_private_callback_url_is_refused(runtime: Runtime, url: str) -> None:
    strict = TenancyService(runtime.db.sessions, runtime.box, url_policy=UrlPolicy(allow_private=False))
    acc = await strict.create_account("a")
    app = await strict.create_app(acc.account_id, "x")
    with pytest.raises(InvalidArgument) as err:
        await strict.set_callback(app.app_id, url, "k" * 16)
    assert err.value.subject == "callback_url"
    assert (await strict.get_app(app.app_id)).callback_url is None


async def test_delivery_to_a_refused_address_is_a_failed_attempt(runtime: Runtime) -> None:
    # The row may predate the policy (or its host may now resolve elsewhere): delivery checks again.
    policy = RetryPolicy(timeout_s=2, first_delay_s=0.2, max_delay_s=0.5, max_age_s=30)
    outbox = CallbackOutbox(
        runtime.db.sessions, policy, poll_s=0.05, url_policy=UrlPolicy(allow_private=False)
    )
    with callback_receiver() as rx:
        await outbox.start()
        try:
            eid = uuid.uuid4().hex
            await outbox.enqueue(Callback(eid, "1400000001", "test", rx.url, b"{}", {}))
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                async with runtime.db.sessions() as s:
                    row = (
                        await s.execute(select(CallbackRow).where(CallbackRow.event_id == eid))
                    ).scalar_one()
                if row.attempts >= 1 and row.last_error:
                    break
                assert asyncio.get_running_loop().time() < deadline, "no attempt"
                await asyncio.sleep(0.05)
        finally:
            await outbox.stop()
        assert row.state == "pending" and row.last_error.startswith("refused URL")
        assert "loopback" in row.last_error
        assert rx.requests == []
