"""The ``roomcast`` command: serve; manage accounts, keys and apps; look at rooms, tasks and
callbacks; run synthetic participants. Every command works on the server's data directory."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from roomcast import __version__
from roomcast.config import Settings, load_settings
from roomcast.domain.errors import InvalidArgument, NotFound, RoomcastError
from roomcast.domain.tenancy import App, AppState, KeyStatus
from roomcast.log import setup_logging
from roomcast.runtime import Runtime

T = TypeVar("T")

cli = typer.Typer(help="roomcast: self-hosted RTC rooms and cloud recording.", no_args_is_help=True)
account_cli = typer.Typer(help="Accounts (tenants).", no_args_is_help=True)
key_cli = typer.Typer(help="API key pairs (SecretId/SecretKey, AK/SK).", no_args_is_help=True)
app_cli = typer.Typer(help="Apps (SdkAppId / app_id).", no_args_is_help=True)
room_cli = typer.Typer(help="Rooms open now (as the server recorded them).", no_args_is_help=True)
task_cli = typer.Typer(help="Tasks (recordings) with their state and files.", no_args_is_help=True)
callback_cli = typer.Typer(help="Event callbacks and their delivery.", no_args_is_help=True)
cli.add_typer(account_cli, name="account")
cli.add_typer(key_cli, name="key")
cli.add_typer(app_cli, name="app")
cli.add_typer(room_cli, name="room")
cli.add_typer(task_cli, name="task")
cli.add_typer(callback_cli, name="callback")

DEFAULT_SERVER = "http://127.0.0.1:8080"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"roomcast {__version__}")
        raise typer.Exit()


@cli.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """roomcast: self-hosted RTC rooms and cloud recording."""


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML configuration file.", dir_okay=False, envvar="ROOMCAST_CONFIG"),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default: $ROOMCAST_DATA_DIR, else ./var in the current directory).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _has_data(settings: Settings) -> bool:
    return settings.database_url is not None or (settings.data_dir / "roomcast.db").is_file()


def _data_dir_source(data_dir: Path | None) -> str:
    if data_dir is not None:
        return "given with --data-dir"
    if os.environ.get("ROOMCAST_DATA_DIR"):
        return "from ROOMCAST_DATA_DIR"
    return "the default: ./var in the current directory, or data_dir in the config file"


def _settings(
    config: Path | None, data_dir: Path | None, *, need_data: bool = True, **extra: Any
) -> Settings:
    """Settings for a command; with ``need_data``, refuse (instead of silently creating) an empty
    data directory: the usual cause is running from another directory than the server."""
    try:
        settings = load_settings(config, data_dir=data_dir, **extra)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if need_data and not _has_data(settings):
        typer.echo(
            f"error: no roomcast data in {settings.data_dir.resolve()} ({_data_dir_source(data_dir)}).\n"
            "Point to the server's data directory with --data-dir DIR or ROOMCAST_DATA_DIR=DIR\n"
            "(the export block that ./scripts/serve prints sets ROOMCAST_DATA_DIR).",
            err=True,
        )
        raise typer.Exit(2)
    return settings


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


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    """Aligned columns under a header line, or ``empty`` when there is nothing to list."""
    if not rows:
        return empty
    cells = [[_cell(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [[h.upper() for h in headers], *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _public_url(settings: Settings) -> str:
    """Base of links the CLI prints: the configured public URL, else the server the shell talks to
    ($ROOMCAST_URL, from the export block), else the one derived from host and port."""
    if settings.public_url:
        return settings.resolved_public_url
    return os.environ.get("ROOMCAST_URL", "").rstrip("/") or settings.resolved_public_url


def _app_public(app: App, with_key: bool = True) -> dict[str, Any]:
    d = _jsonable(app)
    if not with_key:
        d.pop("app_key", None)
        d.pop("callback_key", None)
    return dict(d)


def _ref(app_ref: str) -> str | int:
    """A number of up to 10 digits is an sdk_app_id; anything else an app_id."""
    return int(app_ref) if app_ref.isdigit() and len(app_ref) <= 10 else app_ref


async def _find_app(rt: Runtime, app_ref: str) -> App:
    """An app by sdk_app_id, app_id or (when unambiguous) name."""
    try:
        return await rt.tenancy.get_app(_ref(app_ref))
    except NotFound:
        _, apps = await rt.tenancy.list_apps()
        named = [a for a in apps if a.name == app_ref]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            ids = ", ".join(str(a.sdk_app_id) for a in named)
            raise InvalidArgument(
                f"{len(named)} apps are named {app_ref} ({ids}): give the id", subject="app"
            ) from None
        raise


# -- serve ---------------------------------------------------------------------------------------
def next_steps(
    settings: Settings,
    app: App,
    *,
    secret_id: str,
    project_id: str,
    secret_key: str | None,
    account_id: str = "ACCOUNT_ID",
) -> str:
    """What a new user does next, with the real ids: links, an export block, where the data is."""
    url = settings.resolved_public_url
    data = settings.data_dir.resolve()
    exports: list[str] = []
    if sys.prefix != sys.base_prefix:  # a virtualenv (./scripts/serve): put its `roomcast` on PATH
        exports.append(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    exports.append(f"export ROOMCAST_DATA_DIR={shlex.quote(str(data))}")
    if settings.database_url:
        exports.append(f"export ROOMCAST_DATABASE_URL={shlex.quote(settings.database_url)}")
    exports.append(f"export ROOMCAST_URL={shlex.quote(url)}")
    exports.append(f"export SECRET_ID={shlex.quote(secret_id)} PROJECT_ID={shlex.quote(project_id)}")
    if secret_key is not None:
        exports.append(f"export SECRET_KEY={shlex.quote(secret_key)}")
    exports.append(f"export APP_ID={shlex.quote(app.app_id)} SDK_APP_ID={app.sdk_app_id}")
    lines = [
        "Next steps",
        f"  Browser client  {url}/?app={app.sdk_app_id}&room=demo&user=alice",
        "                  "
        + (
            "dev mode is on: the page gets a token for you"
            if settings.dev_mode
            else f"token: roomcast token --app {app.sdk_app_id} --user alice"
            "   (or serve with ROOMCAST_DEV_MODE=true)"
        ),
        f"  Console         {url}/console   (sign in with SECRET_ID and SECRET_KEY)",
        f"  API docs        {url}/docs",
        f"  Data            {data}   (database, storage, media library, secret.key: back it up)",
        "",
        "  In another terminal, paste this; the README's examples use these variables:",
        "",
        *(f"    {line}" for line in exports),
    ]
    if secret_key is None:
        lines.append(
            "    # SECRET_KEY: the key printed at the first start, or a new pair from"
            f" `roomcast key create --account {account_id}`"
        )
    return "\n".join(lines) + "\n"


async def _serve_banner(rt: Runtime) -> str:
    """Create the default account and app on an empty database; return what to print."""
    created = await rt.bootstrap()
    if created:
        creds, app = created
        return (
            "\nroomcast: created a default account and app (shown only this once):\n"
            f"  account_id  {creds.account_id}\n  project_id  {creds.project_id}\n"
            f"  secret_id   {creds.secret_id}\n  secret_key  {creds.secret_key}\n"
            f"  app_id      {app.app_id}\n  sdk_app_id  {app.sdk_app_id}\n  app_key     {app.app_key}\n\n"
            + next_steps(
                rt.settings,
                app,
                secret_id=creds.secret_id,
                project_id=creds.project_id,
                secret_key=creds.secret_key,
            )
        )
    for account in await rt.tenancy.list_accounts():
        keys = [k for k in await rt.tenancy.list_keys(account.account_id) if k.status is KeyStatus.ACTIVE]
        _, apps = await rt.tenancy.list_apps(account.account_id)
        if keys and apps:
            return "\n" + next_steps(
                rt.settings,
                apps[0],
                secret_id=keys[0].secret_id,
                project_id=account.project_id,
                secret_key=None,
                account_id=account.account_id,
            )
    return f"\nroomcast: data in {rt.settings.data_dir.resolve()}\n"


@cli.command()
def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8080).")] = None,
) -> None:
    """Run the server (SQLite and local storage in the data directory unless configured)."""
    from roomcast.server import address_in_use, run

    settings = _settings(config, data_dir, need_data=False, host=host, port=port)
    busy = address_in_use(settings.host, settings.port) if settings.port else None
    if busy:
        typer.echo(
            f"error: cannot listen on {settings.host}:{settings.port}: {busy}.\n"
            "Another roomcast (or another program) is using it: stop it, or choose another port\n"
            "with --port N (or ROOMCAST_PORT). Nothing was changed.",
            err=True,
        )
        raise typer.Exit(1)
    setup_logging(settings.log_level, settings.log_format)

    async def prepare() -> str:
        rt = await Runtime.open(settings)
        try:
            return await _serve_banner(rt)
        finally:
            await rt.close()

    # Printed on the console for the user; deliberately not through the logger.
    print(asyncio.run(prepare()), file=sys.stdout, flush=True)
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
    settings = _settings(config, data_dir, need_data=False)
    if not _has_data(settings):
        typer.echo(f"note: creating a new data directory in {settings.data_dir.resolve()}", err=True)
    creds = _run(settings, lambda rt: rt.tenancy.create_account(name))
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
        lambda: _table(
            ["account_id", "project_id", "name", "created"],
            [[a.account_id, a.project_id, a.name, a.created_at] for a in accounts],
            "(no accounts)",
        ),
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
        lambda: _table(
            ["secret_id", "account_id", "status", "created"],
            [[k.secret_id, k.account_id, k.status, k.created_at] for k in keys],
            "(no keys)",
        ),
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
        lambda: _table(
            ["sdk_app_id", "app_id", "state", "name", "account_id"],
            [[a.sdk_app_id, a.app_id, a.state, a.name, a.account_id] for a in apps],
            "(no apps)",
        ),
    )


AppRef = Annotated[str, typer.Argument(help="sdk_app_id, app_id or app name.")]


@app_cli.command("show")
def app_show(
    app_ref: AppRef, as_json: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Show one app, including its app_key."""
    app = _run(_settings(config, data_dir), lambda rt: _find_app(rt, app_ref))
    data = _app_public(app)
    _emit(data, as_json, lambda: "\n".join(f"{k:20} {_cell(v)}" for k, v in data.items()))


