"""Room event bus benchmark: the cost of publishing one event, by number of rooms.

Run: ``.venv/bin/python bench/eventbus.py`` (about a minute; ``--help`` for the knobs).

The bus is set up the way a running server uses it, for ``rooms x users``:

* one signalling subscription per user: that user's room, every event type but per-track stats
  (what ``rtc/signalling.py`` subscribes to);
* one recording subscription per room, for its room (what a recording in ``media/engine.py``
  follows);
* the activity recorder's subscription to everything, and the server's handler (room dismissed).

It then publishes a realistic mix: per-track quality samples (``TrackStats``, in and out, what
dominates at ``stats_interval_s`` = 5) and, one in ten, a track or participant event, in random
rooms. Queues are drained between rounds (not timed). It prints the CPU time per event in
microseconds (process time, so a busy shared box does not inflate it) and the events per second
one core sustains for the bus alone.

On a bus without room/type indexes (``subscribe`` without ``room=``/``types=``) the same set-up
falls back to filters, so the script measures the old bus too: run it with ``PYTHONPATH`` set to
an older checkout for the "before" figure.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import random
import statistics
import time

from roomcast.rtc import events as ev
from roomcast.rtc.track import TrackKind

USERS = 6
HIDDEN = (ev.TrackStats,)


def _subscribe_room(bus: ev.EventBus, app: str, room: str, *, hide_stats: bool) -> ev.EventSubscription:
    indexed = "room" in inspect.signature(bus.subscribe).parameters
    if indexed:
        types = [t for t in ev.EVENT_TYPES if not (hide_stats and issubclass(t, HIDDEN))]
        return bus.subscribe(room=(app, room), types=types)  # type: ignore[call-arg, unused-ignore]

    def wanted(e: ev.RoomEvent) -> bool:
        return e.app_key == app and e.room_id == room and not (hide_stats and isinstance(e, HIDDEN))

    return bus.subscribe(filter=wanted)


def build(rooms: int) -> tuple[ev.EventBus, list[ev.EventSubscription]]:
    bus = ev.EventBus()
    subs = []
    for r in range(rooms):
        for _ in range(USERS):
            subs.append(_subscribe_room(bus, "app", f"room{r}", hide_stats=True))
        subs.append(_subscribe_room(bus, "app", f"room{r}", hide_stats=False))
    subs.append(bus.subscribe(maxsize=1_000_000))

    def on_room_event(e: ev.RoomEvent) -> None:
        if isinstance(e, ev.RoomDismissed):
            raise AssertionError("not published here")

    bus.add_handler(on_room_event)
    return bus, subs


def events(rooms: int, n: int, seed: int = 1) -> list[ev.RoomEvent]:
    rnd = random.Random(seed)
    out: list[ev.RoomEvent] = []
    for i in range(n):
        room = f"room{rnd.randrange(rooms)}"
        user = f"u{rnd.randrange(USERS)}"
        if i % 10:
            out.append(
                ev.TrackStats(
                    app_key="app",
                    room_id=room,
                    user_id=user,
                    kind=TrackKind.CAMERA,
                    track_id=f"{user}/camera",
                    direction="out" if i % 3 else "in",
                    subscriber_id=f"u{rnd.randrange(USERS)}",
                    bitrate_bps=500_000.0,
                )
            )
        elif i % 20:
            out.append(
                ev.TrackMuted(app_key="app", room_id=room, user_id=user, kind=TrackKind.AUDIO, track_id="a")
            )
        else:
            out.append(ev.ParticipantJoined(app_key="app", room_id=room, user_id=user, session_id=str(i)))
    return out


def drain(subs: list[ev.EventSubscription]) -> int:
    n = 0
    for sub in subs:
        q = sub._queue
        while not q.empty():
            q.get_nowait()
            n += 1
    return n


async def measure(rooms: int, per_round: int, rounds: int) -> tuple[float, int]:
    bus, subs = build(rooms)
    batch = events(rooms, per_round)
    costs = []
    delivered = 0
    for _ in range(rounds):
        t0 = time.process_time()
        for e in batch:
            bus.publish(e)
        costs.append((time.process_time() - t0) / len(batch))
        delivered += drain(subs)
    for sub in subs:
        sub.close()
    return statistics.median(costs), delivered // rounds


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, nargs="*", default=[50, 200, 1000])
    parser.add_argument("--events", type=int, default=20_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    indexed = "room" in inspect.signature(ev.EventBus.subscribe).parameters
    print(f"event bus ({'indexed by room and type' if indexed else 'filters only'}), {USERS} users per room")
    print(f"{'rooms':>6} {'subscriptions':>14} {'us/event':>10} {'events/s':>12} {'deliveries/event':>17}")
    for rooms in args.rooms:
        cost, delivered = await measure(rooms, args.events, args.rounds)
        subs = rooms * (USERS + 1) + 1
        print(
            f"{rooms:>6} {subs:>14} {cost * 1e6:>10.2f} {1 / cost:>12,.0f} {delivered / args.events:>17.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
