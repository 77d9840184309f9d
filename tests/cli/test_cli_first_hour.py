"""CLI behaviour a new user meets: version, headers, app names, an empty data directory refused,
and the room, task and callback commands on a data directory with nothing in it yet."""

import json
from pathlib import Path

from typer.testing import CliRunner

from roomcast.cli import cli

runner = CliRunner()


def rc(data_dir: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, [*args, "--data-dir", str(data_dir)])
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.stderr


def test_version() -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("roomcast ")


def test_empty_data_dir_is_refused_not_created(tmp_path: Path) -> None:
    data = tmp_path / "var"
    for args in (["app", "list"], ["token", "--app", "1", "--user", "u"], ["task", "list"], ["room", "list"]):
        err = rc(data, *args, code=2)
        assert f"no roomcast data in {data.resolve()}" in err and "ROOMCAST_DATA_DIR" in err
    assert not data.exists()


def test_names_headers_and_empty_lists(data_dir: Path) -> None:
    acc = json.loads(rc(data_dir, "account", "create", "--name", "acme", "--json"))
    app = json.loads(
        rc(data_dir, "app", "create", "--account", acc["account_id"], "--name", "shop", "--json")
    )
    shown = json.loads(rc(data_dir, "app", "show", "shop", "--json"))
    assert shown["sdk_app_id"] == app["sdk_app_id"] and shown["app_key"] == app["app_key"]
    assert rc(data_dir, "app", "disable", "shop").strip() == f"{app['app_id']} disabled"
    listed = rc(data_dir, "app", "list").splitlines()
    assert listed[0].split() == ["SDK_APP_ID", "APP_ID", "STATE", "NAME", "ACCOUNT_ID"]
    assert listed[1].split()[:4] == [str(app["sdk_app_id"]), app["app_id"], "disabled", "shop"]
    assert rc(data_dir, "key", "list").splitlines()[0].split()[:2] == ["SECRET_ID", "ACCOUNT_ID"]
    assert rc(data_dir, "account", "list").splitlines()[0].split()[:2] == ["ACCOUNT_ID", "PROJECT_ID"]
    # Two apps of one name: the name is ambiguous and the error says which ids to use.
    acc2 = json.loads(rc(data_dir, "account", "create", "--name", "other", "--json"))
    other = json.loads(
        rc(data_dir, "app", "create", "--account", acc2["account_id"], "--name", "shop", "--json")
    )
    err = rc(data_dir, "app", "show", "shop", code=1)
    assert "2 apps are named shop" in err and str(other["sdk_app_id"]) in err
    assert "does not exist" in rc(data_dir, "app", "show", "nope", code=1)

    assert rc(data_dir, "room", "list").strip() == "(no open rooms)"
    assert rc(data_dir, "task", "list").strip() == "(no tasks)"
    assert rc(data_dir, "task", "list", "--quiet").strip() == ""
    assert rc(data_dir, "callback", "list").strip() == "(no callbacks)"
    assert "does not exist" in rc(data_dir, "task", "show", "nope", code=1)
    assert "is not open" in rc(data_dir, "room", "show", str(app["sdk_app_id"]), "r1", code=1)


def test_bot_publish_signs_its_own_token(data_dir: Path) -> None:
    """Without --token the bot signs a UserSig with the app's key (here it then fails to reach
    a server that is not running, after saying what it does)."""
    acc = json.loads(rc(data_dir, "account", "create", "--name", "acme", "--json"))
    app = json.loads(
        rc(data_dir, "app", "create", "--account", acc["account_id"], "--name", "bots", "--json")
    )
    result = runner.invoke(
        cli,
        [
            "bot",
            "publish",
            "--app",
            "bots",
            "--room",
            "r",
            "--user",
            "u",
            "--server",
            "http://127.0.0.1:9",
            "--duration",
            "1",
            "--data-dir",
            str(data_dir),
        ],
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"u: joining room r of app {app['sdk_app_id']} on http://127.0.0.1:9")
    assert "error:" in result.stderr


def test_serve_banner_first_start_and_later(data_dir: Path) -> None:
    """The first start prints the credentials and an export block with the secret key; later
    starts print the same next steps without it, saying how to get a key pair."""
    import asyncio

    from roomcast.cli import _serve_banner
    from roomcast.config import Settings
    from roomcast.runtime import Runtime

    async def twice() -> tuple[str, str]:
        rt = await Runtime.open(Settings(data_dir=data_dir, port=8123))
        try:
            return await _serve_banner(rt), await _serve_banner(rt)
        finally:
            await rt.close()

    first, later = asyncio.run(twice())
    secret_key = next(line.split()[1] for line in first.splitlines() if line.strip().startswith("secret_key"))
    exports = [line.strip() for line in first.splitlines() if line.startswith("    export ")]
    assert f"export SECRET_KEY={secret_key}" in exports
    assert f"export ROOMCAST_DATA_DIR={data_dir.resolve()}" in exports
    assert "export ROOMCAST_URL=http://127.0.0.1:8123" in exports
    assert any(e.startswith("export APP_ID=") and "SDK_APP_ID=" in e for e in exports)
    assert "http://127.0.0.1:8123/console" in first and "/?app=" in first
    assert secret_key not in later and "export SECRET_KEY" not in later
    account = next(line.split()[1] for line in first.splitlines() if line.strip().startswith("account_id"))
    assert f"roomcast key create --account {account}" in later
    assert [e for e in exports if "SECRET_KEY" not in e] == [
        line.strip() for line in later.splitlines() if line.startswith("    export ")
    ]