def _set_state(
    app_ref: str, state: AppState, as_json: bool, config: Path | None, data_dir: Path | None
) -> None:
    async def body(rt: Runtime) -> App:
        return await rt.tenancy.set_app_state((await _find_app(rt, app_ref)).app_id, state)

    app = _run(_settings(config, data_dir), body)
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

    async def body(rt: Runtime) -> None:
        await rt.tenancy.delete_app((await _find_app(rt, app_ref)).app_id)

    _run(_settings(config, data_dir), body)
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

    async def body(rt: Runtime) -> App:
        return await rt.tenancy.set_callback((await _find_app(rt, app_ref)).app_id, url or None, key)

    app = _run(_settings(config, data_dir), body)
    _emit(
        _app_public(app, with_key=False), as_json, lambda: f"{app.app_id} callback {app.callback_url or '-'}"
    )


@cli.command()
def token(
    app: Annotated[str, typer.Option("--app", help="sdk_app_id, app_id or name of the app.")],
    user: Annotated[str, typer.Option("--user", help="User id the token is for.")],
    expire: Annotated[
        int, typer.Option("--expire", help="Validity in seconds.", min=1, max=180 * 86400)
    ] = 86400,
    jwt: Annotated[bool, typer.Option("--jwt", help="Issue a native JWT instead of a UserSig.")] = False,
    room: Annotated[str | None, typer.Option("--room", help="JWT only: restrict to this room.")] = None,
    no_draw: Annotated[
        bool, typer.Option("--no-draw", help="JWT only: the user sees the whiteboard but cannot draw.")
    ] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a room-join token (a Tencent UserSig by default) signed with the app's key."""
    from roomcast.rtc.auth import ALL_PERMISSIONS, Permission
    from roomcast.services.join_tokens import issue_jwt, issue_usersig

    if (room is not None or no_draw) and not jwt:
        typer.echo(
            "error: --room and --no-draw apply to --jwt tokens (a UserSig allows everything)", err=True
        )
        raise typer.Exit(2)
    perms = ALL_PERMISSIONS - {Permission.DRAW} if no_draw else ALL_PERMISSIONS
    the_app = _run(_settings(config, data_dir), lambda rt: _find_app(rt, app))
    tok = (
        issue_jwt(the_app, user, room_id=room, expire_s=expire, permissions=perms)
        if jwt
        else issue_usersig(the_app, user, expire)
    )
    data = {"sdk_app_id": the_app.sdk_app_id, "user_id": user, "expire": expire, "token": tok}
    _emit(data, as_json, lambda: tok)


# -- rooms, tasks, callbacks ---------------------------------------------------------------------
AppFilterOpt = Annotated[str | None, typer.Option("--app", help="Only this app (id or name).")]


async def _app_keys(rt: Runtime, app: str | None) -> list[str] | None:
    return None if app is None else [str((await _find_app(rt, app)).sdk_app_id)]


@room_cli.command("list")
def room_list(
    app: AppFilterOpt = None, as_json: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Rooms open now, with who is in them."""
    from roomcast.services.room_queries import RoomQueries, RoomRecord

    async def body(rt: Runtime) -> list[RoomRecord]:
        return await RoomQueries(rt.db.sessions).open_rooms(await _app_keys(rt, app))

    rooms = _run(_settings(config, data_dir), body)
    _emit(
        rooms,
        as_json,
        lambda: _table(
            ["sdk_app_id", "room", "users", "opened"],
            [[r.sdk_app_id, r.room_id, " ".join(r.users) or "(empty)", r.opened_at] for r in rooms],
            "(no open rooms)",
        ),
    )


@room_cli.command("show")
def room_show(
    app: Annotated[str, typer.Argument(help="sdk_app_id, app_id or app name.")],
    room: Annotated[str, typer.Argument(help="Room id.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """One open room: its users, the quality of their tracks and the tasks (recordings) in it."""
    from roomcast.services.room_queries import RoomQueries
    from roomcast.services.task_queries import TaskQueries

    async def body(rt: Runtime) -> dict[str, Any]:
        the_app = await _find_app(rt, app)
        key = str(the_app.sdk_app_id)
        rooms = [r for r in await RoomQueries(rt.db.sessions).open_rooms([key]) if r.room_id == room]
        if not rooms:
            raise NotFound(f"room {room} is not open", subject="room")
        tasks = TaskQueries(
            rt.db.sessions,
            storage_dir=rt.settings.resolved_storage_dir,
            public_url=_public_url(rt.settings),
        )
        return {
            "sdk_app_id": the_app.sdk_app_id,
            "room_id": room,
            "opened_at": rooms[0].opened_at,
            "users": rooms[0].users,
            "tracks": await RoomQueries(rt.db.sessions).quality(key, room),
            "tasks": await tasks.list(sdk_app_ids=[the_app.sdk_app_id], room_id=room, unfinished=True),
        }

    data = _run(_settings(config, data_dir), body)

    def human() -> str:
        out = [
            f"room {data['room_id']} of app {data['sdk_app_id']}, open since {_cell(data['opened_at'])}",
            f"users: {' '.join(data['users']) or '(none)'}",
            "",
            _table(
                ["track", "kbit/s", "fps", "size", "loss", "jitter_ms"],
                [
                    [
                        tid,
                        None if q.bitrate_bps is None else round(q.bitrate_bps / 1000),
                        None if q.fps is None else round(q.fps, 1),
                        f"{q.width}x{q.height}" if q.width else None,
                        None if q.fraction_lost is None else f"{q.fraction_lost:.1%}",
                        None if q.jitter_ms is None else round(q.jitter_ms, 1),
                    ]
                    for tid, q in sorted(data["tracks"].items())
                ],
                "(no track samples in the last minute)",
            ),
            "",
            _table(
                ["task_id", "kind", "state"],
                [[t.task_id, t.kind, t.state] for t in data["tasks"]],
                "(no running tasks)",
            ),
        ]
        return "\n".join(out)

    _emit(data, as_json, human)


@task_cli.command("list")
def task_list(
    app: AppFilterOpt = None,
    room: Annotated[str | None, typer.Option("--room", help="Only tasks of this room.")] = None,
    running: Annotated[bool, typer.Option("--running", help="Only tasks not ended yet.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (newest first).")] = 50,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only task ids.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Tasks (recordings), newest first."""
    from roomcast.services.task_queries import TaskQueries, TaskView

    async def body(rt: Runtime) -> list[TaskView]:
        ids = None if app is None else [(await _find_app(rt, app)).sdk_app_id]
        q = TaskQueries(
            rt.db.sessions,
            storage_dir=rt.settings.resolved_storage_dir,
            public_url=_public_url(rt.settings),
        )
        return await q.list(sdk_app_ids=ids, room_id=room, unfinished=running, limit=limit)

    tasks = _run(_settings(config, data_dir), body)
    if quiet and not as_json:
        for t in tasks:
            typer.echo(t.task_id)
        return
    _emit(
        tasks,
        as_json,
        lambda: _table(
            ["task_id", "kind", "state", "reason", "sdk_app_id", "room", "created", "files"],
            [
                [t.task_id, t.kind, t.state, t.reason, t.sdk_app_id, t.room_id, t.created_at, t.file_count]
                for t in tasks
            ],
            "(no tasks)",
        ),
    )


@task_cli.command("show")
def task_show(
    task_id: Annotated[str, typer.Argument(help="Task id (as the API returned it).")],
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Wait up to this many seconds for the task to end and its files to be stored.",
        ),
    ] = 0,
    urls: Annotated[bool, typer.Option("--urls", help="Print only the URLs of its stored files.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """One task with its files: where each one is and, for the media library, its URL."""
    from roomcast.services.task_queries import TaskQueries, TaskView

    async def body(rt: Runtime) -> tuple[TaskView, bool]:
        q = TaskQueries(
            rt.db.sessions,
            storage_dir=rt.settings.resolved_storage_dir,
            public_url=_public_url(rt.settings),
        )
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            found = await q.get(task_id)
            if found is None:
                raise NotFound(f"task {task_id} does not exist", subject="task")
            done = found.state == "exited" and all(
                f.state not in ("recording", "uploading") for f in found.files
            )
            if done or asyncio.get_running_loop().time() >= deadline:
                return found, done
            await asyncio.sleep(0.5)

    t, done = _run(_settings(config, data_dir), body)
    if wait and not done:
        typer.echo(f"error: task {task_id} is still {t.state} after {wait:g} s", err=True)
        raise typer.Exit(1)
    if urls and not as_json:
        for f in t.files:
            if f.url:
                typer.echo(f.url)
        return

    def human() -> str:
        head = [
            f"task        {t.task_id}",
            f"kind        {t.kind} ({t.dialect})",
            f"state       {t.state}" + (f" ({t.reason})" if t.reason else ""),
            f"app / room  {t.sdk_app_id} / {t.room_id}",
            f"created     {_cell(t.created_at)}   started {_cell(t.started_at)}   ended {_cell(t.ended_at)}",
            "",
        ]
        files = _table(
            ["key", "state", "size", "seconds", "user", "where", "url"],
            [
                [
                    f.key,
                    f.state,
                    f.size,
                    None if f.duration_ms is None else round(f.duration_ms / 1000, 1),
                    f.user_id or "mix",
                    f.storage,
                    f.url,
                ]
                for f in t.files
            ],
            "(no files yet)",
        )
        return "\n".join(head) + files

    _emit(t, as_json, human)


@callback_cli.command("list")
def callback_list(
    app: AppFilterOpt = None,
    state: Annotated[str | None, typer.Option("--state", help="pending, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (newest first).")] = 50,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Event callbacks, newest first, with their delivery state."""
    from roomcast.services.callback_admin import CallbackAdmin, CallbackView

    async def body(rt: Runtime) -> list[CallbackView]:
        return await CallbackAdmin(rt.db.sessions).list(
            app_keys=await _app_keys(rt, app), state=state, limit=limit, with_body=as_json
        )

    rows = _run(_settings(config, data_dir), body)
    _emit(
        rows,
        as_json,
        lambda: _table(
            ["event_id", "kind", "state", "attempts", "created", "url", "last_error"],
            [[c.event_id, c.kind, c.state, c.attempts, c.created_at, c.url, c.last_error] for c in rows],
            "(no callbacks)",
        ),
    )


@callback_cli.command("redeliver")
def callback_redeliver(
    event_id: Annotated[str, typer.Argument(help="Event id from `callback list`.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Send a callback again (the running server delivers it within a second)."""
    from roomcast.services.callback_admin import CallbackAdmin

    c = _run(_settings(config, data_dir), lambda rt: CallbackAdmin(rt.db.sessions).redeliver(event_id))
    _emit(c, as_json, lambda: f"{c.event_id} {c.state}")


def main() -> None:
    cli()


# -- bots ----------------------------------------------------------------------------------------
bot_cli = typer.Typer(help="Synthetic participants for tests, demos and benchmarks.", no_args_is_help=True)
cli.add_typer(bot_cli, name="bot")

ServerOpt = Annotated[
    str,
    typer.Option(
        "--server",
        envvar="ROOMCAST_URL",
        help="Server base URL (default $ROOMCAST_URL or http://127.0.0.1:8080).",
    ),
]
BotAppOpt = Annotated[str, typer.Option("--app", help="sdk_app_id (or app_id) of the app.")]
BotRoomOpt = Annotated[str, typer.Option("--room", help="Room id.")]
BotUserOpt = Annotated[str, typer.Option("--user", help="User id of the bot.")]
BotTokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Join token (UserSig or JWT); default: a UserSig signed here with the app's key "
        "(needs the data directory).",
    ),
]
DurationOpt = Annotated[
    float | None, typer.Option("--duration", help="Seconds to stay (default: until Ctrl-C).", min=0)
]


def _bot_credentials(
    app: str, user: str, token: str | None, config: Path | None, data_dir: Path | None
) -> tuple[str, str]:
    """The app id to join with and a token: the given one, or a UserSig signed with the app's key."""
    if token is not None:
        return app, token
    from roomcast.services.join_tokens import issue_usersig

    the_app = _run(_settings(config, data_dir), lambda rt: _find_app(rt, app))
    return str(the_app.sdk_app_id), issue_usersig(the_app, user, 86400)


def _bot_run(
    body: Callable[[asyncio.Event], Coroutine[Any, Any, Any]], as_json: bool, started: str, running: str
) -> None:
    """Run a bot, saying what it does on stderr; print its result; exit 0 (normal end), 3 (removed),
    4 (dismissed), 2 (bad arguments or unauthorized) or 1 (anything else) with a one-line reason."""
    from roomcast.bots import BotError, BotResult

    setup_logging("error", "text")

    async def main() -> BotResult:
        joined = asyncio.Event()
        typer.echo(started, err=True)

        async def announce() -> None:
            await joined.wait()
            typer.echo(running, err=True)

        herald = asyncio.ensure_future(announce())
        try:
            result: BotResult = await body(joined)
            return result
        finally:
            herald.cancel()

    try:
        result = asyncio.run(main())
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


def _until(duration: float | None) -> str:
    return f"for {duration:g} s" if duration is not None else "until Ctrl-C"


@bot_cli.command("publish")
def bot_publish(
    app: BotAppOpt,
    room: BotRoomOpt,
    user: BotUserOpt,
    server: ServerOpt = DEFAULT_SERVER,
    token: BotTokenOpt = None,
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
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Publish the test pattern (colour, clock, flash and beep each second) or a media file."""
    from roomcast.bots import BotError, parse_video, publish_bot

    try:
        spec = None if no_video else parse_video(video)
    except BotError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    app_id, tok = _bot_credentials(app, user, token, config, data_dir)
    what = [
        f"{file}" if file else (f"camera {video}" if spec else ""),
        "" if no_audio else ("its audio" if file else "microphone (beep)"),
        "screen 1280x720@5" if screen else "",
    ]
    published = " + ".join(w for w in what if w) or "nothing"
    _bot_run(
        lambda joined: publish_bot(
            server,
            app_id,
            room,
            user,
            tok,
            duration=duration,
            video=spec,
            audio=not no_audio,
            screen=screen,
            file=file,
            loop_file=loop,
            subscribe=subscribe,
            joined=joined,
        ),
        as_json,
        started=f"{user}: joining room {room} of app {app_id} on {server}",
        running=f"{user}: in room {room}, publishing {published} {_until(duration)}",
    )


@bot_cli.command("subscribe")
def bot_subscribe(
    app: BotAppOpt,
    room: BotRoomOpt,
    user: BotUserOpt,
    server: ServerOpt = DEFAULT_SERVER,
    token: BotTokenOpt = None,
    duration: DurationOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Subscribe to every track in the room and print the frames received per track."""
    from roomcast.bots import subscribe_bot

    app_id, tok = _bot_credentials(app, user, token, config, data_dir)
    _bot_run(
        lambda joined: subscribe_bot(server, app_id, room, user, tok, duration=duration, joined=joined),
        as_json,
        started=f"{user}: joining room {room} of app {app_id} on {server}",
        running=f"{user}: in room {room}, receiving every track {_until(duration)}",
    )
