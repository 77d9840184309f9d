"""Periodic per-track statistics, published as :class:`TrackStats` events.

Bitrate, fps and resolution come from the forwarder's own counters (exact,
cheap); loss and jitter from aiortc's ``getStats()`` on the receiving side,
and RTT/loss towards each subscriber from the sender's remote-inbound stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .events import TrackStats

if TYPE_CHECKING:
    from .room import RoomManager

log = logging.getLogger(__name__)


@dataclass
class _Prev:
    at: float
    packets: int
    bytes: int
    lost: int | None = None
    received: int | None = None


class StatsSampler:
    def __init__(self, manager: RoomManager, interval: float) -> None:
        self.manager = manager
        self.interval = interval
        self._prev: dict[int, _Prev] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rtc stats")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sample()
            except Exception:
                log.exception("stats sampling failed")

    async def sample(self) -> list[TrackStats]:
        out: list[TrackStats] = []
        seen: set[int] = set()
        now = time.monotonic()
        for room in self.manager.rooms():
            for pt in room.published_tracks():
                fwd = pt.forwarder
                key = id(fwd)
                seen.add(key)
                prev = self._prev.get(key)
                inbound = _first(await _safe_stats(pt.receiver), "inbound-rtp")
                lost, received = _int(inbound, "packetsLost"), _int(inbound, "packetsReceived")
                self._prev[key] = _Prev(now, fwd.packets, fwd.bytes, lost, received)
                interval = now - prev.at if prev else 0.0
                bitrate = fps = fraction = None
                if prev and interval > 0:
                    bitrate = (fwd.bytes - prev.bytes) * 8 / interval
                    fps = (fwd.packets - prev.packets) / interval if pt.info.media == "video" else None
                if prev and None not in (lost, received, prev.lost, prev.received):
                    # the share of the packets expected since the last sample that never came
                    d_lost = max(0, (lost or 0) - (prev.lost or 0))
                    d_recv = max(0, (received or 0) - (prev.received or 0))
                    fraction = d_lost / (d_lost + d_recv) if d_lost + d_recv else 0.0
                clock = 90000 if pt.info.media == "video" else 48000
                event = TrackStats(
                    app_key=room.app_key,
                    room_id=room.room_id,
                    user_id=pt.info.user_id,
                    kind=pt.info.kind,
                    track_id=pt.info.track_id,
                    direction="in",
                    interval=interval,
                    bitrate_bps=bitrate,
                    packets_received=received,
                    packets_lost=lost,
                    fraction_lost=fraction,
                    jitter_ms=_jitter_ms(inbound, clock),
                    fps=fps,
                    width=fwd.width,
                    height=fwd.height,
                    frames_dropped=sum(s.dropped for s in fwd.subscriptions),
                    keyframe_requests=fwd.keyframe_requests_sent,
                )
                out.append(event)
            for p in list(room.participants.values()):
                peers: list[Any] = [p.subscriber] if p.subscriber else []
                peers += [r.peer for r in p.resources.values() if hasattr(r.peer, "slots")]
                for peer in peers:
                    for slot in getattr(peer, "slots", []):
                        if slot.forwarder is None:
                            continue
                        remote = _first(await _safe_stats(slot.transceiver.sender), "remote-inbound-rtp")
                        info = slot.forwarder.info
                        clock = 90000 if info.media == "video" else 48000
                        rtt = remote.get("roundTripTime") if remote else None
                        frac = remote.get("fractionLost") if remote else None
                        sub = slot.track.subscription
                        bitrate = fps = None
                        if sub is not None:
                            skey = id(sub)
                            seen.add(skey)
                            sprev = self._prev.get(skey)
                            self._prev[skey] = _Prev(now, sub.delivered, sub.delivered_bytes)
                            if sprev is not None and now > sprev.at:
                                span = now - sprev.at
                                bitrate = (sub.delivered_bytes - sprev.bytes) * 8 / span
                                if info.media == "video":
                                    fps = (sub.delivered - sprev.packets) / span
                        video = info.media == "video"
                        out.append(
                            TrackStats(
                                app_key=room.app_key,
                                room_id=room.room_id,
                                user_id=info.user_id,
                                kind=info.kind,
                                track_id=info.track_id,
                                direction="out",
                                subscriber_id=p.user_id,
                                interval=self.interval,
                                packets_lost=_int(remote, "packetsLost"),
                                fraction_lost=frac / 256.0 if isinstance(frac, (int, float)) else None,
                                jitter_ms=_jitter_ms(remote, clock),
                                rtt_ms=rtt * 1000.0 if isinstance(rtt, float) else None,
                                bitrate_bps=bitrate,
                                fps=fps,
                                width=slot.forwarder.width if video else None,
                                height=slot.forwarder.height if video else None,
                                frames_dropped=sub.dropped if sub else None,
                            )
                        )
        for key in list(self._prev):
            if key not in seen:
                del self._prev[key]
        for event in out:
            self.manager.events.publish(event)
        return out


async def _safe_stats(obj: Any) -> dict[str, Any]:
    try:
        report = await obj.getStats()
    except Exception:
        return {}
    return {k: v for k, v in report.items()}


def _first(report: dict[str, Any], type_: str) -> dict[str, Any]:
    for value in report.values():
        if getattr(value, "type", None) == type_:
            return dict(vars(value))
    return {}


def _int(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    return int(v) if isinstance(v, (int, float)) else None


def _jitter_ms(d: dict[str, Any], clock: int) -> float | None:
    v = d.get("jitter")
    return float(v) * 1000.0 / clock if isinstance(v, (int, float)) else None
