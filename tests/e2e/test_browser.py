"""The browser client (served at ``/``) in Debian's headless Chromium with fake camera and microphone.

Playwright drives ``/usr/bin/chromium`` (never ``playwright install``: the browser is Debian's). Pages
join through the page's own form, and the assertions read WebRTC ``getStats`` through the page's
``window.roomcast`` hook, so what is checked is what the browser decoded.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.rtc.client import RoomClient
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.support.ingest_media import make_media, media_server
from tests.support.live import LiveServer, live_server

pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CHROMIUM = os.environ.get("ROOMCAST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Both pages must keep decoding although only one is in front.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
WAIT_S = 25.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = Path(tmp_path_factory.mktemp("browser")) / "var"
    with live_server(data, dev_mode=True, ice_host_addresses=["127.0.0.1"], empty_room_grace_s=0.5) as srv:
        yield srv


@pytest.fixture
def tenant(server: LiveServer) -> Tenant:
    # Playwright's sync API keeps an event loop running in this thread, and make_tenant uses
    # asyncio.run, so it runs in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(make_tenant, server).result()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    pw: Playwright = sync_playwright().start()
    try:
        ctx = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield ctx
        finally:
            ctx.close()
    finally:
        pw.stop()


@pytest.fixture
def pages(chromium: BrowserContext) -> Iterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.close()


# ------------------------------------------------------------------ helpers


def wait_for(what: str, check: Callable[[], Any], limit: float = WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` and the last value."""
    deadline = time.monotonic() + limit
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def state(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("window.roomcast.state")
    return result


def stats(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate("window.roomcast.stats()")
    return result


def inbound(page: Page, track_id: str) -> dict[str, Any] | None:
    return next((s for s in stats(page) if s["trackId"] == track_id), None)


def decoded(page: Page, track_id: str, more_than: int = 0) -> dict[str, Any] | None:
    """The inbound video stats of ``track_id`` once more than ``more_than`` frames were decoded."""
    s = inbound(page, track_id)
    return s if s is not None and s["framesDecoded"] > more_than else None


def heard(page: Page, track_id: str, more_than: int = 0) -> dict[str, Any] | None:
    """The inbound audio stats of ``track_id`` once more than ``more_than`` packets were played out."""
    s = inbound(page, track_id)
    ok = s is not None and s["packetsReceived"] > more_than and s["totalSamplesReceived"] > 0
    return s if ok else None


PLAYS_AUDIO = """key => {
    const v = document.querySelector(`#tiles .tile[data-key="${key}"] video`);
    return !!v && !v.muted && !v.paused && v.srcObject.getAudioTracks().length === 1;
}"""


def open_page(chromium: BrowserContext, pages: list[Page], server: LiveServer, console: list[str]) -> Page:
    page = chromium.new_page()
    pages.append(page)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.goto(server.url + "/")
    return page


def fill_form(page: Page, app_id: str, room: str, user: str) -> None:
    page.get_by_role("textbox", name="App id").fill(app_id)
    page.get_by_role("textbox", name="Room", exact=True).fill(room)
    page.get_by_role("textbox", name="User", exact=True).fill(user)


def join_with_dev_token(page: Page, app_id: str, room: str, user: str) -> None:
    fill_form(page, app_id, room, user)
    page.get_by_role("button", name="Get a dev token").click()
    page.wait_for_function("document.getElementById('token').value.split('.').length === 3")
    page.get_by_role("button", name="Join").click()
    wait_for(f"{user} to join", lambda: state(page)["phase"] == "joined")


def trtc(server: LiveServer, t: Tenant) -> trtc_client.TrtcClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))
    return trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-guangzhou", prof
    )


def caption(page: Page, key: str) -> str:
    text: str = page.locator(f'#tiles .tile[data-key="{key}"] figcaption').inner_text()
    return text


# -------------------------------------------------------------------- tests


