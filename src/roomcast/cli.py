"""The ``roomcast`` command: serve, and manage accounts, keys and apps in a data directory."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from roomcast.config import Settings, load_settings
from roomcast.domain.errors import RoomcastError
from roomcast.domain.tenancy import App, AppState
from roomcast.log import setup_logging
from roomcast.runtime import Runtime

T = TypeVar("T")

cli = typer.Typer(help="roomcast: self-hosted RTC rooms and cloud recording.", no_args_is_help=True)
account_cli = typer.Typer(help="Accounts (tenants).", no_args_is_help=True)
key_cli = typer.Typer(help="API key pairs (SecretId/SecretKey, AK/SK).", no_args_is_help=True)
app_cli = typer.Typer(help="Apps (SdkAppId / app_id).", no_args_is_help=True)
cli.add_typer(account_cli, name="account")
cli.add_typer(key_cli, name="key")
cli.add_typer(app_cli, name="app")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML configuration file.", dir_okay=False, envvar="ROOMCAST_CONFIG"),
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ./var).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _settings(config: Path | None, data_dir: Path | None, **extra: Any) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir, **extra)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _run(settings: Settings, body: Callable[[Runtime], Awaitable[T]]) -> T:
    setup_logging("warning", settings.log_format)

    async def main() -> T:
        rt = await Runtime.open(settings)
        try:
            return await body(rt)
        finally:
            await rt.close()

    try:
        return asyncio.run(main())
    except RoomcastError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _emit(data: Any, as_json: bool, human: Callable[[], str]) -> None:
    if as_json:
        typer.echo(json.dumps(_jsonable(data), indent=2, ensure_ascii=False))
    else:
        typer.echo(human())


def _app_public(app: App, with_key: bool = True) -> dict[str, Any]:
    d = _jsonable(app)
    if not with_key:
        d.pop("app_key", None)
        d.pop("callback_key", None)
    return dict(d)


# -- serve ---------------------------------------------------------------------------------------
@cli.command()
def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8080).")] = None,
) -> None:
    """Run the server (SQLite and local storage in the data directory unless configured)."""
    from roomcast.server import run

    settings = _settings(config, data_dir, host=host, port=port)
    setup_logging(settings.log_level, settings.log_format)

    async def prepare() -> None:
        rt = await Runtime.open(settings)
        try:
            created = await rt.bootstrap()
        finally:
            await rt.close()
        if created:
            creds, app = created
            # Printed once on the console for the new user; deliberately not through the logger.
            print(
                "\nroomcast: created a default account and app (shown only this once):\n"
                f"  account_id  {creds.account_id}\n  project_id  {creds.project_id}\n"
                f"  secret_id   {creds.secret_id}\n  secret_key  {creds.secret_key}\n"
                f"  app_id      {app.app_id}\n  sdk_app_id  {app.sdk_app_id}\n  app_key     {app.app_key}\n",
                file=sys.stdout,
                flush=True,
            )

    asyncio.run(prepare())
    run(settings)


# -- accounts ------------------------------------------------------------------------------------
@account_cli.command("create")
def account_create(
    name: Annotated[str, typer.Option("--name", help="Account name.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an account with its first API key (the secret key is shown only now)."""
    creds = _run(_settings(config, data_dir), lambda rt: rt.tenancy.create_account(name))
    data = {
        "account_id": creds.account_id,
        "project_id": creds.project_id,
        "secret_id": creds.secret_id,
        "secret_key": creds.secret_key,
    }
    _emit(data, as_json, lambda: "\n".join(f"{k:11} {v}" for k, v in data.items()))


