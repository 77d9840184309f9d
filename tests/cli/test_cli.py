"""CLI round trips against one data directory, with --json output."""

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from roomcast.cli import cli

runner = CliRunner()


def rc(data_dir: Path, *args: str, ok: bool = True) -> Any:
    result = runner.invoke(cli, [*args, "--data-dir", str(data_dir)])
    if ok:
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout
    assert result.exit_code != 0
    return result


def test_account_key_app_round_trip(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    acc = rc(data_dir, "account", "create", "--name", "acme", "--json")
    assert set(acc) == {"account_id", "project_id", "secret_id", "secret_key"}
    assert [a["account_id"] for a in rc(data_dir, "account", "list", "--json")] == [acc["account_id"]]

    key2 = rc(data_dir, "key", "create", "--account", acc["account_id"], "--json")
    keys = rc(data_dir, "key", "list", "--account", acc["account_id"], "--json")
    assert {k["secret_id"] for k in keys} == {acc["secret_id"], key2["secret_id"]}
    assert all("secret_key" not in k for k in keys)
    revoked = rc(data_dir, "key", "revoke", key2["secret_id"], "--json")
    assert revoked["status"] == "revoked"

    app = rc(data_dir, "app", "create", "--account", acc["account_id"], "--name", "demo", "--json")
    assert {"app_id", "sdk_app_id", "app_key", "state", "created_at", "updated_at"} <= set(app)
    assert isinstance(app["sdk_app_id"], int) and app["state"] == "enabled"

    listed = rc(data_dir, "app", "list", "--json")
    assert [a["app_id"] for a in listed] == [app["app_id"]]
    assert "app_key" not in listed[0]
    shown = rc(data_dir, "app", "show", str(app["sdk_app_id"]), "--json")
    assert shown["app_key"] == app["app_key"] and shown["app_id"] == app["app_id"]

    assert rc(data_dir, "app", "disable", app["app_id"], "--json")["state"] == "disabled"
    assert rc(data_dir, "app", "show", app["app_id"], "--json")["state"] == "disabled"
    assert rc(data_dir, "app", "enable", app["app_id"], "--json")["state"] == "enabled"

    set_cb = ("app", "set-callback", app["app_id"], "--url", "http://127.0.0.1:9/cb", "--key", "k" * 16)
    # The CLI applies the node's URL policy: a loopback callback needs allow_private_urls.
    refused = rc(data_dir, *set_cb, ok=False)
    assert "loopback" in refused.output
    monkeypatch.setenv("ROOMCAST_ALLOW_PRIVATE_URLS", "true")
    cb = rc(data_dir, *set_cb, "--json")
    assert cb["callback_url"] == "http://127.0.0.1:9/cb" and "callback_key" not in cb

    rc(data_dir, "app", "delete", app["app_id"], "--json")
    assert rc(data_dir, "app", "list", "--json") == []
    missing = rc(data_dir, "app", "show", app["app_id"], ok=False)
    assert "does not exist" in missing.stderr


def test_human_output_and_errors(data_dir: Path) -> None:
    out = rc(data_dir, "account", "create", "--name", "acme")
    assert "secret_key" in out
    bad = rc(data_dir, "app", "create", "--account", "nope", "--name", "x", ok=False)
    assert "account nope does not exist" in bad.stderr
    assert rc(data_dir, "app", "list").strip() == "(no apps)"


def test_bad_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("port = 'x'\n")
    result = runner.invoke(cli, ["account", "list", "--config", str(cfg)])
    assert result.exit_code == 2 and "error:" in result.stderr


def test_token_command(data_dir: Path) -> None:
    import asyncio

    from roomcast.config import Settings
    from roomcast.rtc.auth import Permission
    from roomcast.runtime import Runtime
    from roomcast.services.join_tokens import JoinAuthenticator

    acc = rc(data_dir, "account", "create", "--name", "acme", "--json")
    app = rc(data_dir, "app", "create", "--account", acc["account_id"], "--name", "demo", "--json")
    sig = rc(data_dir, "token", "--app", str(app["sdk_app_id"]), "--user", "alice").strip()
    jwt_out = rc(
        data_dir, "token", "--app", app["app_id"], "--user", "bob", "--jwt", "--room", "r1", "--json"
    )
    assert jwt_out["token"].startswith("eyJ") and jwt_out["sdk_app_id"] == app["sdk_app_id"]
    viewer = rc(data_dir, "token", "--app", app["app_id"], "--user", "vic", "--jwt", "--no-draw").strip()

    async def check() -> None:
        rt = await Runtime.open(Settings(data_dir=data_dir))
        try:
            auth = JoinAuthenticator(rt.tenancy)
            who = await auth.authenticate(sig, app_id=str(app["sdk_app_id"]), room_id="any", user_id="alice")
            assert who.app_key == str(app["sdk_app_id"]) and who.user_id == "alice"
            who = await auth.authenticate(jwt_out["token"], app_id=app["app_id"], room_id="r1", user_id="bob")
            assert who.room_id == "r1" and who.can(Permission.DRAW)
            who = await auth.authenticate(viewer, app_id=app["app_id"], room_id="r2", user_id="vic")
            assert not who.can(Permission.DRAW) and who.can(Permission.PUBLISH)
        finally:
            await rt.close()

    asyncio.run(check())
    assert rc(data_dir, "token", "--app", "1", "--user", "x", ok=False).exit_code == 1
    assert (
        rc(data_dir, "token", "--app", app["app_id"], "--user", "x", "--room", "r", ok=False).exit_code == 2
    )
