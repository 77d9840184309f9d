"""Per-user recordings: one set of files per user and stream (camera + microphone, screen).

Data path for one user/stream (:class:`UserStreamRecorder`)::

    PacketSubscription --(reader task: TrackTimeline.map -> room seconds)--> reorder buffer
        --(pump task: release in time order)--> worker thread: _Lanes.process
            H.264: copied as is           -> MP4 / HLS
            VP8:   copied as is           -> WebM;  VP8 -> libx264 -> MP4 / HLS
            Opus:  copied (WebM) | decoded -> AAC (MP4, HLS, M4A) / MP3
        --> OutputSet per format --> events --> the recording's sink task

Everything that decodes, encodes or touches files runs in the engine's thread pool, serially
per user/stream, so many recordings never stall the event loop (PyAV releases the GIL).

Gaps (mute, leave and rejoin): audio is filled with silence on a continuous sample grid.
Copied video cannot gain frames without encoding, so the last picture is held: the next frame
simply carries its true timestamp, and players show the previous frame for the gap (correct
timing, A/V in sync).  Transcoded video (VP8 -> H.264) honours the fill policy (black, image or
last frame) by encoding one filler frame at the start of the gap.  A video codec change after a
rejoin starts a new file.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import io
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from fractions import Fraction

import av

from roomcast.domain.recording import MediaSelection, OutputFormat, RecordingSpec
from roomcast.rtc.forwarder import PacketSubscription
from roomcast.rtc.track import TrackKind

from .clock import MonotonicTicks, RoomClock, SyncGroup, TrackTimeline
from .codecs import AudioEncoder, OpusCopier, OpusDecoder, VideoTranscoder
from .outputs import (
    VIDEO_TIME_BASE,
    AudioParams,
    EncodedPacket,
    FileInfo,
    OutputContext,
    OutputEvent,
    OutputSet,
    VideoParams,
    open_output,
)

log = logging.getLogger(__name__)

__all__ = ["UnitKey", "UserStreamRecorder"]

MAX_HOLD = 0.6  # s: the reorder buffer waits at most this long for a slower track
AUDIO_ONLY_AFTER = 3.0  # s of audio without any video keyframe -> an audio-only file
KEYFRAME_REQUEST_INTERVAL = 1.0
MAX_CONSECUTIVE_ERRORS = 200  # packets in a row that fail to process before the unit gives up
PUMP_INTERVAL = 0.05  # s between hand-offs to the worker thread
MAX_PENDING = 3000  # packets waiting for the worker (about 20 s of 720p30 + audio) before shedding

UnitKey = tuple[str, str]  # (user_id, stream name: "camera" | "screen" | "audio")


@dataclass(order=True, slots=True)
class _Item:
    t: float
    seq: int
    kind: str = field(compare=False)  # "audio" | "video"
    data: bytes = field(compare=False)
    codec: str = field(compare=False)  # "h264" | "vp8" | "opus"
    keyframe: bool = field(compare=False)
    pts90: int = field(compare=False, default=0)


class _Lanes:
    """The synchronous half of one user/stream: codecs and output sets (worker thread only)."""

    def __init__(
        self, spec: RecordingSpec, make_ctx: Callable[[], OutputContext], want_audio: bool, want_video: bool
    ):
        self.spec = spec
        self.make_ctx = make_ctx
        self.want_audio = want_audio
        self.want_video = want_video
        self.formats = tuple(spec.outputs)
        needs_pcm = want_audio and any(f is not OutputFormat.WEBM for f in self.formats)
        a = spec.audio
        self.opus_decoder = OpusDecoder() if needs_pcm else None
        self.aac = (
            AudioEncoder("aac", a.sample_rate, a.channels, a.bitrate_kbps * 1000)
            if want_audio
            and any(f in (OutputFormat.MP4, OutputFormat.HLS, OutputFormat.M4A) for f in self.formats)
            else None
        )
        self.mp3 = (
            AudioEncoder("mp3", a.sample_rate, a.channels, a.bitrate_kbps * 1000)
            if want_audio and OutputFormat.MP3 in self.formats
            else None
        )
        self.opus = OpusCopier(2) if want_audio and OutputFormat.WEBM in self.formats else None
        self.sets: dict[tuple[OutputFormat, str], OutputSet] = {}
        self.next_index: dict[OutputFormat, int] = {}
        self.video_codec: str | None = None
        self.video_size: tuple[int, int] = (0, 0)
        self.transcoder: VideoTranscoder | None = None
        self.scale_h264: bool | None = None  # H.264 above video.max_height (None: no keyframe yet)
        self.first_audio_t: float | None = None
        self.seen_video = False
        self.audio_only_fallback = False
        self.held_audio: dict[str, list[EncodedPacket]] = {}
        self.errors = 0
        self.consecutive_errors = 0
        self.completed: list[FileInfo] = []
        self.notes: list[str] = []
        self.last_t = 0.0

    # -- layout of the files

    def _video_out_codec(self, fmt: OutputFormat) -> str | None:
        if not self.want_video or fmt in (OutputFormat.M4A, OutputFormat.MP3):
            return None
        if fmt is OutputFormat.WEBM:
            return "vp8" if self.video_codec == "vp8" else None
        return "h264"

    def _audio_params(self, fmt: OutputFormat) -> AudioParams | None:
        if not self.want_audio:
            return None
        a = self.spec.audio
        if fmt is OutputFormat.WEBM:
            return AudioParams("opus", 48000, 2, 64000)
        if fmt is OutputFormat.MP3:
            return AudioParams("mp3", a.sample_rate, a.channels, a.bitrate_kbps * 1000)
        return AudioParams("aac", a.sample_rate, a.channels, a.bitrate_kbps * 1000)

    def _open(
        self, fmt: OutputFormat, media: str, video: VideoParams | None, audio: AudioParams | None
    ) -> OutputSet:
        key = (fmt, media)
        s = self.sets.get(key)
        if s is None:
            ctx = self.make_ctx()
            s = open_output(fmt, ctx, video=video, audio=audio, first_index=self.next_index.get(fmt, 0))
            self.sets[key] = s
        return s

    def _close_set(self, key: tuple[OutputFormat, str], end: float) -> list[OutputEvent]:
        s = self.sets.pop(key, None)
        if s is None:
            return []
        events = s.close(end)
        self.next_index[key[0]] = max(self.next_index.get(key[0], 0), s.next_index)
        self.completed.extend(e for e in events if isinstance(e, FileInfo))
        return events

    def _targets(self, kind: str) -> list[OutputSet]:
        """Output sets that take ``kind`` right now (opening them when needed)."""
        out: list[OutputSet] = []
        separate = self.spec.separate_files
        for fmt in self.formats:
            vcodec = self._video_out_codec(fmt)
            aparams = self._audio_params(fmt)
            if (
                fmt is OutputFormat.WEBM
                and self.want_video
                and vcodec is None
                and self.video_codec is not None
            ):
                if "webm" not in self.notes:
                    self.notes.append("webm")
                    log.warning(
                        "WebM keeps VP8 as received; this publisher sends %s, skipped", self.video_codec
                    )
                continue
            vparams = (
                VideoParams(vcodec, self.video_size[0], self.video_size[1], self.spec.video.fps)
                if vcodec is not None and self.video_codec is not None
                else None
            )
            together = (
                not separate and vcodec is not None and aparams is not None and not self.audio_only_fallback
            )
            if kind == "video" and vparams is not None:
                if together:
                    out.append(self._open(fmt, "av", vparams, aparams))
                else:
                    out.append(self._open(fmt, "video", vparams, None))
            elif kind == "audio" and aparams is not None:
                if together:
                    s = self.sets.get((fmt, "av"))
                    if s is not None:
                        out.append(s)
                elif vcodec is None or separate or self.audio_only_fallback:
                    out.append(self._open(fmt, "audio", None, aparams))
        return out

    # -- processing

    def process(self, items: list[_Item]) -> tuple[list[OutputEvent], bool]:
        events: list[OutputEvent] = []
        for item in items:
            self.last_t = max(self.last_t, item.t)
            try:
                if item.kind == "video":
                    events += self._video(item)
                else:
                    events += self._audio(item)
                self.consecutive_errors = 0
            except (av.FFmpegError, ValueError, OSError) as exc:
                # one bad packet must not end the recording; a stream that keeps failing does
                self.errors += 1
                self.consecutive_errors += 1
                log.warning("recording: %s packet at %.3f s failed: %s", item.kind, item.t, exc)
                if self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                    raise
        return events, self.wants_keyframe

    @property
    def wants_keyframe(self) -> bool:
        return any(s.wants_keyframe for s in self.sets.values())

    def _video(self, item: _Item) -> list[OutputEvent]:
        events: list[OutputEvent] = []
        if not self.want_video:
            return events
        if item.codec != self.video_codec:
            if self.video_codec is not None:
                # a rejoin with another codec: the files with video end here
                for key in [k for k, s in self.sets.items() if s.video is not None]:
                    events += self._close_set(key, item.t)
                self.transcoder = None
            self.video_codec = item.codec
            self.scale_h264 = None
        if not self.seen_video:
            self.seen_video = True
            if self.audio_only_fallback:
                for key in [k for k in self.sets if k[1] == "audio"]:
                    events += self._close_set(key, item.t)
                self.audio_only_fallback = False
        if item.keyframe and item.codec == "vp8":
            self.video_size = _vp8_size(item.data) or self.video_size
        cap = self.spec.video.max_height
        if item.codec == "h264" and self.scale_h264 is None and (item.keyframe or not cap):
            # Decided once per codec: a picture taller than the cap is re-encoded, else copied.
            size = _h264_size(item.data) if cap else None
            self.scale_h264 = size is not None and size[1] > cap
        copy = EncodedPacket("video", item.data, item.pts90, item.keyframe)
        h264: list[EncodedPacket] = []
        if item.codec == "h264" and self.scale_h264 is None:
            return events  # no keyframe yet to size the picture: nothing can be written
        if item.codec == "h264" and not self.scale_h264:
            h264 = [copy]
        elif any(self._video_out_codec(f) == "h264" for f in self.formats):
            if self.transcoder is None:
                v = self.spec.video
                size = (v.width, v.height) if v.width and v.height else None
                self.transcoder = VideoTranscoder(
                    item.codec,
                    max_height=v.max_height,
                    fps=v.fps,
                    bitrate=v.bitrate_kbps * 1000,
                    gop=v.gop,
                    preset=v.preset,
                    fill=self.spec.fill.video,
                    fill_image=self.spec.fill.image,
                    size=size,
                )
            if any(s.wants_keyframe for k, s in self.sets.items() if k[0] is not OutputFormat.WEBM):
                self.transcoder.force_keyframe = True
            h264 = self.transcoder.feed(item.data, item.pts90)
            if self.transcoder.encoder is not None:
                self.video_size = (self.transcoder.width, self.transcoder.height)
        for s in self._targets("video"):
            pkts = [copy] if s.video is not None and s.video.codec == "vp8" else h264
            for p in pkts:
                events += s.write(p)
        if self.held_audio:
            events += self._write_audio({})  # audio from before the keyframe is dropped by the writer
        return events

    def _audio(self, item: _Item) -> list[OutputEvent]:
        events: list[OutputEvent] = []
        if not self.want_audio:
            return events
        if self.first_audio_t is None:
            self.first_audio_t = item.t
        if (
            self.want_video
            and not self.seen_video
            and not self.audio_only_fallback
            and not self.spec.separate_files
            and item.t - self.first_audio_t >= AUDIO_ONLY_AFTER
        ):
            self.audio_only_fallback = True
        encoded: dict[str, list[EncodedPacket]] = {"aac": [], "mp3": [], "opus": []}
        if self.opus_decoder is not None:
            for frame in self.opus_decoder.decode(item.data):
                if self.aac is not None:
                    encoded["aac"] += self.aac.feed(frame, item.t)
                if self.mp3 is not None:
                    encoded["mp3"] += self.mp3.feed(frame, item.t)
        if self.opus is not None:
            encoded["opus"] = self.opus.feed(item.data, item.t)
        waiting_for_video = (
            self.want_video
            and not self.seen_video
            and not self.audio_only_fallback
            and not self.spec.separate_files
        )
        if waiting_for_video:
            # hold the audio until the first video keyframe opens the A/V files (or the
            # audio-only fallback starts), so no audio is lost at the start
            for codec, pkts in encoded.items():
                self.held_audio.setdefault(codec, []).extend(pkts)
            return events
        return events + self._write_audio(encoded)

    def _write_audio(self, encoded: dict[str, list[EncodedPacket]]) -> list[OutputEvent]:
        events: list[OutputEvent] = []
        if self.held_audio:
            held, self.held_audio = self.held_audio, {}
            encoded = {c: held.get(c, []) + encoded.get(c, []) for c in set(held) | set(encoded)}
        for s in self._targets("audio"):
            codec = s.audio.codec if s.audio is not None else ""
            for p in encoded.get(codec, []):
                events += s.write(p)
        return events

    def close(self, end: float) -> list[OutputEvent]:
        events: list[OutputEvent] = []
        if self.held_audio and self.want_audio:
            self.audio_only_fallback = not self.seen_video  # a user who never sent video
            events += self._write_audio({})
        tail_aac = self.aac.flush() if self.aac is not None else []
        tail_mp3 = self.mp3.flush() if self.mp3 is not None else []
        tail_video = self.transcoder.flush() if self.transcoder is not None else []
        for s in list(self.sets.values()):
            if s.audio is not None:
                for p in tail_mp3 if s.audio.codec == "mp3" else tail_aac if s.audio.codec == "aac" else []:
                    events += s.write(p)
            if s.video is not None and s.video.codec == "h264":
                for p in tail_video:
                    events += s.write(p)
        for key in list(self.sets):
            events += self._close_set(key, max(end, self.last_t))
        return events

    def abort(self) -> None:
        for s in self.sets.values():
            s.abort()
        self.sets.clear()


def _h264_size(keyframe: bytes) -> tuple[int, int] | None:
    """The picture size an H.264 keyframe (Annex-B, with SPS) declares."""
    try:
        with av.open(io.BytesIO(keyframe), format="h264") as probe:
            cc = probe.streams.video[0].codec_context
            return (cc.width, cc.height) if cc.width and cc.height else None
    except (av.FFmpegError, IndexError, OSError):
        return None


def _vp8_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF


@dataclass
class _Input:
    kind: TrackKind
    sub: PacketSubscription
    timeline: TrackTimeline
    codec: str
    task: asyncio.Task[None] | None = None
    latest: float = -1e9
    active: bool = True
    packets: int = 0
    need_keyframe: bool = False


EventDispatch = Callable[[list[OutputEvent]], None]


class UserStreamRecorder:
    """The files of one user and one stream; inputs come and go as the user (re)publishes."""

    def __init__(
        self,
        key: UnitKey,
        spec: RecordingSpec,
        clock: RoomClock,
        executor: Executor,
        make_ctx: Callable[[], OutputContext],
        dispatch: EventDispatch,
        *,
        want_audio: bool,
        want_video: bool,
    ) -> None:
        self.key = key
        self.spec = spec
        self.clock = clock
        self.executor = executor
        self.dispatch = dispatch
        self.lanes = _Lanes(spec, make_ctx, want_audio, want_video)
        self.inputs: dict[TrackKind, _Input] = {}
        self._heap: list[_Item] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._closing = False
        self._pump_task: asyncio.Task[None] | None = None
        self._ticks = MonotonicTicks(VIDEO_TIME_BASE)
        self._last_kf_request = -1e9
        self.failed: BaseException | None = None
        self.overflow_drops = 0
        self.last_activity = time.monotonic()

    @property
    def user_id(self) -> str:
        return self.key[0]

    @property
    def active(self) -> bool:
        return any(i.active for i in self.inputs.values())

    def start(self) -> None:
        if self._pump_task is None:
            self._pump_task = asyncio.create_task(self._pump(), name=f"record {self.key}")

    def attach(self, kind: TrackKind, sub: PacketSubscription, codec: str, group: SyncGroup) -> None:
        old = self.inputs.get(kind)
        if old is not None and old.active:
            old.sub.close()
        timeline = TrackTimeline(self.clock, _time_base(kind), group)
        inp = _Input(kind, sub, timeline, codec.split("/")[-1].lower())
        self.inputs[kind] = inp
        inp.task = asyncio.create_task(self._read(inp), name=f"record-read {self.key} {kind}")
        self.last_activity = time.monotonic()
        self.start()

    async def _read(self, inp: _Input) -> None:
        media = "video" if inp.kind.media == "video" else "audio"
        try:
            async for pkt in inp.sub:
                if len(self._heap) >= MAX_PENDING:
                    # the worker is not keeping up: shed load instead of growing without bound;
                    # video resumes at the next keyframe
                    self.overflow_drops += 1
                    if media == "video":
                        inp.need_keyframe = True
                        inp.sub.request_keyframe()
                    continue
                if inp.need_keyframe:
                    if not pkt.keyframe:
                        continue
                    inp.need_keyframe = False
                t = inp.timeline.map(pkt)
                inp.latest = t
                inp.packets += 1
                heapq.heappush(
                    self._heap, _Item(t, next(self._seq), media, pkt.data, inp.codec, pkt.keyframe)
                )
                self._wake.set()
        finally:
            inp.active = False
            inp.timeline.close()
            self.last_activity = time.monotonic()
            self._wake.set()

    def _release(self, final: bool) -> list[_Item]:
        out: list[_Item] = []
        now = self.clock.now()
        active = [i for i in self.inputs.values() if i.active]
        while self._heap:
            head = self._heap[0]
            ready = final or head.t <= now - MAX_HOLD or all(i.latest >= head.t for i in active)
            if not ready:
                break
            item = heapq.heappop(self._heap)
            if item.kind == "video":
                item.pts90 = self._ticks(item.t)
            out.append(item)
        return out

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                # one worker hand-off per PUMP_INTERVAL at most: batching keeps the event loop's
                # share small (a thread round trip per packet costs more than muxing it)
                await asyncio.sleep(PUMP_INTERVAL)
                if not self._closing and not self._heap:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), 0.5)
                self._wake.clear()
                final = self._closing
                items = self._release(final)
                if items:
                    events, wants_kf = await loop.run_in_executor(self.executor, self.lanes.process, items)
                    if events:
                        self.dispatch(events)
                    if wants_kf:
                        self._request_keyframe()
                if final and not self._heap:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("recorder %s failed", self.key)
            self.failed = exc

    def _request_keyframe(self) -> None:
        now = time.monotonic()
        if now - self._last_kf_request < KEYFRAME_REQUEST_INTERVAL:
            return
        self._last_kf_request = now
        for inp in self.inputs.values():
            if inp.active and inp.kind.media == "video":
                inp.sub.request_keyframe()

    async def close(self, end: float) -> None:
        """Stop reading, write what is buffered, finalize the files."""
        for inp in self.inputs.values():
            inp.sub.close()
        tasks = [i.task for i in self.inputs.values() if i.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._closing = True
        self._wake.set()
        if self._pump_task is not None:
            await self._pump_task
        loop = asyncio.get_running_loop()
        events = await loop.run_in_executor(self.executor, self.lanes.close, end)
        if events:
            self.dispatch(events)

    def abort(self) -> None:
        for inp in self.inputs.values():
            inp.sub.close()
            if inp.task is not None:
                inp.task.cancel()
        if self._pump_task is not None:
            self._pump_task.cancel()
        self.lanes.abort()


def _time_base(kind: TrackKind) -> Fraction:
    return Fraction(1, 48000) if kind is TrackKind.AUDIO else VIDEO_TIME_BASE


def unit_plan(spec: RecordingSpec, user_id: str) -> list[tuple[str, TrackKind | None, bool]]:
    """The user/stream units of a user: (stream name, video track kind or None, with audio)."""
    audio_ok = spec.records_audio and spec.users.audio.admits(user_id)
    video_ok = spec.media.video and spec.users.video.admits(user_id)
    plan: list[tuple[str, TrackKind | None, bool]] = []
    if video_ok and spec.streams.camera:
        plan.append(("camera", TrackKind.CAMERA, audio_ok))
    elif audio_ok:
        plan.append(("audio", None, True))
    if video_ok and spec.streams.screen:
        plan.append(("screen", TrackKind.SCREEN, False))
    if spec.media is MediaSelection.AUDIO_ONLY:
        plan = [p for p in plan if p[1] is None]
    return plan
