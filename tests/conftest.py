"""Shared fixtures: data directories, runtimes on SQLite and PostgreSQL, free ports."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from roomcast.config import Settings
from roomcast.runtime import Runtime

PG_ADMIN_URL_ENV = "ROOMCAST_TEST_PG_URL"
"""An asyncpg URL of a role that may create databases, e.g. postgresql+asyncpg://u:p@127.0.0.1/postgres."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up the developer's ROOMCAST_* settings."""
    for k in list(os.environ):
        if k.startswith("ROOMCAST_") and k not in (PG_ADMIN_URL_ENV, "ROOMCAST_TEST_REDIS_URL"):
            monkeypatch.delenv(k)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


async def _pg_exec(admin_url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = os.environ.get(PG_ADMIN_URL_ENV)
    if not admin:
        if os.environ.get("ROOMCAST_REQUIRE_PG") == "1":
            pytest.fail(f"{PG_ADMIN_URL_ENV} is not set but PostgreSQL tests are required")
        pytest.skip(f"{PG_ADMIN_URL_ENV} not set")
    name = "rc_test_" + uuid.uuid4().hex[:12]
    asyncio.run(_pg_exec(admin, f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, data_dir: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{data_dir / 'test.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    # Tests run their HTTP receivers and image servers on 127.0.0.1.
    return Settings(data_dir=data_dir, allow_private_urls=True)


@pytest.fixture
async def runtime(data_dir: Path, db_url: str) -> AsyncIterator[Runtime]:
    rt = await Runtime.open(Settings(data_dir=data_dir, database_url=db_url, allow_private_urls=True))
    try:
        yield rt
    finally:
        await rt.close()
