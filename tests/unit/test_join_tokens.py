"""Join tokens: UserSig and JWT accepted for the right app/user/room only."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest

from roomcast.domain.tenancy import AppState
from roomcast.rtc.auth import Permission
from roomcast.rtc.errors import AuthError
from roomcast.rtc.usersig import gen_usersig
from roomcast.runtime import Runtime
from roomcast.services.join_tokens import JoinAuthenticator, issue_jwt, issue_usersig


@pytest.fixture
def db_url(data_dir):  # type: ignore[no-untyped-def]
    return f"sqlite+aiosqlite:///{data_dir / 'test.db'}"


async def test_usersig_and_jwt(runtime: Runtime) -> None:
    acc = await runtime.tenancy.create_account("a")
    app = await runtime.tenancy.create_app(acc.account_id, "x")
    other = await runtime.tenancy.create_app(acc.account_id, "y")
    auth = JoinAuthenticator(runtime.tenancy)
    ok = await auth.authenticate(
        issue_usersig(app, "u1"), app_id=str(app.sdk_app_id), room_id="r", user_id="u1"
    )
    assert ok.app_key == str(app.sdk_app_id) and not ok.hidden

    bad = [
        (issue_usersig(app, "u1"), str(app.sdk_app_id), "r", "u2"),  # another user
        (issue_usersig(other, "u1"), str(app.sdk_app_id), "r", "u1"),  # another app
        (gen_usersig(app.sdk_app_id, "wrong-key", "u1", 60), str(app.sdk_app_id), "r", "u1"),
        (
            gen_usersig(app.sdk_app_id, app.app_key, "u1", 10, now=time.time() - 100),
            str(app.sdk_app_id),
            "r",
            "u1",
        ),
        ("garbage", str(app.sdk_app_id), "r", "u1"),
        ("", str(app.sdk_app_id), "r", "u1"),
        (issue_usersig(app, "u1"), "1234", "r", "u1"),  # unknown app
        (issue_jwt(app, "u1", room_id="r2"), app.app_id, "r", "u1"),  # another room
        (issue_jwt(app, "u1", expire_s=1, now=time.time() - 60), app.app_id, "r", "u1"),
        (
            pyjwt.encode({"iss": str(app.sdk_app_id), "sub": "u1", "exp": time.time() + 60}, "k" * 32),
            app.app_id,
            "r",
            "u1",
        ),
        (issue_usersig(app, "u1"), str(app.sdk_app_id), "", "u1"),
        (issue_usersig(app, "u\n1"), str(app.sdk_app_id), "r", "u\n1"),
    ]
    for token, app_id, room, user in bad:
        with pytest.raises(AuthError):
            await auth.authenticate(token, app_id=app_id, room_id=room, user_id=user)

    sub_only = issue_jwt(app, "viewer", permissions=frozenset({Permission.SUBSCRIBE}), hidden=True)
    who = await auth.authenticate(sub_only, app_id=app.app_id, room_id="any", user_id="viewer")
    assert who.permissions == frozenset({Permission.SUBSCRIBE}) and who.hidden

    await runtime.tenancy.set_app_state(app.app_id, AppState.DISABLED)
    with pytest.raises(AuthError, match="disabled"):
        await auth.authenticate(
            issue_usersig(app, "u1"), app_id=str(app.sdk_app_id), room_id="r", user_id="u1"
        )