def test_two_pages_see_and_hear_each_other(
    server: LiveServer, tenant: Tenant, chromium: BrowserContext, pages: list[Page], tmp_path: Path
) -> None:
    console: list[str] = []
    app_id = str(tenant.app.sdk_app_id)
    alice = open_page(chromium, pages, server, console)
    wait_for("/api/config to say dev mode", lambda: state(alice)["devMode"])
    join_with_dev_token(alice, app_id, "1234", "alice")
    bob = open_page(chromium, pages, server, console)
    join_with_dev_token(bob, app_id, "1234", "bob")

    # Each page decodes the other's camera (H.264 first) and receives the other's audio.
    for page, other in ((alice, "bob"), (bob, "alice")):
        video = wait_for(f"{other}/camera decoded", partial(decoded, page, f"{other}/camera", 10))
        assert video["kind"] == "video" and video["codec"].lower() == "video/h264", video
        assert video["frameWidth"] > 0 and video["frameHeight"] > 0, video
        audio = wait_for(f"{other}/audio received", partial(heard, page, f"{other}/audio", 20))
        assert audio["codec"].lower() == "audio/opus", audio
        # The remote tile plays the audio (not muted, playing).
        assert page.evaluate(PLAYS_AUDIO, f"remote:{other}/main"), f"{other}'s tile does not play audio"
    assert state(alice)["tiles"] == ["local:alice/main", "remote:bob/main"]
    assert caption(alice, "remote:bob/main") == "bob"
    assert caption(bob, "local:bob/main") == "bob (you)"
    assert "bob joined" in state(alice)["log"]
    assert "Already here: alice" in state(bob)["log"]

    shot = tmp_path / "two-tiles.png"
    alice.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # Mute: bob's page shows it, and alice's audio stops reaching him.
    alice.get_by_role("button", name="Mute mic").click()
    wait_for("mic off badge", lambda: "mic off" in caption(bob, "remote:alice/main"))
    assert "alice muted audio" in state(bob)["log"]
    assert alice.get_by_role("button", name="Unmute mic").get_attribute("aria-pressed") == "true"
    time.sleep(0.5)
    before = inbound(bob, "alice/audio")
    time.sleep(1.0)
    after = inbound(bob, "alice/audio")
    assert before and after and after["packetsReceived"] - before["packetsReceived"] <= 2
    alice.get_by_role("button", name="Unmute mic").click()
    wait_for(
        "alice audio again",
        partial(heard, bob, "alice/audio", after["packetsReceived"] + 10),
    )

    # Camera off and on again: bob's tile says so, then alice's video decodes again.
    alice.get_by_role("button", name="Stop camera").click()
    wait_for("camera off badge", lambda: "camera off" in caption(bob, "remote:alice/main"))
    assert "no-video" in (
        bob.locator('#tiles .tile[data-key="remote:alice/main"]').get_attribute("class") or ""
    )
    alice.get_by_role("button", name="Start camera").click()
    wait_for("camera badge gone", lambda: "camera off" not in caption(bob, "remote:alice/main"))
    frames = inbound(bob, "alice/camera")
    assert frames is not None
    wait_for("alice camera again", lambda: decoded(bob, "alice/camera", frames["framesDecoded"] + 10))

    # Screen share (published as "screen" through renegotiate), stopped, and shared again.
    for round_ in (1, 2):
        alice.get_by_role("button", name="Share screen").click()
        wait_for(f"screen {round_} decoded", lambda: decoded(bob, "alice/screen"))
        first = decoded(bob, "alice/screen")
        assert first is not None
        wait_for("screen frames flowing", partial(decoded, bob, "alice/screen", first["framesDecoded"]))
        assert "remote:alice/screen" in state(bob)["tiles"]
        assert caption(bob, "remote:alice/screen") == "alice (screen)"
        if round_ == 1:
            bob.screenshot(path=str(tmp_path / "screen-share.png"))
        alice.get_by_role("button", name="Stop sharing").click()
        wait_for("screen tile gone", lambda: "remote:alice/screen" not in state(bob)["tiles"])
    assert state(bob)["log"].count("alice started sharing the screen") == 2

    # Bob leaves: he gets a clear message, alice sees him go.
    bob.get_by_role("button", name="Leave").click()
    wait_for("bob's page to end", lambda: state(bob)["phase"] == "ended")
    assert state(bob)["closeCode"] == 4000
    assert bob.get_by_role("alert").inner_text() == "You left the room."
    assert bob.locator("#join-panel").is_visible()
    wait_for("bob left on alice's page", lambda: "bob left" in state(alice)["log"])
    wait_for("bob's tile removed", lambda: state(alice)["tiles"] == ["local:alice/main"])

    # He can join again from the same page (the form kept his token).
    bob.get_by_role("button", name="Join").click()
    wait_for("bob back", lambda: state(bob)["phase"] == "joined")
    wait_for("alice decodes bob again", partial(decoded, alice, "bob/camera", 5))
    wait_for("bob decodes alice again", partial(decoded, bob, "alice/camera", 5))
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console


