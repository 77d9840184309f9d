"""The browser client with two nodes: a page joins through a node that does not serve the room and
follows the redirect; when the room's node dies, the page rejoins by itself and the room moves."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from tests.api.conftest import Tenant
from tests.support.nodes import LEASE_S, Node, Nodes

pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

from playwright.sync_api import BrowserContext, Page

from tests.e2e.test_browser import chromium, decoded, join_with_dev_token, state, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

__all__ = ["chromium"]  # the module-scoped browser fixture, shared with the single-node tests


@pytest.fixture
def pages(chromium: BrowserContext) -> Iterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.close()


def open_page(chromium: BrowserContext, pages: list[Page], node: Node, console: list[str]) -> Page:
    page = chromium.new_page()
    pages.append(page)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.goto(node.url + "/")
    wait_for("/api/config to say dev mode", lambda: state(page)["devMode"])
    return page


def redirected(page: Page) -> bool:
    return any(line.startswith("The room is on node") for line in state(page)["log"])


def test_pages_on_two_nodes_meet_and_rejoin_after_a_node_dies(
    cluster: Nodes, tenant: Tenant, chromium: BrowserContext, pages: list[Page]
) -> None:
    console: list[str] = []
    app_id = str(tenant.app.sdk_app_id)
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    alice = open_page(chromium, pages, a, console)
    join_with_dev_token(alice, app_id, "606", "alice")
    bob = open_page(chromium, pages, b, console)
    join_with_dev_token(bob, app_id, "606", "bob")
    # Exactly one page was sent on to the other node; they see each other.
    assert redirected(alice) != redirected(bob), (state(alice)["log"], state(bob)["log"])
    wait_for("alice decodes bob", partial(decoded, alice, "bob/camera", 10))
    wait_for("bob decodes alice", partial(decoded, bob, "alice/camera", 10))

    # Kill the room's node; the page served by the other node rejoins there by itself.
    home, survivor_page = (a, bob) if redirected(bob) else (b, alice)
    survivor = cluster.other(home)
    cluster.kill(home.name)
    try:
        wait_for("the page to notice", lambda: "Reconnecting" in (state(survivor_page).get("notice") or ""))
        try:
            wait_for(
                "the page to rejoin",
                lambda: state(survivor_page)["phase"] == "joined",
                limit=LEASE_S * 6 + 10,
            )
        except AssertionError:
            st = state(survivor_page)
            raise AssertionError((st["phase"], st["notice"], st["log"], console)) from None
        assert survivor.port == int(survivor_page.url.split(":")[2].split("/")[0])
    finally:
        cluster.start(home.name)
    errors = [line for line in console if line.startswith("pageerror")]
    assert not errors, errors
