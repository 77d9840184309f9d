"""Publishing a kind again after unpublishing it, on the same publishing connection.

Browsers stop a screen share and start another one later: the second share comes either on the
m-line the first one used (the browser client re-uses its transceiver) or on a new m-line (the
Python client adds a transceiver). Both must publish ``<user>/screen`` again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from roomcast.rtc.auth import StaticTokenAuthenticator
from roomcast.rtc.client import RoomClient
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.testing import ColorVideoTrack, ToneAudioTrack, serve_sfu
from roomcast.rtc.track import TrackKind

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

TOKEN = "test-token"


@pytest.fixture
async def sfu_url() -> AsyncIterator[str]:
    manager = RoomManager(SfuConfig(empty_room_grace=0.3, min_keyframe_interval=0.2))
    async with serve_sfu(manager, StaticTokenAuthenticator(TOKEN)) as url:
        yield url


def client(url: str, user: str) -> RoomClient:
    return RoomClient(url, app_id="app1", room_id="r1", user_id=user, token=TOKEN)


async def test_screen_published_again_on_a_new_m_line(sfu_url: str) -> None:
    alice, bob = client(sfu_url, "alice"), client(sfu_url, "bob")
    try:
        await alice.connect()
        await bob.connect(auto_subscribe=True)
        await alice.publish({TrackKind.AUDIO: ToneAudioTrack(), TrackKind.CAMERA: ColorVideoTrack()})
        tracks = await alice.publish({TrackKind.SCREEN: ColorVideoTrack(color=(200, 90))})
        assert "alice/screen" in tracks
        await bob.wait_frames("alice/screen", 5)

        await alice.unpublish(TrackKind.SCREEN)
        await bob.wait_event("track_unpublished", lambda m: m["track_id"] == "alice/screen")

        tracks = await alice.publish({TrackKind.SCREEN: ColorVideoTrack(color=(60, 60))})
        assert sorted(tracks) == ["alice/audio", "alice/camera", "alice/screen"]
        # Frames under the same track id again (none came while it was unpublished).
        await bob.wait_frames("alice/screen", 5)
        await bob.wait_frames("alice/camera", 5)
    finally:
        await alice.close()
        await bob.close()


async def test_unannounced_old_m_line_is_not_taken_back(sfu_url: str) -> None:
    """A re-offer that does not name the released m-line leaves it unpublished."""
    alice = client(sfu_url, "alice")
    try:
        await alice.connect()
        await alice.publish({TrackKind.AUDIO: ToneAudioTrack(), TrackKind.CAMERA: ColorVideoTrack()})
        await alice.unpublish(TrackKind.CAMERA)
        # A re-offer whose track map names only the audio m-line.
        pc = alice.pub_pc
        assert pc is not None
        await pc.setLocalDescription(await pc.createOffer())
        audio_mid = next(t.mid for t in pc.getTransceivers() if t.kind == "audio")
        reply = await alice.request(
            {"type": "renegotiate", "sdp": pc.localDescription.sdp, "tracks": {audio_mid: "audio"}}
        )
        assert reply["tracks"] == ["alice/audio"]
    finally:
        await alice.close()