def test_removed_and_dismissed_are_explained(
    server: LiveServer, tenant: Tenant, chromium: BrowserContext, pages: list[Page]
) -> None:
    console: list[str] = []
    app_id = str(tenant.app.sdk_app_id)
    carol = open_page(chromium, pages, server, console)
    join_with_dev_token(carol, app_id, "5678", "carol")
    dave = open_page(chromium, pages, server, console)
    join_with_dev_token(dave, app_id, "5678", "dave")
    wait_for("dave decodes carol", lambda: decoded(dave, "carol/camera"))
    sdk = trtc(server, tenant)

    rm = models.RemoveUserRequest()
    rm.SdkAppId, rm.RoomId, rm.UserIds = tenant.app.sdk_app_id, 5678, ["dave"]
    sdk.RemoveUser(rm)
    wait_for("dave removed", lambda: state(dave)["phase"] == "ended")
    assert state(dave)["closeCode"] == 4001
    assert dave.get_by_role("alert").inner_text().startswith("You were removed from the room")
    wait_for("carol sees dave go", lambda: "dave left (removed)" in state(carol)["log"])

    dismiss = models.DismissRoomRequest()
    dismiss.SdkAppId, dismiss.RoomId = tenant.app.sdk_app_id, 5678
    sdk.DismissRoom(dismiss)
    wait_for("carol dismissed", lambda: state(carol)["phase"] == "ended")
    assert state(carol)["closeCode"] == 4002
    assert carol.get_by_role("alert").inner_text().startswith("The room was dismissed")
    assert carol.locator("#join-panel").is_visible() and not carol.locator("#call-panel").is_visible()


def test_refused_token_is_explained(
    server: LiveServer, tenant: Tenant, chromium: BrowserContext, pages: list[Page]
) -> None:
    console: list[str] = []
    page = open_page(chromium, pages, server, console)
    fill_form(page, str(tenant.app.sdk_app_id), "1234", "mallory")
    page.get_by_role("textbox", name="Token").fill("not-a-valid-token")
    page.get_by_role("button", name="Join").click()
    notice = wait_for("the refusal", lambda: state(page)["notice"])
    assert notice.startswith("The server refused the token"), notice
    assert state(page)["phase"] == "idle"
    assert page.locator("#join-panel").is_visible()
    assert page.get_by_role("alert").is_visible()


def test_ingested_stream_plays_in_the_browser(
    server: LiveServer, tenant: Tenant, chromium: BrowserContext, pages: list[Page], tmp_path: Path
) -> None:
    """A stream ingest user is a publisher like any other: the page decodes its H.264 (forwarded
    as the file has it) and plays its Opus, and sees it leave on StopStreamIngest."""
    console: list[str] = []
    app_id = str(tenant.app.sdk_app_id)
    page = open_page(chromium, pages, server, console)
    join_with_dev_token(page, app_id, "1250", "viewer")
    make_media(tmp_path / "clip.mp4", 3)
    client = trtc(server, tenant)
    with media_server(tmp_path) as base:
        req = models.StartStreamIngestRequest()
        req.SdkAppId = tenant.app.sdk_app_id
        req.RoomId = "1250"
        req.RoomIdType = 1
        req.UserId = "ingest"
        req.UserSig = issue_usersig(tenant.app, "ingest")
        req.StreamUrl = f"{base}/clip.mp4"
        req.RepeatNum = -1
        task_id = client.StartStreamIngest(req).TaskId
        video = wait_for("ingest/camera decoded", partial(decoded, page, "ingest/camera", 30))
        assert video["codec"].lower() == "video/h264" and video["frameWidth"] == 320, video
        audio = wait_for("ingest/audio received", partial(heard, page, "ingest/audio", 50))
        assert audio["codec"].lower() == "audio/opus", audio
        assert caption(page, "remote:ingest/main") == "ingest"
        stop = models.StopStreamIngestRequest()
        stop.SdkAppId = tenant.app.sdk_app_id
        stop.TaskId = task_id
        client.StopStreamIngest(stop)
    wait_for("the ingest tile removed", lambda: state(page)["tiles"] == ["local:viewer/main"])
    assert "ingest left" in state(page)["log"]
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console