@account_cli.command("list")
def account_list(as_json: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List accounts."""
    accounts = _run(_settings(config, data_dir), lambda rt: rt.tenancy.list_accounts())
    _emit(
        accounts,
        as_json,
        lambda: "\n".join(f"{a.account_id}  {a.project_id}  {a.name}" for a in accounts) or "(no accounts)",
    )


# -- keys ----------------------------------------------------------------------------------------
@key_cli.command("create")
def key_create(
    account: Annotated[str, typer.Option("--account", help="Account id.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create another key pair for an account (the secret key is shown only now)."""
    creds = _run(_settings(config, data_dir), lambda rt: rt.tenancy.create_key(account))
    data = {"account_id": creds.account_id, "secret_id": creds.secret_id, "secret_key": creds.secret_key}
    _emit(data, as_json, lambda: "\n".join(f"{k:11} {v}" for k, v in data.items()))


@key_cli.command("list")
def key_list(
    account: Annotated[str | None, typer.Option("--account", help="Only this account's keys.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List key pairs (secret ids and status; secret keys are never shown again)."""
    keys = _run(_settings(config, data_dir), lambda rt: rt.tenancy.list_keys(account))
    _emit(
        keys,
        as_json,
        lambda: "\n".join(f"{k.secret_id}  {k.account_id}  {k.status.value}" for k in keys) or "(no keys)",
    )


@key_cli.command("revoke")
def key_revoke(
    secret_id: Annotated[str, typer.Argument(help="The SecretId / AK to revoke.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a key pair: requests signed with it are refused from now on."""
    key = _run(_settings(config, data_dir), lambda rt: rt.tenancy.revoke_key(secret_id))
    _emit(key, as_json, lambda: f"{key.secret_id} {key.status.value}")


# -- apps ----------------------------------------------------------------------------------------
@app_cli.command("create")
def app_create(
    account: Annotated[str, typer.Option("--account", help="Owning account id.")],
    name: Annotated[str, typer.Option("--name", help="App name (unique within the account).")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an app; prints its app_id, sdk_app_id and app_key."""
    app = _run(_settings(config, data_dir), lambda rt: rt.tenancy.create_app(account, name))
    data = _app_public(app)
    _emit(data, as_json, lambda: f"app_id {app.app_id}\nsdk_app_id {app.sdk_app_id}\napp_key {app.app_key}")


@app_cli.command("list")
def app_list(
    account: Annotated[str | None, typer.Option("--account", help="Only this account's apps.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List apps (without their keys)."""
    _, apps = _run(_settings(config, data_dir), lambda rt: rt.tenancy.list_apps(account))
    _emit(
        [_app_public(a, with_key=False) for a in apps],
        as_json,
        lambda: (
            "\n".join(f"{a.sdk_app_id}  {a.app_id}  {a.state.value:8}  {a.name}" for a in apps) or "(no apps)"
        ),
    )


AppRef = Annotated[str, typer.Argument(help="app_id or sdk_app_id.")]


def _ref(app_ref: str) -> str | int:
    """A number of up to 10 digits is an sdk_app_id; anything else an app_id."""
    return int(app_ref) if app_ref.isdigit() and len(app_ref) <= 10 else app_ref


@app_cli.command("show")
def app_show(
    app_ref: AppRef, as_json: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Show one app, including its app_key."""
    app = _run(_settings(config, data_dir), lambda rt: rt.tenancy.get_app(_ref(app_ref)))
    data = _app_public(app)
    _emit(data, as_json, lambda: "\n".join(f"{k:20} {v}" for k, v in data.items()))


def _set_state(
    app_ref: str, state: AppState, as_json: bool, config: Path | None, data_dir: Path | None
) -> None:
    app = _run(_settings(config, data_dir), lambda rt: rt.tenancy.set_app_state(_ref(app_ref), state))
    _emit(_app_public(app, with_key=False), as_json, lambda: f"{app.app_id} {app.state.value}")


@app_cli.command("enable")
def app_enable(
    app_ref: AppRef, as_json: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Enable an app."""
    _set_state(app_ref, AppState.ENABLED, as_json, config, data_dir)


@app_cli.command("disable")
def app_disable(
    app_ref: AppRef, as_json: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Disable an app: new joins and new tasks are refused."""
    _set_state(app_ref, AppState.DISABLED, as_json, config, data_dir)


@app_cli.command("delete")
def app_delete(
    app_ref: AppRef, as_json: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Delete an app (its ids are never reused)."""
    _run(_settings(config, data_dir), lambda rt: rt.tenancy.delete_app(_ref(app_ref)))
    _emit({"deleted": app_ref}, as_json, lambda: f"{app_ref} deleted")


@app_cli.command("set-callback")
def app_set_callback(
    app_ref: AppRef,
    url: Annotated[str, typer.Option("--url", help="Callback URL (empty to remove).")],
    key: Annotated[str | None, typer.Option("--key", help="Key that signs callbacks.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set the URL (and signing key) that receives this app's event callbacks."""
    app = _run(
        _settings(config, data_dir), lambda rt: rt.tenancy.set_callback(_ref(app_ref), url or None, key)
    )
    _emit(
        _app_public(app, with_key=False), as_json, lambda: f"{app.app_id} callback {app.callback_url or '-'}"
    )


@cli.command()
def token(
    app: Annotated[str, typer.Option("--app", help="sdk_app_id (or app_id) of the app.")],
    user: Annotated[str, typer.Option("--user", help="User id the token is for.")],
    expire: Annotated[
        int, typer.Option("--expire", help="Validity in seconds.", min=1, max=180 * 86400)
    ] = 86400,
    jwt: Annotated[bool, typer.Option("--jwt", help="Issue a native JWT instead of a UserSig.")] = False,
    room: Annotated[str | None, typer.Option("--room", help="JWT only: restrict to this room.")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a room-join token (a Tencent UserSig by default) signed with the app's key."""
    from roomcast.services.join_tokens import issue_jwt, issue_usersig

    if room is not None and not jwt:
        typer.echo("error: --room applies to --jwt tokens (a UserSig is valid for every room)", err=True)
        raise typer.Exit(2)
    the_app = _run(_settings(config, data_dir), lambda rt: rt.tenancy.get_app(_ref(app)))
    tok = (
        issue_jwt(the_app, user, room_id=room, expire_s=expire)
        if jwt
        else issue_usersig(the_app, user, expire)
    )
    data = {"sdk_app_id": the_app.sdk_app_id, "user_id": user, "expire": expire, "token": tok}
    _emit(data, as_json, lambda: tok)


def main() -> None:
    cli()


# -- bots ----------------------------------------------------------------------------------------
bot_cli = typer.Typer(help="Synthetic participants for tests, demos and benchmarks.", no_args_is_help=True)
cli.add_typer(bot_cli, name="bot")

ServerOpt = Annotated[str, typer.Option("--server", help="Server base URL, e.g. http://127.0.0.1:8080.")]
BotAppOpt = Annotated[str, typer.Option("--app", help="sdk_app_id (or app_id) of the app.")]
BotRoomOpt = Annotated[str, typer.Option("--room", help="Room id.")]
BotUserOpt = Annotated[str, typer.Option("--user", help="User id of the bot.")]
BotTokenOpt = Annotated[str, typer.Option("--token", help="Join token (UserSig or JWT) for the user.")]
DurationOpt = Annotated[
    float | None, typer.Option("--duration", help="Seconds to stay (default: until Ctrl-C).", min=0)
]


def _bot_run(body: Callable[[], Coroutine[Any, Any, Any]], as_json: bool) -> None:
    """Run a bot; print its result; exit 0 (normal end), 3 (removed), 4 (dismissed), 2 (bad
    arguments or unauthorized) or 1 (anything else) with a one-line reason on stderr."""
    from roomcast.bots import BotError, BotResult

    setup_logging("error", "text")
    try:
        result: BotResult = asyncio.run(body())
    except BotError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exc.exit_code) from exc
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(f"{result.user_id}: {result.reason.value} after {result.seconds:.1f} s")
        for tid in result.published:
            typer.echo(f"  published {tid}")
        for tid, tc in result.received.items():
            typer.echo(f"  received  {tid:32} {tc.frames:6} frames  {tc.fps:5.1f} fps")
    if result.exit_code != 0:
        typer.echo(f"error: {result.describe()}", err=True)
        raise typer.Exit(result.exit_code)


@bot_cli.command("publish")
def bot_publish(
    server: ServerOpt,
    app: BotAppOpt,
    room: BotRoomOpt,
    user: BotUserOpt,
    token: BotTokenOpt,
    duration: DurationOpt = None,
    video: Annotated[str, typer.Option("--video", help="Camera as WIDTHxHEIGHT@FPS.")] = "640x360@15",
    no_video: Annotated[bool, typer.Option("--no-video", help="Publish no camera.")] = False,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Publish no microphone.")] = False,
    screen: Annotated[bool, typer.Option("--screen", help="Also share a 1280x720@5 screen.")] = False,
    file: Annotated[
        str | None, typer.Option("--file", help="Publish this media file instead of the test pattern.")
    ] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Repeat --file until stopped.")] = False,
    subscribe: Annotated[
        bool, typer.Option("--subscribe", help="Also receive everyone else and count frames.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Publish the test pattern (colour, clock, flash and beep each second) or a media file."""
    from roomcast.bots import BotError, parse_video, publish_bot

    try:
        spec = None if no_video else parse_video(video)
    except BotError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    _bot_run(
        lambda: publish_bot(
            server,
            app,
            room,
            user,
            token,
            duration=duration,
            video=spec,
            audio=not no_audio,
            screen=screen,
            file=file,
            loop_file=loop,
            subscribe=subscribe,
        ),
        as_json,
    )


@bot_cli.command("subscribe")
def bot_subscribe(
    server: ServerOpt,
    app: BotAppOpt,
    room: BotRoomOpt,
    user: BotUserOpt,
    token: BotTokenOpt,
    duration: DurationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscribe to every track in the room and print the frames received per track."""
    from roomcast.bots import subscribe_bot

    _bot_run(lambda: subscribe_bot(server, app, room, user, token, duration=duration), as_json)
