"""WHIP and WHEP through the whole server, with join tokens (UserSig) instead of test tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roomcast.media.testpattern import SyntheticParticipant
from roomcast.rtc.client import WhepViewer, WhipPublisher
from roomcast.rtc.track import TrackKind
from roomcast.services.join_tokens import issue_jwt, issue_usersig
from tests.api.conftest import make_tenant
from tests.support.live import LiveServer, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("whip")) / "var", ice_host_addresses=["127.0.0.1"]) as srv:
        yield srv


async def test_whip_publish_watched_over_whep(server: LiveServer) -> None:
    t = await asyncio.to_thread(make_tenant, server)
    app = str(t.app.sdk_app_id)
    person = SyntheticParticipant("cam1", width=320, height=180, fps=15)
    pub = await WhipPublisher.start(
        f"{server.url}/rtc/whip/{app}/stage/cam1",
        issue_usersig(t.app, "cam1"),
        {TrackKind.CAMERA: person.video, TrackKind.AUDIO: person.audio},  # type: ignore[dict-item]
    )
    try:
        for _ in range(100):  # WHEP sees the tracks published when it starts
            if len(server.app.state.sfu.list_tracks(app, "stage")) >= 2:
                break
            await asyncio.sleep(0.05)
        viewer = await WhepViewer.start(
            f"{server.url}/rtc/whep/{t.app.app_id}/stage/viewer1?publisher=cam1", issue_jwt(t.app, "viewer1")
        )
        try:
            await viewer.received.wait_frames("video0", 10)
            await viewer.received.wait_frames("audio0", 10)
        finally:
            await viewer.stop()
    finally:
        await pub.stop()
        person.stop()


async def test_whip_refuses_bad_tokens(server: LiveServer) -> None:
    t = await asyncio.to_thread(make_tenant, server, "x")
    async with httpx.AsyncClient() as http:
        for token in ("-", "garbage", issue_usersig(t.app, "someone-else")):
            r = await http.post(
                f"{server.url}/rtc/whip/{t.app.sdk_app_id}/stage/cam1",
                content=b"v=0\r\n",
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 401, (token, r.status_code)
