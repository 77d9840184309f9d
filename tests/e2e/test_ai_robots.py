"""A transcription robot on a bare SFU: it follows a user who stops publishing and publishes again
(new track, round ids numbered on), and leaves when told."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from roomcast.ai.robots import TranscriptionRobot
from roomcast.domain import ai
from roomcast.net.urls import UrlPolicy
from roomcast.rtc.auth import StaticTokenAuthenticator
from roomcast.rtc.client import RoomClient
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.testing import serve_sfu
from roomcast.rtc.track import TrackKind
from tests.support.speech import SpeechTrack, overlap, silence, speech

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

FIRST = "we are going to the new york stock exchange"
SECOND = "the stock market is going up"


async def until(check: Any, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.1)


async def test_robot_follows_a_republished_track() -> None:
    manager = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0.5))
    finals: list[tuple[str, str]] = []
    ended: list[str] = []

    async def on_final(user: str, text: str, start_ms: float, end_ms: float) -> None:
        finals.append((user, text))

    async def on_end(reason: str) -> None:
        ended.append(reason)

    async def on_error(message: str) -> None:
        raise AssertionError(message)

    async with serve_sfu(manager, StaticTokenAuthenticator("t")) as url:
        alice = RoomClient(url, app_id="a", room_id="r", user_id="alice", token="t")
        bob = RoomClient(url, app_id="a", room_id="r", user_id="bob", token="t")
        robot = TranscriptionRobot(
            manager,
            "a",
            "r",
            ai.TranscriptionSpec(robot_user_id="scribe", max_idle_s=60),
            task_id="t1",
            t0=time.time(),
            policy=UrlPolicy(allow_private=True),
            on_final=on_final,
            on_end=on_end,
            on_error=on_error,
        )
        first, second = SpeechTrack(), SpeechTrack()
        try:
            await bob.connect()
            await alice.connect()
            await robot.start()
            assert "scribe" not in [p["user_id"] for p in bob.room["participants"]]  # hidden
            await alice.publish({TrackKind.AUDIO: first})
            first.play(silence(0.3))
            first.play(speech(FIRST))
            first.play(silence(1.2))
            await until(lambda: len(finals) >= 1, 45)
            await alice.unpublish(TrackKind.AUDIO)
            await alice.publish({TrackKind.AUDIO: second})
            second.play(silence(0.3))
            second.play(speech(SECOND))
            second.play(silence(1.2))
            await until(lambda: len(finals) >= 2, 45)
            assert overlap(FIRST, finals[0][1]) >= 0.6 and overlap(SECOND, finals[1][1]) >= 0.6
            rounds = [
                json.loads(m["data"])["payload"]["roundid"]
                for m in bob.custom_messages(1)
                if json.loads(m["data"])["payload"]["end"]
            ]
            assert rounds == ["alice-1", "alice-2"]
            # Its user id taken by someone else: the robot's task ends ("the previous task will be
            # interrupted").
            thief = RoomClient(url, app_id="a", room_id="r", user_id="scribe", token="t")
            await thief.connect()
            await until(lambda: ended == ["replaced"], 10)
            await thief.close()
        finally:
            await robot.stop()
            await alice.close()
            await bob.close()
            first.stop()
            second.stop()
