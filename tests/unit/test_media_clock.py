"""Room clock and track timelines: RTP deltas, wrap, sender-report sync groups."""

from __future__ import annotations

from fractions import Fraction

from roomcast.media.clock import MonotonicTicks, RoomClock, SyncGroup, TrackTimeline, unwrap_rtp
from roomcast.rtc.track import SenderReport

VIDEO = Fraction(1, 90000)
AUDIO = Fraction(1, 48000)


def test_unwrap_rtp_handles_wrap_and_reorder() -> None:
    assert unwrap_rtp(None, 5) == 5
    assert unwrap_rtp((1 << 32) - 10, 20) == (1 << 32) + 20
    assert unwrap_rtp(100, 90) == 90
    # aiortc's mapper turns a small backwards reorder into a jump of 2**32
    assert unwrap_rtp(3000, 2000 + (1 << 32)) == 2000


def test_arrival_plus_rtp_deltas() -> None:
    clock = RoomClock(origin=100.0, wall_origin=1000.0)
    tl = TrackTimeline(clock, VIDEO)
    assert tl.map_raw(0, 1.0, None) == 1.0
    assert abs(tl.map_raw(90000, 2.3, None) - 2.0) < 1e-9  # jitter on arrival is ignored
    # a packet that arrived less delayed than the first moves the anchor earlier (learning)
    assert abs(tl.map_raw(180000, 2.9, None) - 2.9) < 1e-9
    assert clock.wallclock(2.0) == 1002.0


def test_sender_reports_align_a_users_tracks() -> None:
    clock = RoomClock(origin=0.0, wall_origin=0.0)
    group = SyncGroup("u1")
    audio = TrackTimeline(clock, AUDIO, group)
    video = TrackTimeline(clock, VIDEO, group)
    # both captured at sender time 50.0 (rtp 0); audio arrives after 80 ms, video after 30 ms
    sr_a = SenderReport(ntp_time=50.0, pts=0)
    sr_v = SenderReport(ntp_time=50.0, pts=0)
    ta = audio.map_raw(0, 10.08, sr_a)
    tv = video.map_raw(0, 10.03, sr_v)
    assert abs(ta - tv) < 1e-9  # same capture instant -> same room time
    assert abs(audio.map_raw(48000, 11.2, None) - (ta + 1.0)) < 1e-9
    assert abs(video.map_raw(90000, 11.0, None) - (tv + 1.0)) < 1e-9
    audio.close()
    video.close()
    assert group.offset is None  # the publisher left: a rejoin re-anchors


def test_monotonic_ticks() -> None:
    ticks = MonotonicTicks(VIDEO)
    assert ticks(1.0) == 90000
    assert ticks(0.99) == 90001
    assert ticks(2.0) == 180000
    assert ticks.adjusted == 1


def test_sync_group_corrects_a_sender_clock_step() -> None:
    clock = RoomClock(origin=0.0, wall_origin=0.0)
    group = SyncGroup("u1")
    video = TrackTimeline(clock, VIDEO, group)
    sr = SenderReport(ntp_time=100.0, pts=0)
    for i in range(100):  # 15 fps, 50 ms transit
        video.map_raw(i * 6000, i / 15 + 0.05, sr)
    assert group.corrections == 0
    # the sender's clock steps 2 s ahead: its SRs now say every frame was captured 2 s later
    stepped = SenderReport(ntp_time=102.0 + 100 / 15, pts=100 * 6000)
    out = [video.map_raw(i * 6000, i / 15 + 0.05, stepped) for i in range(100, 250)]
    assert group.corrections == 1
    assert abs(out[-1] - (249 / 15 + 0.0)) < 0.06  # back to tracking arrival