def board(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("window.roomcast.board")
    return result


def board_pixel(page: Page, x: float, y: float) -> tuple[int, int, int]:
    r, g, b = page.evaluate(f"window.roomcast.boardPixel({x}, {y})")
    return int(r), int(g), int(b)


def drag(page: Page, points: list[tuple[float, float]]) -> None:
    """Draw with the mouse through page fractions ``points`` on the whiteboard canvas."""
    box = page.locator(".wb-canvas").bounding_box()
    assert box is not None
    at = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for xy in at[1:]:
        page.mouse.move(*xy, steps=4)
    page.mouse.up()


class PythonDrawer:
    """A Python RoomClient on an event loop of its own (the sync Playwright API owns this thread)."""

    def __init__(self, server: LiveServer, t: Tenant, room: str, user: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = RoomClient(
            server.url,
            app_id=str(t.app.sdk_app_id),
            room_id=room,
            user_id=user,
            token=issue_usersig(t.app, user),
        )
        self.run(self.client.connect())
        self.run(self.client.sync_board())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def near(c: tuple[int, int, int], want: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(c, want, strict=True))


def test_whiteboard_between_pages_and_python(
    server: LiveServer, tenant: Tenant, chromium: BrowserContext, pages: list[Page]
) -> None:
    console: list[str] = []
    app_id, room = str(tenant.app.sdk_app_id), "4242"
    alice = open_page(chromium, pages, server, console)
    wait_for("/api/config to say dev mode", lambda: state(alice)["devMode"])
    join_with_dev_token(alice, app_id, room, "alice")
    bob = open_page(chromium, pages, server, console)
    join_with_dev_token(bob, app_id, room, "bob")
    py = PythonDrawer(server, tenant, room, "pybot")
    try:
        # alice draws a red stroke with the mouse: bob's page and the Python client see it.
        alice.locator(".wb-color").fill("#ff0000")
        alice.locator(".wb-width").fill("20")
        box = alice.locator(".wb-canvas").bounding_box()
        assert box is not None
        alice.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.5 * box["height"])
        alice.mouse.down()
        alice.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.5 * box["height"], steps=6)
        # While alice still draws, bob sees the stroke grow (a draft, nothing stored yet).
        wait_for("bob sees alice's draft", lambda: board(bob)["drafts"].get("alice", {}).get("kind") == "pen")
        assert board(bob)["seq"] == 0 and near(board_pixel(bob, 0.2, 0.5), (255, 0, 0))
        alice.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + 0.5 * box["height"], steps=4)
        alice.mouse.up()
        wait_for("bob sees alice's stroke", lambda: [v["kind"] for v in board(bob)["visible"]] == ["pen"])
        assert board(bob)["visible"][0]["user_id"] == "alice" and board(bob)["drafts"] == {}
        assert near(board_pixel(bob, 0.3, 0.5), (255, 0, 0)), board_pixel(bob, 0.3, 0.5)
        py.run(py.client.wait_board(1))
        (stroke,) = py.client.board.visible()
        assert stroke["kind"] == "pen" and stroke["color"] == "#ff0000" and stroke["width"] == 20
        assert abs(stroke["points"][0][0] - 0.1) < 0.02 and abs(stroke["points"][-1][1] - 0.5) < 0.02

        # bob draws a rectangle with the toolbar's rectangle tool.
        bob.get_by_role("button", name="Rectangle").click()
        bob.locator(".wb-color").fill("#00aa00")
        drag(bob, [(0.6, 0.2), (0.9, 0.8)])
        wait_for("alice sees bob's rectangle", lambda: len(board(alice)["visible"]) == 2)

        # The Python client fills an ellipse; both pages draw it where the protocol says.
        py.run(py.client.draw("ellipse", points=[[0.55, 0.3], [0.95, 0.7]], color="#0000ff", fill="#0000ff"))
        for page in (alice, bob):
            wait_for("the ellipse", lambda page=page: near(board_pixel(page, 0.75, 0.5), (0, 0, 255)))
        # Undo is the user's own: alice's undo removes her stroke only.
        alice.get_by_role("button", name="Undo").click()
        wait_for(
            "the stroke undone", lambda: [v["kind"] for v in board(bob)["visible"]] == ["rect", "ellipse"]
        )
        assert near(board_pixel(bob, 0.3, 0.5), (255, 255, 255))

        # A late joiner gets the board as it is.
        carol = open_page(chromium, pages, server, console)
        join_with_dev_token(carol, app_id, room, "carol")
        wait_for("carol's board", lambda: [v["kind"] for v in board(carol)["visible"]] == ["rect", "ellipse"])
        assert near(board_pixel(carol, 0.75, 0.5), (0, 0, 255))

        # A new page, switched to by everyone.
        carol.get_by_role("button", name="Add page").click()
        wait_for("alice on page 2", lambda: board(alice)["current"] == "2" and board(alice)["visible"] == [])
        assert near(board_pixel(alice, 0.75, 0.5), (255, 255, 255))
    finally:
        py.close()
    assert not [c for c in console if c.startswith("pageerror")], console


