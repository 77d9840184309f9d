"""The console (/console) and /docs in headless Chromium, offline (any request off 127.0.0.1 fails).

The acceptance walk: sign in with a key pair, see a room with two synthetic publishers, remove
one, start a recording with the official TRTC SDK, see it running (and the browser client's
"Recording" badge), stop it, play its MP4 and its HLS playlist inline. Screenshots at 1280x800
and at phone width are saved under the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.trtc.v20190722 import models

from roomcast.bots import BotResult, publish_bot
from roomcast.runtime import Runtime
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.conftest import free_port
from tests.support.live import LiveServer, live_server

pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, join_with_dev_token, state, trtc, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOM = "console-room"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = Path(tmp_path_factory.mktemp("console")) / "var"
    with live_server(
        data,
        dev_mode=True,
        ice_host_addresses=["127.0.0.1"],
        stats_interval_s=0.5,
        empty_room_grace_s=0.5,
        allow_private_urls=True,
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


def offline_page(browser: Browser, console: list[str], width: int = 1280, height: int = 800) -> Page:
    """A page that can reach 127.0.0.1 only: a CDN request would fail (and be recorded)."""
    ctx = browser.new_context(viewport={"width": width, "height": height})

    def route(r: Route) -> None:
        host = r.request.url.split("/")[2] if "://" in r.request.url else ""
        if host.startswith("127.0.0.1") or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            console.append(f"blocked: {r.request.url}")
            r.abort()

    ctx.route("**/*", route)
    page = ctx.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    return page


class Publishers:
    """Synthetic participants (roomcast.bots) on an event loop of their own."""

    def __init__(self, server: LiveServer, t: Tenant, users: list[str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-bots", daemon=True)
        self.thread.start()
        self.stops: dict[str, asyncio.Event] = {}
        self.runs: list[Future[BotResult]] = []
        for user in users:
            self.runs.append(asyncio.run_coroutine_threadsafe(self._run(server, t, user), self.loop))

    async def _run(self, server: LiveServer, t: Tenant, user: str) -> BotResult:
        stop = self.stops[user] = asyncio.Event()
        return await publish_bot(
            server.url,
            str(t.app.sdk_app_id),
            ROOM,
            user,
            issue_usersig(t.app, user),
            video=(320, 180, 15),
            stop=stop,
            handle_signals=False,
        )

    def close(self) -> None:
        for stop in list(self.stops.values()):
            self.loop.call_soon_threadsafe(stop.set)
        for run in self.runs:
            run.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def in_thread(fn: Any, *args: Any) -> Any:
    # Playwright's sync API runs an event loop in this thread; asyncio.run-based helpers get their own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_docs_render_offline(server: LiveServer, browser: Browser, tmp_path: Path) -> None:
    console: list[str] = []
    page = offline_page(browser, console)
    page.goto(server.url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock-tag-section", timeout=20_000)
    tags = page.locator(".opblock-tag").all_inner_texts()
    for tag in ("native: tasks", "native: rooms", "trtc", "sparkrtc", "jocloud", "media"):
        assert any(t.strip().startswith(tag) for t in tags), tags
    shot(page, tmp_path, "docs")
    assert not [c for c in console if c.startswith("blocked:")], console
    page.context.close()


def test_console_walkthrough(server: LiveServer, browser: Browser, tmp_path: Path) -> None:
    t: Tenant = in_thread(make_tenant, server)
    dead = f"http://127.0.0.1:{free_port()}/cb"

    async def set_cb(rt: Runtime) -> None:
        await rt.tenancy.set_callback(t.app.app_id, dead, "k" * 16)

    in_thread(server.run, set_cb)
    console: list[str] = []
    page = offline_page(browser, console)
    bots = Publishers(server, t, ["u1", "u2"])
    try:
        # Sign in with the key pair.
        page.goto(server.url + "/console")
        page.get_by_label("Secret id").fill(t.creds.secret_id)
        page.get_by_label("Secret key").fill(t.creds.secret_key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#view-rooms:not([hidden])")

        # The room with its two publishers, their tracks and quality.
        page.locator(f'#rooms-table tr[data-key="{ROOM}"]').click(timeout=30_000)
        for user in ("u1", "u2"):
            page.wait_for_selector(
                f'#participants .card[data-user="{user}"] li[data-track="{user}/camera"]', timeout=30_000
            )
        wait_for(
            "quality samples",
            lambda: "kbit/s" in page.locator('#participants .card[data-user="u1"]').inner_text(),
        )
        shot(page, tmp_path, "room-1280")

        # Remove one.
        page.get_by_role("button", name="Remove u2").click()
        page.wait_for_selector('#participants .card[data-user="u2"]', state="detached", timeout=15_000)
        assert page.locator("#participants .card").count() == 1

        # Meanwhile, the browser client in the same room (dev mode) shows no recording yet.
        viewer = offline_page(browser, console)
        viewer.goto(f"{server.url}/?app={t.app.sdk_app_id}&room={ROOM}&user=viewer")
        join_with_dev_token(viewer, str(t.app.sdk_app_id), ROOM, "viewer")
        assert not state(viewer)["recording"]

        # Record through the official TRTC SDK: mixed, into the media library as MP4 and HLS.
        client = trtc(server, t)
        req = models.CreateCloudRecordingRequest()
        req.from_json_string(
            json.dumps(
                {
                    "SdkAppId": t.app.sdk_app_id,
                    "RoomId": ROOM,
                    "RoomIdType": 0,
                    "UserId": "recorder",
                    "UserSig": issue_usersig(t.app, "recorder"),
                    "RecordParams": {"RecordMode": 2, "MaxIdleTime": 30},
                    "MixTranscodeParams": {
                        "VideoParams": {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 600000, "Gop": 2}
                    },
                    "MixLayoutParams": {"MixLayoutMode": 3},
                    "StorageParams": {"CloudVod": {"TencentVod": {"MediaType": 3}}},
                }
            )
        )
        task_id = client.CreateCloudRecording(req).TaskId
        page.get_by_role("button", name="Tasks").click()
        page.wait_for_selector(f'#tasks-table tr[data-key="{task_id}"][data-state="running"]', timeout=30_000)
        shot(page, tmp_path, "task-running-1280")
        wait_for("the recording badge in the browser client", lambda: state(viewer)["recording"])
        assert viewer.locator("#recording").is_visible()
        shot(viewer, tmp_path, "client-recording")
        page.wait_for_timeout(5000)

        stop = models.DeleteCloudRecordingRequest()
        stop.SdkAppId, stop.TaskId = t.app.sdk_app_id, task_id
        client.DeleteCloudRecording(stop)
        page.wait_for_selector(f'#tasks-table tr[data-key="{task_id}"][data-state="exited"]', timeout=60_000)
        wait_for("the badge to go", lambda: not state(viewer)["recording"])

        # Play the files inline: the MP4, then the HLS playlist (hls.js or native HLS).
        page.locator(f'#tasks-table tr[data-key="{task_id}"]').click()
        mp4 = page.locator('#files-table tr[data-file$=".mp4"]')
        mp4.get_by_role("button", name="Play").click(timeout=30_000)
        played = (
            "() => { const v = document.getElementById('player');"
            " return v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0.5; }"
        )
        page.wait_for_function(played, timeout=30_000)
        assert page.evaluate("document.getElementById('player').videoWidth") == 640
        shot(page, tmp_path, "task-played-mp4-1280")
        download = mp4.get_by_role("link", name="Download").get_attribute("href")
        assert download and download.startswith(f"/api/v1/tasks/{task_id}/files/")
        hls = page.locator('#files-table tr[data-file$=".m3u8"]')
        hls.get_by_role("button", name="Play").click(timeout=30_000)
        page.wait_for_function(played, timeout=30_000)
        shot(page, tmp_path, "task-played-hls-1280")

        # Callbacks with their payloads and delivery state (nobody listens at the URL).
        page.get_by_role("button", name="Callbacks").click()
        page.wait_for_selector("#callbacks details", timeout=30_000)
        first = page.locator("#callbacks details").first
        first.locator("summary").click()
        assert '"EventType"' in first.locator("pre").inner_text()
        first.get_by_role("button", name="Redeliver").click()
        shot(page, tmp_path, "callbacks-1280")

        # Usage: the day's sessions, participant and recording minutes of the app.
        page.get_by_role("button", name="Apps", exact=True).click()
        row = page.locator("#usage-table tbody tr", has_text=str(t.app.sdk_app_id))
        row.wait_for(timeout=15_000)
        assert row.locator("td").nth(2).inner_text().strip() != "0"
        shot(page, tmp_path, "apps-usage-1280")

        # Phone width: every view fits without sideways scrolling of the page.
        page.set_viewport_size({"width": 390, "height": 844})
        for view in ("Apps", "Rooms", "Tasks", "Callbacks"):
            page.get_by_role("button", name=view, exact=True).click()
            page.wait_for_timeout(500)
            assert no_horizontal_scroll(page), view
            shot(page, tmp_path, f"{view.lower()}-phone")
        viewer.context.close()
    finally:
        bots.close()
        page.context.close()
    errors = [c for c in console if c.startswith(("pageerror", "blocked"))]
    assert not errors, errors


def test_client_hints_where_tokens_come_from(browser: Browser, tmp_path: Path) -> None:
    """Dev mode off: no token button, but a hint with the exact command for the pre-filled app and
    user; the pre-filled link itself opens the page (not an API error)."""
    with live_server(tmp_path / "var") as srv:
        console: list[str] = []
        page = offline_page(browser, console)
        page.goto(f"{srv.url}/?app=1400123456&room=demo&user=alice")
        page.wait_for_function("window.roomcast && document.getElementById('token-hint').textContent !== ''")
        hint = page.locator("#token-hint").inner_text()
        assert "roomcast token --app 1400123456 --user alice" in hint and "ROOMCAST_DEV_MODE=true" in hint
        assert not page.get_by_role("button", name="Get a dev token").is_visible()
        page.get_by_role("textbox", name="User", exact=True).fill("bob")
        assert "--user bob" in page.locator("#token-hint").inner_text()
        shot(page, tmp_path, "client-token-hint")
        page.context.close()
    assert not [c for c in console if c.startswith(("pageerror", "blocked"))], console
