"""Relay jobs: a room's mix, or one user's stream, pushed live to RTMP destinations.

* **Mix** (:class:`RelayJob` with ``RelaySource.MIX``): the mixer of mixed recordings
  (:class:`~roomcast.media.mixed.MixedRecorder`) encodes the canvas (libx264) and the audio mix
  (AAC) and writes into an :class:`~roomcast.media.rtmp.RtmpFanout` instead of files.  Layout,
  user lists and the URL list change live: the encoder and the connections go on, so viewers
  see no new stream and no timestamp jump.
* **Single stream** (``RelaySource.SINGLE``): the user's H.264 packets are copied as they come
  from the SFU (no decoding); their Opus audio is decoded and encoded to AAC on the same
  timeline.  A keyframe wanted by a destination is asked of the publisher (PLI).

SEI (volume layout, pass-through) is added to the video by a :class:`~roomcast.media.sei.SeiScheduler`.
The job ends by itself (``idle``) once no admitted user has published in its rooms for
``spec.max_idle_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from roomcast.domain.recording import OutputFormat
from roomcast.domain.relay import RelaySource, RelaySpec
from roomcast.log import event
from roomcast.media.clock import RoomClock, SyncGroup, TrackTimeline
from roomcast.media.codecs import AudioEncoder, OpusDecoder, VideoTranscoder
from roomcast.media.compositor import SourceKey
from roomcast.media.feedback import FeedbackPublisher, TokenFor
from roomcast.media.images import ImageFetcher
from roomcast.media.mixed import MixedRecorder, PacketWriter, TrackSource, resolve_layout, settings_from_spec
from roomcast.media.outputs import AudioParams, EncodedPacket, VideoParams
from roomcast.media.rtmp import RtmpFanout, StateListener
from roomcast.media.sei import SeiScheduler
from roomcast.rtc.track import TrackInfo, TrackKind

log = logging.getLogger("roomcast.relay")

__all__ = ["RelayEnded", "RelayJob"]

HOLD_S = 0.3
"""Single stream: packets wait this long so audio and video leave in time order."""
SYNC_INTERVAL_S = 0.5


@dataclass(frozen=True, slots=True)
class RelayEnded:
    reason: str  # stopped | idle | error
    error: str | None = None


def _volume(level: float) -> int:
    """An RMS level (0..1) as the SEI's 0-100 volume (-60 dBFS .. 0 dBFS)."""
    if level <= 1e-6:
        return 0
    return max(0, min(100, round((20 * math.log10(level) + 60) / 60 * 100)))