def test_custom_messages_show_as_subtitles(
    server: LiveServer, tenant: Tenant, chromium: BrowserContext, pages: list[Page]
) -> None:
    """Subtitles (cmd_id 1, type 10000) from robots appear in the page's log when final; other
    custom messages are shown as sent."""


def test_browser_reports_telemetry(
    server: LiveServer, tenant: Tenant, chromium: BrowserContext, pages: list[Page]
) -> None:
    """The page reports what only a browser knows; the statistics APIs then serve it."""
    console: list[str] = []
    app_id = str(tenant.app.sdk_app_id)
    erin = open_page(chromium, pages, server, console)
    join_with_dev_token(erin, app_id, "4321", "erin")

    def subtitle(text: str, end: bool) -> str:
        payload = {
            "text": text,
            "start_time": "00:00:01",
            "end_time": "00:00:02",
            "roundid": "r1",
            "end": end,
        }
        return json.dumps({"type": 10000, "sender": "alice", "receiver": [], "payload": payload})

    async def send() -> None:
        bot = RoomClient(
            server.url, app_id=app_id, room_id="4321", user_id="bot", token=issue_usersig(tenant.app, "bot")
        )
        await bot.connect()
        try:
            await bot.send_custom(1, subtitle("half a sen", False))
            await bot.send_custom(1, subtitle("half a sentence is whole now", True))
            await bot.send_custom(3, "plain text")
        finally:
            await bot.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, send()).result()
    wait_for("the subtitle", lambda: "alice: half a sentence is whole now" in state(erin)["log"])
    wait_for("the plain message", lambda: "bot [3]: plain text" in state(erin)["log"])
    assert not any(line.split(": ", 1)[-1] == "half a sen" for line in state(erin)["log"])
    assert not [c for c in console if c.startswith("pageerror")]
    frank = open_page(chromium, pages, server, console)
    join_with_dev_token(frank, app_id, "4321", "frank")
    wait_for("frank decodes erin", partial(decoded, frank, "erin/camera", 10))
    wait_for("two reports from frank", lambda: state(frank)["telemetrySent"] >= 2, limit=30)
    sdk = trtc(server, tenant)
    now = int(time.time())

    def described() -> dict[str, Any] | None:
        rooms = sdk.call_json(
            "DescribeRoomInfo",
            {"SdkAppId": tenant.app.sdk_app_id, "StartTime": now - 300, "EndTime": now + 60},
        )["Response"]["RoomList"]
        comm = next(r["CommId"] for r in rooms if r["RoomString"] == "4321")
        body = {
            "SdkAppId": tenant.app.sdk_app_id,
            "CommId": comm,
            "StartTime": now - 300,
            "EndTime": int(time.time()),
            "UserIds": ["erin", "frank"],
            "DataType": ["bigvCapFps", "bigvDecFps"],
        }
        got: dict[str, Any] = sdk.call_json("DescribeCallDetailInfo", body)["Response"]
        users = {u["UserId"]: u for u in got["UserList"]}
        kinds = {(d["UserId"], d["PeerId"], d["DataType"]) for d in got["Data"]}
        if users.get("frank", {}).get("SdkVersion") and ("frank", "erin", "bigvDecFps") in kinds:
            return got
        return None

    got = wait_for("the browser's telemetry in the statistics", described, limit=30)
    frank_info = next(u for u in got["UserList"] if u["UserId"] == "frank")
    assert frank_info["SdkVersion"] == "roomcast-web/1" and frank_info["DeviceType"] == "pc"
    rates = next(
        d for d in got["Data"] if (d["UserId"], d["PeerId"], d["DataType"]) == ("frank", "erin", "bigvDecFps")
    )
    assert max(p["Value"] for p in rates["Content"]) > 0
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console
