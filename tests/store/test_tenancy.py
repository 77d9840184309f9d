"""Accounts, keys and apps through the service, on SQLite and PostgreSQL."""

from pathlib import Path

import pytest

from roomcast.domain.errors import AlreadyExists, InvalidArgument, LimitExceeded, NotFound
from roomcast.domain.tenancy import MAX_APPS_PER_ACCOUNT, AppState, KeyStatus
from roomcast.runtime import Runtime


async def test_account_key_lifecycle(runtime: Runtime) -> None:
    t = runtime.tenancy
    creds = await t.create_account("acme")
    assert len(creds.project_id) == 32 and creds.secret_key
    found = await t.lookup_credentials(creds.secret_id)
    assert found is not None and found.secret_key == creds.secret_key and found.status is KeyStatus.ACTIVE
    second = await t.create_key(creds.account_id)
    assert {k.secret_id for k in await t.list_keys(creds.account_id)} == {creds.secret_id, second.secret_id}
    revoked = await t.revoke_key(second.secret_id)
    assert revoked.status is KeyStatus.REVOKED and revoked.revoked_at is not None
    again = await t.lookup_credentials(second.secret_id)
    assert again is not None and again.status is KeyStatus.REVOKED
    assert await t.lookup_credentials("AKIDnope") is None
    assert (await t.account_by_project(creds.project_id)) == await t.get_account(creds.account_id)
    with pytest.raises(NotFound):
        await t.revoke_key("AKIDnope")
    with pytest.raises(NotFound):
        await t.create_key("no-such-account")


async def test_app_lifecycle(runtime: Runtime) -> None:
    t = runtime.tenancy
    acc = await t.create_account("acme")
    app = await t.create_app(acc.account_id, "demo")
    assert app.state is AppState.ENABLED and 1_400_000_000 <= app.sdk_app_id <= 1_499_999_999
    assert len(app.app_key) == 64
    assert await t.get_app(app.app_id) == app
    assert await t.get_app(app.sdk_app_id) == app
    disabled = await t.set_app_state(app.app_id, AppState.DISABLED)
    assert disabled.state is AppState.DISABLED and disabled.state_updated_at >= app.state_updated_at
    total, listed = await t.list_apps(acc.account_id, state=AppState.DISABLED)
    assert total == 1 and listed[0].app_id == app.app_id
    await t.delete_app(app.app_id)
    with pytest.raises(NotFound):
        await t.get_app(app.app_id)
    assert (await t.list_apps(acc.account_id))[0] == 0
    # The name is free again once deleted, but the ids are never reused.
    again = await t.create_app(acc.account_id, "demo")
    assert again.app_id != app.app_id and again.sdk_app_id != app.sdk_app_id


async def test_app_rules(runtime: Runtime) -> None:
    t = runtime.tenancy
    acc = await t.create_account("acme")
    other = await t.create_account("rival")
    await t.create_app(acc.account_id, "dup")
    with pytest.raises(AlreadyExists):
        await t.create_app(acc.account_id, "dup")
    await t.create_app(other.account_id, "dup")  # names are per tenant
    with pytest.raises(InvalidArgument):
        await t.create_app(acc.account_id, "   ")
    with pytest.raises(InvalidArgument):
        await t.create_app(acc.account_id, "x" * 65)
    for i in range(MAX_APPS_PER_ACCOUNT - 1):
        await t.create_app(acc.account_id, f"a{i}")
    with pytest.raises(LimitExceeded):
        await t.create_app(acc.account_id, "one-too-many")
    total, page = await t.list_apps(acc.account_id, offset=5, limit=3)
    assert total == MAX_APPS_PER_ACCOUNT and len(page) == 3


async def test_tenant_isolation(runtime: Runtime) -> None:
    t = runtime.tenancy
    a = await t.create_account("a")
    b = await t.create_account("b")
    app = await t.create_app(a.account_id, "mine")
    with pytest.raises(NotFound):
        await t.get_app(app.app_id, account_id=b.account_id)
    with pytest.raises(NotFound):
        await t.set_app_state(app.app_id, AppState.DISABLED, account_id=b.account_id)
    with pytest.raises(NotFound):
        await t.delete_app(app.sdk_app_id, account_id=b.account_id)
    assert (await t.list_apps(b.account_id))[0] == 0


async def test_callback_settings(runtime: Runtime) -> None:
    t = runtime.tenancy
    acc = await t.create_account("a")
    app = await t.create_app(acc.account_id, "x")
    updated = await t.set_callback(app.app_id, "http://127.0.0.1:9/cb", "cbkey-123456", ["a", "b"])
    assert updated.callback_url == "http://127.0.0.1:9/cb" and updated.callback_key == "cbkey-123456"
    assert updated.callback_events == ("a", "b")
    with pytest.raises(InvalidArgument):
        await t.set_callback(app.app_id, "ftp://x", None)


async def test_secrets_encrypted_at_rest(tmp_path: Path) -> None:
    from roomcast.config import Settings

    data = tmp_path / "var"
    rt = await Runtime.open(Settings(data_dir=data, allow_private_urls=True))
    try:
        creds = await rt.tenancy.create_account("acme")
        app = await rt.tenancy.create_app(creds.account_id, "demo")
        await rt.tenancy.set_callback(app.app_id, "http://127.0.0.1:1/", "callback-key-in-clear", [])
    finally:
        await rt.close()
    raw = b"".join(p.read_bytes() for p in data.glob("roomcast.db*"))
    assert creds.secret_id.encode() in raw  # ids are not secret, and prove we read the right file
    for secret in (creds.secret_key, app.app_key, "callback-key-in-clear"):
        assert secret.encode() not in raw


async def test_bootstrap_once(runtime: Runtime) -> None:
    created = await runtime.bootstrap()
    assert created is not None
    creds, app = created
    assert app.account_id == creds.account_id
    assert await runtime.bootstrap() is None


async def test_app_with_unfinished_tasks_cannot_be_deleted(runtime: Runtime) -> None:
    from roomcast.domain.errors import FailedPrecondition
    from roomcast.domain.task import TaskState
    from roomcast.services.tasks import TaskService

    acc = await runtime.tenancy.create_account("a")
    app = await runtime.tenancy.create_app(acc.account_id, "x")
    tasks = TaskService(runtime.db.sessions, runtime.box)
    task = await tasks.create(
        sdk_app_id=app.sdk_app_id,
        kind="recording",
        dialect="trtc",
        room_id="r",
        spec={},
        request={},
        target=None,
        node_id=None,
    )
    with pytest.raises(FailedPrecondition):
        await runtime.tenancy.delete_app(app.app_id)
    await tasks.set_state(task.task_id, TaskState.EXITED, "stopped")
    await runtime.tenancy.delete_app(app.app_id)
