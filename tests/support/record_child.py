"""A recorder in its own process, for the crash test: ``python -m tests.support.record_child OUT``.

Starts a loopback SFU, one synthetic H.264 publisher and a per-user MP4 recording into OUT,
prints ``STARTED <path>`` when the file is open, then records until it is killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from roomcast.domain.recording import OutputFormat, RecordingSpec, StreamSelection
from roomcast.media.engine import RecordingEngine
from roomcast.media.sink import FileOpened, RecordingEvent
from roomcast.media.testpattern import SyntheticParticipant
from roomcast.rtc.auth import StaticTokenAuthenticator
from roomcast.rtc.client import RoomClient
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.testing import serve_sfu
from roomcast.rtc.track import TrackKind


async def main(out: Path) -> None:
    manager = RoomManager(SfuConfig(stats_interval=0, min_keyframe_interval=0.2))
    async with serve_sfu(manager, StaticTokenAuthenticator("t")) as url:
        p = SyntheticParticipant("u1")
        c = RoomClient(url, app_id="a", room_id="r", user_id="u1", token="t")
        await c.connect()
        await c.publish({TrackKind.AUDIO: p.audio, TrackKind.CAMERA: p.video}, video_codecs=("video/H264",))
        engine = RecordingEngine(manager, out)

        def on_event(ev: RecordingEvent) -> None:
            if isinstance(ev, FileOpened):
                print("STARTED", ev.info.path, flush=True)

        spec = RecordingSpec(outputs=(OutputFormat.MP4,), streams=StreamSelection(screen=False))
        await engine.start("crash", "a", "r", spec, listener=on_event)
        await asyncio.sleep(120)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