class RelayJob:
    """One relay task's media: ``await start()``, ``update(spec)``, ``await stop()``."""

    def __init__(
        self,
        task_id: str,
        app_key: str,
        room_id: str,
        spec: RelaySpec,
        source: TrackSource,
        *,
        images: ImageFetcher | None = None,
        on_push_state: StateListener | None = None,
        url_check: Callable[[str], str | None] | None = None,
        base_url: str | None = None,
        token_for: TokenFor | None = None,
        is_robot: Callable[[str], bool] | None = None,
    ) -> None:
        self.task_id = task_id
        self._url_check = url_check
        self._base_url = base_url
        self._token_for = token_for
        self._is_robot = is_robot or (lambda user_id: False)
        self.feedback: dict[str, FeedbackPublisher] = {}
        self.app_key = app_key
        self.room_id = room_id
        self.spec = spec
        self.source = source
        self._images = images
        self._on_push_state = on_push_state
        self.fanout: RtmpFanout | None = None
        self._recorder: MixedRecorder | None = None
        self._single: _SingleStream | None = None
        self._ended: asyncio.Future[RelayEnded] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._video_params: VideoParams | None = None
        self._audio_params: AudioParams | None = None
        self._stop_task: asyncio.Task[RelayEnded] | None = None
        self._stopping = False
        self.started_at = time.monotonic()
        self.last_present = self.started_at

    # -- what the job pushes ----------------------------------------------------------------
    def _sei(self) -> SeiScheduler:
        sched = SeiScheduler()
        sei = self.spec.sei
        if sei.layout is not None:
            lay = sei.layout
            sched.add(
                lay.payload_type,
                lambda: json.dumps(self.layout_sei(lay.app_data), separators=(",", ":")).encode(),
                interval_ms=lay.interval_ms,
                follow_idr=lay.follow_idr,
            )
        if sei.pass_through is not None:
            pt = sei.pass_through
            sched.add(
                pt.payload_type,
                lambda: pt.payload.encode(),
                interval_ms=pt.interval_ms,
                follow_idr=pt.follow_idr,
                uuid=bytes.fromhex(pt.uuid) if pt.uuid else None,
            )
        return sched

    def layout_sei(self, app_data: str) -> dict[str, Any]:
        """The volume-layout document: the canvas and each mixed user's region and volume."""
        v = self.spec.mix.video
        regions: list[dict[str, Any]] = []
        rec = self._recorder
        if rec is not None:
            mixing = set(rec.mixer.sources)
            for pane in rec.layout.panes:
                key = SourceKey.of(pane)
                if key is None or not pane.has_video:
                    continue
                audio_key: Any = key.user_id if key.room_id is None else (key.room_id, key.user_id)
                level = 0.0
                if audio_key in mixing:
                    with contextlib.suppress(KeyError):
                        level = rec.mixer.stats(audio_key)["level"]
                r = pane.rect
                regions.append(
                    {
                        "uid": key.user_id,
                        "zorder": pane.z,
                        "volume": _volume(level),
                        "x": r.x,
                        "y": r.y,
                        "w": r.width,
                        "h": r.height,
                    }
                )
        return {
            "app_data": app_data,
            "canvas": {"w": v.width, "h": v.height},
            "regions": regions,
            "ver": "1.0",
            "ts": int(time.time()),
        }

    def _open_fanout(self, video: VideoParams | None, audio: AudioParams | None) -> RtmpFanout:
        fanout = RtmpFanout(
            self.spec.outputs,
            video,
            audio,
            on_state=self._on_push_state,
            url_check=self._url_check,
            transform=self._sei() if self.spec.sei.enabled and video is not None else None,
        )
        self._video_params, self._audio_params = video, audio
        self.fanout = fanout
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._sync_feedback)
        return fanout

    def _sync_feedback(self) -> None:
        """Start and stop feedback publishers to match the spec (on the loop)."""
        if self.fanout is None or self._stopping:
            return
        wanted = {f"{f.room_id}\x1f{f.user_id}": f for f in self.spec.feedback}
        for key in [k for k in self.feedback if k not in wanted]:
            pub = self.feedback.pop(key)
            self.fanout.extra.pop(key, None)
            self._closing.add(asyncio.get_running_loop().create_task(pub.close()))
        for key, room in wanted.items():
            if key in self.feedback:
                continue
            if self._base_url is None or self._token_for is None:
                log.warning("relay %s: feedback needs the node's URL and tokens", self.task_id)
                return
            pub = FeedbackPublisher(
                self._base_url,
                self.app_key,
                room.room_id,
                room.user_id,
                self._token_for,
                asyncio.get_running_loop(),
                video=self._video_params is not None,
                audio=self._audio_params,
            )
            self.feedback[key] = pub
            self.fanout.extra[key] = pub

    def robots(self) -> set[str]:
        """The user ids this relay publishes as into rooms."""
        return {f.user_id for f in self.spec.feedback}

    def _admit(
        self, base: Callable[[str], bool], allow: frozenset[str] | None, *, audio: bool = False
    ) -> Callable[[str], bool]:
        """Precaution 8: a relay that publishes into rooms does not mix its own robots, nor
        other relays' robots unless its audio allowlist names them.  With
        ``audio_in_layout_only``, audio is mixed only for users the layout places (or who can
        still take a free slot)."""

        def admits(user_id: str) -> bool:
            if not base(user_id):
                return False
            if audio and self.spec.audio_in_layout_only and self._recorder is not None:
                panes = self._recorder.layout.panes
                if not any(p.user_id in (user_id, None) for p in panes):
                    return False
            if not self.spec.feedback:
                return True
            if user_id in self.robots():
                return False
            return not self._is_robot(user_id) or (allow is not None and user_id in allow)

        return admits

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ended = self._loop.create_future()
        spec = self.spec
        if spec.source is RelaySource.MIX:

            def opener(
                _fmt: OutputFormat, video: VideoParams | None, audio: AudioParams | None
            ) -> PacketWriter:
                return self._open_fanout(video, audio)

            settings = replace(
                settings_from_spec(replace(spec.mix, outputs=(OutputFormat.MP4,))),
                latency=0.3,
                audio_users=self._admit(spec.mix.users.audio.admits, spec.mix.users.audio.allow, audio=True),
                video_users=self._admit(spec.mix.users.video.admits, spec.mix.users.audio.allow),
            )
            self._recorder = MixedRecorder(
                self.source,
                self.app_key,
                self.room_id,
                resolve_layout(spec.mix.layout),
                settings,
                opener,
                images=self._images,
            )
            await self._recorder.start()
        else:
            self._single = _SingleStream(self)
            await self._single.start()
        self._watch = asyncio.create_task(self._watchdog(), name=f"relay-watch {self.task_id[:12]}")
        event(log, "relay.started", task_id=self.task_id, source=spec.source.value, outputs=len(spec.outputs))

    def _present(self) -> bool:
        """Whether an admitted user publishes in one of the job's rooms."""
        spec = self.spec
        if spec.source is RelaySource.SINGLE:
            assert spec.single is not None
            room = spec.single.room_id or self.room_id
            return any(t.user_id == spec.single.user_id for t in self.source.list_tracks(self.app_key, room))
        users = spec.mix.users
        rooms = [self.room_id, *spec.mix.extra_rooms]
        for room in rooms:
            for t in self.source.list_tracks(self.app_key, room):
                rule = users.audio if t.media == "audio" else users.video
                if rule.admits(t.user_id):
                    return True
        return False

    async def _watchdog(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if self._present():
                self.last_present = now
            reason: str | None = None
            error: str | None = None
            if self._recorder is not None and self._recorder.error is not None:
                reason, error = "error", repr(self._recorder.error)
            elif now - self.last_present >= self.spec.max_idle_s:
                reason = "idle"
            if reason is not None:
                self._stop_task = asyncio.create_task(
                    self.stop(reason, error), name=f"relay-stop {self.task_id[:12]}"
                )
                return

    async def stop(self, reason: str = "stopped", error: str | None = None) -> RelayEnded:
        assert self._ended is not None, "not started"
        if self._stopping:
            return await asyncio.shield(self._ended)
        self._stopping = True
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        try:
            if self._recorder is not None:
                await self._recorder.stop(drain=False)
            if self._single is not None:
                await self._single.stop()
            if self.fanout is not None:
                await asyncio.to_thread(self.fanout.close)
            for pub in list(self.feedback.values()):
                await pub.close()
            for task in list(self._closing):
                await task
        except Exception as exc:
            log.exception("relay %s failed while stopping", self.task_id)
            reason, error = "error", error or repr(exc)
        ended = RelayEnded(reason, error)
        event(log, "relay.ended", task_id=self.task_id, reason=reason, error=error)
        if not self._ended.done():
            self._ended.set_result(ended)
        return ended

    async def wait(self) -> RelayEnded:
        assert self._ended is not None, "not started"
        return await asyncio.shield(self._ended)

    @property
    def running(self) -> bool:
        return self._ended is not None and not self._ended.done()

    def update(self, spec: RelaySpec) -> None:
        """Apply a changed spec live (users, layout, URLs, SEI payloads, idle time); the
        encodings and the source kind stay as started."""
        old, self.spec = self.spec, spec
        if self._recorder is not None:
            rec = self._recorder
            if spec.mix.users != old.mix.users:
                users = spec.mix.users
                rec.settings = replace(
                    rec.settings,
                    audio_users=self._admit(users.audio.admits, users.audio.allow, audio=True),
                    video_users=self._admit(users.video.admits, users.audio.allow),
                )
                rec.users_changed()
            if spec.mix.layout != old.mix.layout:
                rec.update_layout(resolve_layout(spec.mix.layout))
                rec.users_changed()
        if self._single is not None and spec.single != old.single:
            self._single.retarget()
        if self.fanout is not None:
            if spec.sei != old.sei and self.fanout.video is not None:
                self.fanout.transform = self._sei() if spec.sei.enabled else None
            if spec.outputs != old.outputs:
                self.fanout.set_urls(spec.outputs)
            if spec.feedback != old.feedback:
                self._sync_feedback()
                if self._recorder is not None:
                    self._recorder.users_changed()

    def push_states(self) -> dict[str, str]:
        out = self.fanout.states() if self.fanout is not None else {}
        out.update({f"room:{p.room_id}/{p.user_id}": p.state for p in self.feedback.values()})
        return out


class _SingleStream:
    """Copies one user's H.264 and encodes their Opus to AAC, interleaved by time."""

    def __init__(self, job: RelayJob) -> None:
        self.job = job
        self.clock = RoomClock()
        self.group = SyncGroup("single")
        spec = job.spec
        a = spec.mix.audio
        self.want_video = spec.media.video
        self.want_audio = spec.media.audio
        self.audio_params = AudioParams("aac", a.sample_rate, a.channels, a.bitrate_kbps * 1000)
        self.encoder = (
            AudioEncoder("aac", a.sample_rate, a.channels, a.bitrate_kbps * 1000) if self.want_audio else None
        )
        self.decoder = OpusDecoder()
        self._readers: dict[TrackKind, tuple[TrackInfo, asyncio.Task[None], Any]] = {}
        self._heap: list[tuple[float, int, EncodedPacket]] = []
        self._seq = itertools.count()
        self._last_pts: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        v = spec.mix.video
        self.fanout = job._open_fanout(
            VideoParams("h264", v.width, v.height, v.fps) if self.want_video else None,
            self.audio_params if self.want_audio else None,
        )

    def _target(self) -> tuple[str, str, TrackKind]:
        single = self.job.spec.single
        assert single is not None
        kind = TrackKind.SCREEN if single.stream == "screen" else TrackKind.CAMERA
        return single.room_id or self.job.room_id, single.user_id, kind

    async def start(self) -> None:
        self._sync()
        self._task = asyncio.create_task(self._pump(), name=f"relay-single {self.job.task_id[:12]}")

    def retarget(self) -> None:
        for kind in list(self._readers):
            self._close(kind)
        self._sync()

    def _sync(self) -> None:
        room, user, video_kind = self._target()
        tracks = {t.kind: t for t in self.job.source.list_tracks(self.job.app_key, room) if t.user_id == user}
        wanted: dict[TrackKind, TrackInfo] = {}
        if self.want_video and video_kind in tracks:
            wanted[video_kind] = tracks[video_kind]
        if self.want_audio and TrackKind.AUDIO in tracks:
            wanted[TrackKind.AUDIO] = tracks[TrackKind.AUDIO]
        for kind, (info, task, _sub) in list(self._readers.items()):
            if wanted.get(kind) != info or task.done():
                self._close(kind)
        for kind, info in wanted.items():
            if kind in self._readers:
                continue
            try:
                sub = self.job.source.subscribe_track(
                    self.job.app_key, room, user, kind, name=f"relay<-{info.track_id}"
                )
            except Exception as exc:
                log.debug("relay %s: cannot subscribe %s: %s", self.job.task_id, info.track_id, exc)
                continue
            task = asyncio.create_task(self._read(info, sub), name=f"relay-read {info.track_id}")
            self._readers[kind] = (info, task, sub)

    def _close(self, kind: TrackKind) -> None:
        _info, task, sub = self._readers.pop(kind)
        with contextlib.suppress(Exception):
            sub.close()
        task.cancel()

    async def _read(self, info: TrackInfo, sub: Any) -> None:
        timeline: TrackTimeline | None = None
        is_audio = info.kind is TrackKind.AUDIO
        h264 = info.codec.lower() == "video/h264"
        transcoder: VideoTranscoder | None = None
        if not is_audio and not h264:
            # Not H.264 (VP8): the only case where a single-stream relay encodes video.
            v = self.job.spec.mix.video
            transcoder = VideoTranscoder(
                info.codec.split("/")[-1].lower(),
                fps=v.fps,
                bitrate=v.bitrate_kbps * 1000,
                gop=v.gop,
                preset=v.preset,
            )
            event(log, "relay.transcoding", task_id=self.job.task_id, codec=info.codec)
        try:
            while not self._stopping:
                pkt = await sub.recv()
                if timeline is None:
                    timeline = TrackTimeline(self.clock, pkt.time_base, self.group)
                t = timeline.map(pkt)
                if is_audio:
                    assert self.encoder is not None
                    frames = await asyncio.to_thread(self.decoder.decode, pkt.data)
                    for i, frame in enumerate(frames):
                        for out in self.encoder.feed(frame, t if i == 0 else t + i * frame.samples / 48_000):
                            self._push(out.pts / self.audio_params.sample_rate, out)
                elif h264:
                    self._push(t, EncodedPacket("video", pkt.data, round(t * 90_000), pkt.keyframe))
                    if self.fanout.wants_keyframe:
                        sub.request_keyframe()
                elif transcoder is not None:
                    if self.fanout.wants_keyframe:
                        transcoder.force_keyframe = True
                    for out in await asyncio.to_thread(transcoder.feed, pkt.data, round(t * 90_000)):
                        self._push(out.pts / 90_000, out)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            if type(exc).__name__ != "TrackEnded":
                log.warning("relay %s: reader %s failed: %s", self.job.task_id, info.track_id, exc)
        finally:
            if timeline is not None:
                timeline.close()

    def _push(self, t: float, pkt: EncodedPacket) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), pkt))

    def _release(self, until: float) -> None:
        while self._heap and self._heap[0][0] <= until:
            _, _, pkt = heapq.heappop(self._heap)
            last = self._last_pts.get(pkt.kind)
            if last is not None and pkt.pts <= last:
                continue  # late or repeated: FLV timestamps must increase per stream
            self._last_pts[pkt.kind] = pkt.pts
            self.fanout.write(pkt)

    async def _pump(self) -> None:
        next_sync = time.monotonic()
        while not self._stopping:
            await asyncio.sleep(0.05)
            self._release(self.clock.now() - HOLD_S)
            if time.monotonic() >= next_sync:
                next_sync = time.monotonic() + SYNC_INTERVAL_S
                try:
                    self._sync()
                except Exception:
                    log.exception("relay %s: track sync failed", self.job.task_id)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for kind in list(self._readers):
            self._close(kind)
        if self.encoder is not None:
            for out in self.encoder.flush():
                self._push(out.pts / self.audio_params.sample_rate, out)
        self._release(float("inf"))


def relay_cost(spec: RelaySpec) -> float:
    """CPU cores of a relay (measured by bench/relay.py): a transcoded mix costs what a mixed
    recording does; a copied stream only its audio transcode."""
    if spec.source is RelaySource.SINGLE:
        return 0.03
    v = spec.mix.video
    return max(0.05, 0.4 * v.width * v.height * v.fps / (1280 * 720 * 30))
