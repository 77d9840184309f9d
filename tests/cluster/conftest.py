"""Fixtures for the multi-node tests: a private Redis, a PostgreSQL database and two nodes per
module."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomcast.config import Settings
from roomcast.runtime import Runtime
from tests.api.conftest import Tenant
from tests.conftest import PG_ADMIN_URL_ENV, _pg_exec
from tests.support.nodes import Nodes
from tests.support.redis import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis the test may stop and restart."""
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's test Redis (``ROOMCAST_TEST_REDIS_URL``, started by scripts/test), else a
    private one; tests keep their keys apart with :func:`prefix`."""
    shared = os.environ.get("ROOMCAST_TEST_REDIS_URL")
    if shared:
        yield shared
        return
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """Keys of one test apart from the others' (and deleted after it)."""
    import redis

    name = f"rc-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        keys = list(client.scan_iter(f"{name}:*"))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # a test stopped it
    finally:
        client.close()


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    admin = os.environ.get(PG_ADMIN_URL_ENV)
    if not admin:
        if os.environ.get("ROOMCAST_REQUIRE_PG") == "1":
            pytest.fail(f"{PG_ADMIN_URL_ENV} is not set but PostgreSQL tests are required")
        pytest.skip(f"{PG_ADMIN_URL_ENV} not set")
    name = "rc_nodes_" + uuid.uuid4().hex[:12]
    asyncio.run(_pg_exec(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, redis_server: RedisServer
) -> Iterator[Nodes]:
    c = Nodes(
        Path(tmp_path_factory.mktemp("nodes")) / "var", pg_database, redis_server, ROOMCAST_DEV_MODE="true"
    )
    try:
        c.start("a")  # the first node migrates the database
        c.start("b")
        yield c
    finally:
        c.stop_all()


@pytest.fixture(scope="module")
def tenant(cluster: Nodes) -> Tenant:
    async def make() -> Tenant:
        rt = await Runtime.open(Settings(data_dir=cluster.data, database_url=cluster.pg))
        try:
            creds = await rt.tenancy.create_account("nodes")
            app = await rt.tenancy.create_app(creds.account_id, "demo")
            return Tenant(creds, app)
        finally:
            await rt.close()

    return asyncio.run(make())
