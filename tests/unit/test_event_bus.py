"""The room event bus indexes subscriptions and handlers by room and event type: an event only
reaches (and only runs the filters of) the subscriptions that can want it."""

from __future__ import annotations

import asyncio

import pytest

from roomcast.rtc.events import (
    EVENT_TYPES,
    EventBus,
    ParticipantJoined,
    RoomClosed,
    RoomEvent,
    RoomOpened,
    TrackStats,
)
from roomcast.rtc.track import TrackKind


def stats(room: str) -> TrackStats:
    return TrackStats(
        app_key="a", room_id=room, user_id="u", kind=TrackKind.CAMERA, track_id="t", direction="in"
    )


def joined(room: str, app: str = "a") -> ParticipantJoined:
    return ParticipantJoined(app_key=app, room_id=room, user_id="u", session_id="s")


def drain(sub: object) -> list[RoomEvent]:
    q = sub._queue  # type: ignore[attr-defined]
    out = []
    while not q.empty():
        item = q.get_nowait()
        if item is not None:
            out.append(item)
    return out


def test_room_and_type_index() -> None:
    bus = EventBus()
    calls: list[str] = []

    def counting(e: RoomEvent) -> bool:
        calls.append(e.room_id)
        return True

    r1 = bus.subscribe(room=("a", "r1"), filter=counting)
    r1_joins = bus.subscribe(room=("a", "r1"), types=(ParticipantJoined, RoomClosed))
    all_stats = bus.subscribe(types=[TrackStats])
    everything = bus.subscribe()
    legacy = bus.subscribe(filter=lambda e: e.room_id == "r2")

    events = [
        joined("r1"),
        stats("r1"),
        joined("r2"),
        stats("r2"),
        joined("r1", app="b"),
        RoomOpened(app_key="a", room_id="r1"),
    ]
    for e in events:
        bus.publish(e)

    assert calls == ["r1", "r1", "r1"]  # the filter of r1 never saw other rooms' events
    assert drain(r1) == [events[0], events[1], events[5]]
    assert drain(r1_joins) == [events[0]]  # same room id in another app is another room
    assert drain(all_stats) == [events[1], events[3]]
    assert drain(everything) == events
    assert drain(legacy) == [events[2], events[3]]


def test_closing_unindexes() -> None:
    bus = EventBus()
    subs = [bus.subscribe(room=("a", f"r{i}"), types=EVENT_TYPES) for i in range(50)]
    other = bus.subscribe()
    assert bus.subscriptions == 51
    for s in subs:
        s.close()
    assert bus.subscriptions == 1 and len(bus._index) == 1
    e = joined("r1")
    bus.publish(e)
    assert drain(subs[1]) == [] and drain(other) == [e]
    other.close()
    assert bus.subscriptions == 0 and bus._index == {}


def test_every_subscription_gets_an_event_once() -> None:
    bus = EventBus()
    sub = bus.subscribe(room=("a", "r"), types=(ParticipantJoined, ParticipantJoined, TrackStats))
    bus.publish(joined("r"))
    assert len(drain(sub)) == 1
    with pytest.raises(ValueError):
        bus.subscribe(types=(int,))  # type: ignore[arg-type]
    assert len(drain(bus.subscribe(types=(RoomEvent,)))) == 0  # the base type means every type


async def test_handlers_by_room_and_type() -> None:
    bus = EventBus()
    seen: list[str] = []
    done = asyncio.Event()

    async def on_close(e: RoomEvent) -> None:
        seen.append(f"async {e.type}")
        done.set()

    def everything(e: RoomEvent) -> None:
        seen.append(e.type)

    bus.add_handler(everything)
    bus.add_handler(on_close, room=("a", "r1"), types=(RoomClosed,))
    bus.publish(RoomClosed(app_key="a", room_id="r2", reason="empty"))
    bus.publish(stats("r1"))
    bus.publish(RoomClosed(app_key="a", room_id="r1", reason="empty"))
    await asyncio.wait_for(done.wait(), 1)
    assert seen == ["room_closed", "track_stats", "room_closed", "async room_closed"]
    bus.remove_handler(on_close)
    bus.remove_handler(everything)
    bus.publish(RoomClosed(app_key="a", room_id="r1", reason="empty"))
    assert len(seen) == 4 and bus._handler_index == {}
