"""One room clock per recording, and the mapping of every track's RTP time onto it.

Room time is seconds since the recording began, measured with ``time.monotonic()``.  A track's
packets carry ``pts`` in the RTP clock (90 kHz video, 48 kHz Opus) starting near 0; a
:class:`TrackTimeline` turns them into room seconds:

* **Before a sender report** (RTCP SR) is known: the arrival time of the track's first packet
  plus RTP deltas.  During the first seconds the anchor follows the smallest observed
  ``arrival - rtp`` (the least-delayed packet), so one late first packet does not shift the track.
* **With sender reports**: the tracks of one publisher share the sender's NTP clock.  A
  :class:`SyncGroup` per user fixes one offset between that clock and room time (from the
  first packet mapped through an SR) and every track of the user maps through it, so the user's
  audio and video stay aligned however differently the jitter buffers delay them.
* The 32-bit RTP wrap (and a backwards reorder that looks like one) is unwrapped.

Monotonic output is enforced by the writers' callers (:class:`MonotonicTicks`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

from roomcast.rtc.track import MediaPacket, SenderReport

__all__ = ["MonotonicTicks", "RoomClock", "SyncGroup", "TrackTimeline", "unwrap_rtp"]

RTP_MODULO = 1 << 32
ANCHOR_LEARNING_SECONDS = 3.0  # how long the arrival anchor may still move earlier
MAX_SR_AGE = 30.0  # seconds of media after which an SR is considered stale (drift)


class RoomClock:
    """The recording's clock: ``now()`` seconds since its origin (monotonic)."""

    def __init__(self, origin: float | None = None, wall_origin: float | None = None) -> None:
        self.origin = time.monotonic() if origin is None else origin
        self.wall_origin = (
            time.time() - (time.monotonic() - self.origin) if wall_origin is None else wall_origin
        )

    def now(self) -> float:
        return time.monotonic() - self.origin

    def at(self, monotonic: float) -> float:
        """Room time of a ``time.monotonic()`` instant."""
        return monotonic - self.origin

    def wallclock(self, room_time: float) -> float:
        """``time.time()`` value of a room time."""
        return self.wall_origin + room_time


def unwrap_rtp(previous: int | None, value: int) -> int:
    """Return ``value`` moved by multiples of 2**32 to be within 2**31 of ``previous``."""
    if previous is None:
        return value
    delta = (value - previous + (1 << 31)) % RTP_MODULO - (1 << 31)
    return previous + delta


DRIFT_WINDOW = 5.0  # s of room time over which the smallest transit delay is taken
# Tracks of one sender differ by a few tens of ms in jitter-buffer delay, so only a clear
# departure from "mapped a little before arrival" counts as drift.
DRIFT_LOW = -0.12  # s: media mapped this much after it arrived -> the offset is too large
DRIFT_HIGH = 0.5  # s: media arriving this much later than mapped (at best) -> offset too small


class SyncGroup:
    """The tracks of one publisher: shares the offset between the sender's clock and room time.

    The offset is fixed by the first SR-mapped packet.  After that the group watches the smallest
    ``arrival - mapped`` delay of its packets over :data:`DRIFT_WINDOW` seconds; when the sender's
    clock has drifted or stepped so far that media would map after its own arrival (or far
    before it), the offset is corrected in one step.  Audio and video move together, so the
    user's lip sync is kept; audio absorbs the step on its sample grid.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.offset: float | None = None  # room_time = sender_ntp + offset
        self.members = 0
        self.corrections = 0
        self._window_start: float | None = None
        self._window_min = 0.0

    def observe(self, arrival: float, mapped: float) -> None:
        """Feed one packet's room arrival time and its mapped room time."""
        if self.offset is None:
            return
        delay = arrival - mapped
        if self._window_start is None:
            self._window_start, self._window_min = arrival, delay
            return
        self._window_min = min(self._window_min, delay)
        if arrival - self._window_start < DRIFT_WINDOW:
            return
        least = self._window_min
        if least < DRIFT_LOW or least > DRIFT_HIGH:
            self.offset += least
            self.corrections += 1
        self._window_start = None  # the next packet starts a new window

    def join(self) -> None:
        self.members += 1

    def leave(self) -> None:
        self.members = max(0, self.members - 1)
        if self.members == 0:
            # the publisher is gone: a new connection may have another clock or delay
            self.offset = None


@dataclass(slots=True)
class _Anchor:
    rtp: int
    room: float


class TrackTimeline:
    """Maps one track subscription's pts onto the room clock (seconds)."""

    def __init__(self, clock: RoomClock, time_base: Fraction, group: SyncGroup | None = None) -> None:
        self.clock = clock
        self.rate = 1 / float(time_base)
        self.group = group
        self._last_rtp: int | None = None
        self._anchor: _Anchor | None = None
        self._first_arrival: float | None = None
        self._report: SenderReport | None = None
        self.using_sender_reports = False
        if group is not None:
            group.join()

    def close(self) -> None:
        if self.group is not None:
            self.group.leave()
            self.group = None

    def map(self, pkt: MediaPacket) -> float:
        rtp = unwrap_rtp(self._last_rtp, pkt.pts)
        self._last_rtp = rtp
        arrival = self.clock.at(pkt.arrival)
        return self.map_raw(rtp, arrival, pkt.sender_report)

    def map_raw(self, rtp: int, arrival: float, report: SenderReport | None) -> float:
        """Map an already unwrapped RTP time observed at room time ``arrival``."""
        if self._first_arrival is None:
            self._first_arrival = arrival
        arrival_based = self._arrival_map(rtp, arrival)
        if report is not None and self.group is not None:
            self._report = report
        if self._report is not None and self.group is not None:
            ntp = self._report.ntp_time + (rtp - self._report.pts) / self.rate
            if self.group.offset is None:
                # the first SR-mapped packet of the publisher fixes the sender->room offset,
                # chosen so that this track does not jump
                self.group.offset = arrival_based - ntp
            self.using_sender_reports = True
            mapped = ntp + self.group.offset
            self.group.observe(arrival, mapped)
            return mapped
        return arrival_based

    def _arrival_map(self, rtp: int, arrival: float) -> float:
        anchor = self._anchor
        if anchor is None:
            self._anchor = anchor = _Anchor(rtp, arrival)
        predicted = anchor.room + (rtp - anchor.rtp) / self.rate
        learning = self._first_arrival is not None and arrival - self._first_arrival < ANCHOR_LEARNING_SECONDS
        if learning and arrival < predicted - 0.002:
            # this packet was less delayed than the anchor: move the anchor earlier
            self._anchor = anchor = _Anchor(rtp, arrival)
            predicted = arrival
        return predicted


class MonotonicTicks:
    """Rounds room seconds to integer ticks of a time base, strictly increasing."""

    def __init__(self, time_base: Fraction, min_step: int = 1) -> None:
        self.rate = 1 / float(time_base)
        self.last: int | None = None
        self.min_step = min_step
        self.adjusted = 0

    def __call__(self, seconds: float) -> int:
        ticks = round(seconds * self.rate)
        if self.last is not None and ticks < self.last + self.min_step:
            ticks = self.last + self.min_step
            self.adjusted += 1
        self.last = ticks
        return ticks
