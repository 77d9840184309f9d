from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roomcast.domain.tenancy import App, Credentials
from roomcast.runtime import Runtime
from tests.support.live import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("srv")) / "var") as srv:
        yield srv


@dataclass
class Tenant:
    creds: Credentials
    app: App


def make_tenant(server: LiveServer, name: str = "acme") -> Tenant:
    async def body(rt: Runtime) -> Tenant:
        creds = await rt.tenancy.create_account(name)
        app = await rt.tenancy.create_app(creds.account_id, "demo")
        return Tenant(creds, app)

    return server.run(body)


@pytest.fixture
def tenant(server: LiveServer) -> Tenant:
    return make_tenant(server)


@pytest.fixture
def other_tenant(server: LiveServer) -> Tenant:
    return make_tenant(server, "rival")
