"""The mixed recorder: one composited picture and one audio mix of a room.

Data flow (one :class:`MixedRecorder` per recording)::

    source (RoomManager.subscribe_track)           asyncio: one reader task per track
      -> decode H.264 / VP8 / Opus                 decoder thread pool (PyAV releases the GIL)
      -> room clock (clock.TrackTimeline)          a user's audio and video share a SyncGroup
      -> per-pane frame queue / AudioMixer
      -> CFR ticker: Compositor.compose            the mixing thread, one per recording
      -> libx264 (no B-frames, IDR every gop)      the mixing thread
      -> AAC                                       the mixing thread
      -> interleave by time -> PacketWriter(s)     the mixing thread (writers do file I/O)

**Timing.**  Output time 0 is the start of the recording on the room clock.  Output frame ``k``
shows, for every pane, the newest decoded frame whose room time is at or before ``k / fps``; it
is produced at room time ``k / fps + latency``, so every source has ``latency`` (default 0.4 s)
to arrive and be decoded.  A source frame is shown as long as it is the newest one
(duplicated at low source rates, skipped at high ones): the output is constant frame rate
whatever the sources do.  A source that sends nothing for ``stale_after`` seconds (muted,
blocked, frozen) counts as having no picture, so its pane shows its placeholder.  Audio is
mixed on the same timeline (:class:`~roomcast.media.audiomix.AudioMixer`), block by block, up
to the time of the frame just produced.  If the mixing thread falls behind (CPU starved), it
keeps the frame count right by encoding the previous canvas again instead of composing a new
one (counted in ``stats.late_frames``).

**Rooms.**  The mix follows its own room plus ``settings.extra_rooms`` (same app): every
room's track list is read on each sync.  A publisher is known by ``(room, user)``: the room is
None for the recording's own room and the room id otherwise, as in
:class:`~roomcast.domain.layout.Participant` and :class:`~roomcast.media.compositor.SourceKey`,
so the same user id in two rooms is two sources.

**What is decoded.**  Video is subscribed to (and decoded) only for the panes of the current
layout that show a live stream; audio of every admitted user is decoded and mixed (or only the
N loudest, ``max_audio_sources``).  The layout function is evaluated again whenever the
participant set or their published streams change, and when :meth:`MixedRecorder.update_layout`
asks for another function; the new layout is used from the next frame on.  Images the layout
names (watermarks, backgrounds, placeholders) are fetched on the event loop by the node's
:class:`~roomcast.media.images.ImageFetcher` when the layout is applied, never in the mixing
thread; until they arrive (or if they cannot be fetched) they are simply absent.

**Output.**  Encoded packets follow the output-writer contract of
``docs/recording-interfaces.md`` (video pts in 1/90000, audio pts in 1/sample_rate, Annex-B
H.264 without B-frames and with SPS/PPS before each IDR, raw AAC with AudioSpecificConfig as
extradata, packets interleaved in non-decreasing time).  Writers are opened through an
:data:`OpenOutput` factory (one output set per format: MP4, HLS, M4A, MP3) once the encoders
exist.  One H.264 encoder feeds every output; one audio encoder per audio codec (AAC for
MP4/HLS/M4A, MP3 for MP3).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import av

from roomcast.domain.layout import Canvas, Layout, Participant, StreamKind
from roomcast.domain.layout_templates import LayoutFunction, build_layout
from roomcast.domain.recording import LayoutRef, OutputFormat, RecordingSpec
from roomcast.media.audiomix import AudioMixer
from roomcast.media.clock import RoomClock, SyncGroup, TrackTimeline
from roomcast.media.codecs import AudioEncoder
from roomcast.media.compositor import Compositor, SourceKey, no_images
from roomcast.media.images import ImageSource, layout_image_urls
from roomcast.media.outputs import AudioParams, EncodedPacket, OutputContext, VideoParams, open_output
from roomcast.rtc.track import MediaPacket, TrackInfo, TrackKind

__all__ = [
    "LayoutFunction",
    "MixedRecorder",
    "MixedSettings",
    "MixedStats",
    "OpenOutput",
    "PacketWriter",
    "TrackSource",
    "VideoEncoder",
    "audio_codec_for",
    "local_outputs",
    "resolve_layout",
    "settings_from_spec",
]

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90_000)


# --------------------------------------------------------------------------- interfaces


class Subscription(Protocol):
    """What the recorder needs of a track subscription (``rtc.forwarder.PacketSubscription``)."""

    async def recv(self) -> MediaPacket: ...

    def request_keyframe(self) -> None: ...

    def close(self) -> None: ...


class TrackSource(Protocol):
    """The source interface (``rtc.room.RoomManager`` implements it)."""

    def list_tracks(self, app_key: str, room_id: str) -> list[TrackInfo]: ...

    def subscribe_track(
        self,
        app_key: str,
        room_id: str,
        user_id: str,
        kind: TrackKind,
        *,
        maxsize: int | None = None,
        name: str = "",
    ) -> Any: ...


class PacketWriter(Protocol):
    """An output set (file(s) of one format) that takes encoded packets; synchronous."""

    @property
    def wants_keyframe(self) -> bool: ...

    def write(self, packet: Any) -> list[Any]: ...

    def close(self) -> list[Any]: ...


OpenOutput = Callable[[OutputFormat, VideoParams | None, AudioParams | None], PacketWriter]
"""Opens one output set (``outputs.open_output`` bound to the recording's naming and sink);
called once per output format, in the mixing thread, when the encoders are ready."""


def local_outputs(ctx: OutputContext) -> OpenOutput:
    """An :data:`OpenOutput` writing with ``roomcast.media.outputs`` under ``ctx``."""

    def opener(fmt: OutputFormat, video: VideoParams | None, audio: AudioParams | None) -> PacketWriter:
        return open_output(fmt, ctx, video=video, audio=audio)

    return opener


def resolve_layout(ref: LayoutRef | None) -> LayoutFunction:
    """The layout function of a spec's :class:`LayoutRef` (None: the generic grid), built by the
    template registry (:mod:`roomcast.domain.layout_templates`); an unknown template or bad
    parameters raise :class:`~roomcast.domain.errors.InvalidArgument` (``validate_spec`` checks
    this before a recording starts)."""
    return build_layout(ref)


def settings_from_spec(spec: RecordingSpec, canvas: Canvas | None = None) -> MixedSettings:
    """Mixer settings for a mixed-mode spec (``canvas`` adds background / watermarks)."""
    v, a = spec.video, spec.audio
    base = canvas if canvas is not None else Canvas(v.width, v.height)
    if (base.width, base.height) != (v.width, v.height):
        base = Canvas(v.width, v.height, base.background, base.watermarks)
    return MixedSettings(
        canvas=base,
        outputs=tuple(spec.outputs),
        fps=v.fps,
        video_bitrate_kbps=v.bitrate_kbps,
        gop=v.gop,
        preset=v.preset,
        sample_rate=a.sample_rate,
        channels=a.channels,
        audio_bitrate_kbps=a.bitrate_kbps,
        max_audio_sources=spec.max_audio_sources or None,
        record_video=spec.records_video and any(f.has_video for f in spec.outputs),
        record_audio=spec.records_audio,
        audio_users=spec.users.audio.admits,
        video_users=spec.users.video.admits,
        extra_rooms=spec.extra_rooms,
    )


def audio_codec_for(fmt: OutputFormat) -> str:
    """The audio codec the mixer encodes for an output format."""
    return "mp3" if fmt is OutputFormat.MP3 else "aac"


# --------------------------------------------------------------------------- settings, stats


@dataclass(frozen=True, slots=True)
class MixedSettings:
    canvas: Canvas
    outputs: tuple[OutputFormat, ...] = (OutputFormat.MP4,)
    fps: int = 15
    video_bitrate_kbps: int = 1000
    gop: float = 2.0
    """Seconds between IDR frames."""
    preset: str = "veryfast"
    """libx264 preset; see bench/mixing.py for what keeps up in real time."""
    encoder_threads: int = 1
    sample_rate: int = 48_000
    channels: int = 2
    audio_bitrate_kbps: int = 128
    max_audio_sources: int | None = None
    record_video: bool = True
    record_audio: bool = True
    latency: float = 0.4
    """Seconds between a moment of room time and its mixing (covers network and decoding)."""
    stale_after: float = 2.0
    """A video source silent for this long shows its placeholder."""
    poll_interval: float = 0.2
    """How often the track list is checked for joins / leaves / (un)publishing."""
    decode_threads: int = 2
    audio_users: Callable[[str], bool] | None = None
    """Whose audio is mixed (None: everyone)."""
    video_users: Callable[[str], bool] | None = None
    """Who gets a place in the layout (None: everyone)."""
    extra_rooms: tuple[str, ...] = ()
    """Other rooms of the same app whose publishers are mixed too (the user rules apply to
    them; their participants carry ``room_id``)."""


@dataclass(slots=True)
class MixedStats:
    frames: int = 0
    late_frames: int = 0
    audio_samples: int = 0
    video_packets: int = 0
    audio_packets: int = 0
    bytes: int = 0
    layouts: int = 0
    decoded_frames: dict[str, int] = field(default_factory=dict)
    busy_seconds: float = 0.0
    """Mixing-thread time spent composing, encoding and writing."""
    decode_seconds: float = 0.0


# --------------------------------------------------------------------------- encoders


class VideoEncoder:
    """libx264 for the canvas: no B-frames, IDR every ``gop`` seconds, ABR with a VBV cap."""

    def __init__(
        self,
        width: int,
        height: int,
        fps: int,
        bitrate_kbps: int,
        *,
        gop: float = 2.0,
        preset: str = "veryfast",
        threads: int = 1,
    ) -> None:
        cc = av.CodecContext.create("libx264", "w")
        assert isinstance(cc, av.VideoCodecContext)
        cc.width, cc.height = width, height
        cc.pix_fmt = "yuv420p"
        cc.time_base = VIDEO_TIME_BASE
        cc.framerate = Fraction(fps)
        cc.bit_rate = bitrate_kbps * 1000
        keyint = max(1, round(gop * fps))
        cc.gop_size = keyint
        cc.thread_count = threads
        cc.options = {
            "preset": preset,
            "bf": "0",
            "forced-idr": "1",
            "x264-params": (
                f"keyint={keyint}:min-keyint={keyint}:scenecut=0:"
                f"vbv-maxrate={bitrate_kbps * 3 // 2}:vbv-bufsize={bitrate_kbps * 2}:repeat-headers=1"
            ),
        }
        cc.open()
        self._cc = cc
        self.params = VideoParams("h264", width, height, fps)

    def encode(self, frame: av.VideoFrame | None, *, keyframe: bool = False) -> list[EncodedPacket]:
        if frame is not None and keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        out = []
        for pkt in self._cc.encode(frame):
            if pkt.pts is None:
                continue
            out.append(
                EncodedPacket(
                    "video", bytes(pkt), int(pkt.pts), bool(pkt.is_keyframe), int(pkt.duration or 0)
                )
            )
        return out


def _decoder_for(info: TrackInfo) -> Any:
    mime = info.codec.lower()
    name = {"video/h264": "h264", "video/vp8": "vp8", "audio/opus": "opus"}.get(mime)
    if name is None:
        raise ValueError(f"cannot decode {info.codec}")
    cc = av.CodecContext.create(name, "r")
    if name == "opus":
        assert isinstance(cc, av.AudioCodecContext)
        cc.sample_rate = 48_000
    cc.thread_count = 1
    return cc


# --------------------------------------------------------------------------- recorder


_Member = tuple[str | None, str]
"""A publisher of the mix: (room key, user id); the room key is None for the own room."""


@dataclass(slots=True)
class _VideoState:
    key: SourceKey
    queue: collections.deque[tuple[float, av.VideoFrame]] = field(default_factory=collections.deque)
    current: av.VideoFrame | None = None
    current_t: float = float("-inf")


@dataclass(slots=True)
class _Reader:
    info: TrackInfo
    task: asyncio.Task[None]
    subscription: Any


class _Interleaver:
    """Releases packets of two streams in non-decreasing time."""

    def __init__(self, sample_rate: int, video: bool, audio: bool) -> None:
        self.rate = sample_rate
        self.video: collections.deque[EncodedPacket] = collections.deque()
        self.audio: collections.deque[EncodedPacket] = collections.deque()
        self.has_video, self.has_audio = video, audio

    def _t(self, p: EncodedPacket) -> float:
        return p.pts / 90_000 if p.kind == "video" else p.pts / self.rate

    def push(self, packets: Sequence[EncodedPacket]) -> list[EncodedPacket]:
        for p in packets:
            (self.video if p.kind == "video" else self.audio).append(p)
        out = []
        while True:
            if self.video and self.audio:
                q = self.video if self._t(self.video[0]) <= self._t(self.audio[0]) else self.audio
            elif self.video and not self.has_audio:
                q = self.video
            elif self.audio and not self.has_video:
                q = self.audio
            else:
                break
            out.append(q.popleft())
        return out

    def flush(self) -> list[EncodedPacket]:
        rest = sorted([*self.video, *self.audio], key=self._t)
        self.video.clear()
        self.audio.clear()
        return rest


@dataclass(slots=True)
class _OutputGroup:
    codec: str | None
    encoder: AudioEncoder | None
    interleaver: _Interleaver
    writers: list[PacketWriter] = field(default_factory=list)


class MixedRecorder:
    """Records the mix of one room.  ``await start()``, then ``await stop()``.

    ``layout`` is called as ``layout(participants, canvas)`` whenever the participants change.
    ``open_output`` opens the outputs (see :data:`OpenOutput`); ``on_output_events`` receives,
    on the event loop, whatever the writers return (file opened / segment / file closed events).
    """

    def __init__(
        self,
        source: TrackSource,
        app_key: str,
        room_id: str,
        layout: LayoutFunction,
        settings: MixedSettings,
        open_output: OpenOutput,
        *,
        clock: RoomClock | None = None,
        images: ImageSource | None = None,
        on_output_events: Callable[[list[Any]], object] | None = None,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
    ) -> None:
        if settings.canvas.width % 2 or settings.canvas.height % 2:
            raise ValueError("the canvas size must be even")
        self.source = source
        self.app_key = app_key
        self.room_id = room_id
        self.settings = settings
        self.stats = MixedStats()
        self._layout_fn = layout
        self._open_output = open_output
        self._on_events = on_output_events
        self._clock = clock
        self._own_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            settings.decode_threads, thread_name_prefix="mix-decode"
        )
        self._participants: dict[_Member, Participant] = {}
        self._join_counter = 0
        self._layout: Layout = layout([], settings.canvas)
        self._images = images
        self._image_tasks: set[asyncio.Task[None]] = set()
        self.compositor = Compositor(self._layout, image_loader=images.get if images else no_images)
        self.mixer = AudioMixer(
            settings.sample_rate, settings.channels, max_sources=settings.max_audio_sources
        )
        self._video: dict[SourceKey, _VideoState] = {}
        self._readers: dict[tuple[str | None, str, TrackKind], _Reader] = {}
        self._groups: dict[_Member, SyncGroup] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._stop_at: float | None = None
        self._thread: threading.Thread | None = None
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self.started_at: float | None = None

    # ------------------------------------------------------------------ public

    @property
    def clock(self) -> RoomClock:
        assert self._clock is not None, "not started"
        return self._clock

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def participants(self) -> list[Participant]:
        return list(self._participants.values())

    async def start(self) -> None:
        """Start mixing now (output time 0 = now on the room clock)."""
        self._loop = asyncio.get_running_loop()
        if self._clock is None:
            self._clock = RoomClock()
        self.started_at = self._clock.now()
        await self._sync_tracks()
        self._thread = threading.Thread(target=self._run, name=f"mix-{self.room_id}", daemon=True)
        self._thread.start()
        self._poller = asyncio.create_task(self._poll(), name=f"mix-poll-{self.room_id}")

    async def stop(self, *, drain: bool = True) -> MixedStats:
        """Stop: mix up to now (``drain``: waits ``latency`` for what is still on its way;
        otherwise up to what is already due), flush the encoders, close the writers."""
        if self._clock is not None and self.started_at is not None:
            now = self._clock.now() - self.started_at
            self._stop_at = now if drain else max(0.0, now - self.settings.latency)
        self._wake.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for task in list(self._image_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        self._stop.set()
        for reader in list(self._readers.values()):
            self._close_reader(reader)
        for reader in list(self._readers.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader.task
        self._readers.clear()
        if self._own_executor:
            self._executor.shutdown(wait=False)
        if self._error is not None:
            raise self._error
        return self.stats

    def update_layout(self, layout: LayoutFunction) -> None:
        """Use another layout function from now on (e.g. grid -> floating with a main user)."""
        self._layout_fn = layout
        self._relayout()

    def users_changed(self) -> None:
        """Re-read the track list now (also done every ``poll_interval``)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._sync_tracks()))

    @property
    def error(self) -> BaseException | None:
        return self._error

    # ------------------------------------------------------------------ tracks and layout

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await self._sync_tracks()
            except Exception:
                log.exception("mix %s: track sync failed", self.room_id)

    @property
    def rooms(self) -> list[tuple[str | None, str]]:
        """The rooms mixed, as ``(room key, room id)``: the own room (key None) first."""
        extra = [r for r in dict.fromkeys(self.settings.extra_rooms) if r and r != self.room_id]
        return [(None, self.room_id), *((r, r) for r in extra)]

    def _admits(self, track: TrackInfo) -> bool:
        rule = self.settings.audio_users if track.kind is TrackKind.AUDIO else self.settings.video_users
        return rule is None or rule(track.user_id)

    def _list_tracks(self) -> list[tuple[str | None, TrackInfo]]:
        return [
            (key, t)
            for key, room_id in self.rooms
            for t in self.source.list_tracks(self.app_key, room_id)
            if self._admits(t)
        ]

    async def _sync_tracks(self) -> None:
        tracks = self._list_tracks()
        # the layout's participants: users with an admitted video track, or admitted to video
        # and publishing audio only (they get a placeholder tile)
        video_rule = self.settings.video_users
        by_user: dict[_Member, set[TrackKind]] = {}
        for room, t in tracks:
            if video_rule is None or video_rule(t.user_id):
                by_user.setdefault((room, t.user_id), set()).add(t.kind)
        changed = False
        for member, kinds in by_user.items():
            old = self._participants.get(member)
            if old is None:
                self._join_counter += 1
            p = Participant(
                member[1],
                join_order=old.join_order if old is not None else self._join_counter,
                has_camera=TrackKind.CAMERA in kinds,
                has_screen=TrackKind.SCREEN in kinds,
                has_audio=TrackKind.AUDIO in kinds,
                room_id=member[0],
            )
            if p != old:
                self._participants[member] = p
                changed = True
        for member in [m for m in self._participants if m not in by_user]:
            del self._participants[member]
            changed = True
        if changed or self.stats.layouts == 0:
            self._relayout()
        # audio: every admitted user
        wanted: dict[tuple[str | None, str, TrackKind], TrackInfo] = {}
        if self.settings.record_audio:
            for room, t in tracks:
                if t.kind is TrackKind.AUDIO:
                    wanted[(room, t.user_id, t.kind)] = t
        # video: what the layout shows
        if self.settings.record_video:
            shown = {
                (
                    k.room_id if k.room_id != self.room_id else None,
                    k.user_id,
                    TrackKind.SCREEN if k.stream is StreamKind.SCREEN else TrackKind.CAMERA,
                )
                for k in (SourceKey.of(p) for p in self._layout.panes)
                if k is not None
            }
            for room, t in tracks:
                if t.kind is not TrackKind.AUDIO and (room, t.user_id, t.kind) in shown:
                    wanted[(room, t.user_id, t.kind)] = t
        for key, reader in list(self._readers.items()):
            if key not in wanted or reader.task.done() or reader.info != wanted[key]:
                self._close_reader(reader)
                del self._readers[key]
        for key, info in wanted.items():
            if key not in self._readers:
                self._open_reader(key[0], info)

    def _relayout(self) -> None:
        layout = self._layout_fn(self.participants, self.settings.canvas)
        if (
            layout.canvas.width != self.settings.canvas.width
            or layout.canvas.height != self.settings.canvas.height
        ):
            raise ValueError("a layout must keep the recording's canvas size")
        self._layout = layout
        self.compositor.set_layout(layout)
        self.stats.layouts += 1
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._sync_readers_only()))
            self._loop.call_soon_threadsafe(self._want_images, layout)

    def _want_images(self, layout: Layout) -> None:
        """Fetch the layout's images not yet known (on the loop, never in the mixing thread);
        the layout is drawn at once without them and again once they are in."""
        if self._images is None or self._stop.is_set():
            return
        missing = [u for u in layout_image_urls(layout) if not self._images.known(u)]
        if missing:
            task = asyncio.get_running_loop().create_task(
                self._load_images(missing), name=f"mix-images-{self.room_id}"
            )
            self._image_tasks.add(task)
            task.add_done_callback(self._image_tasks.discard)

    async def _load_images(self, urls: list[str]) -> None:
        assert self._images is not None
        await self._images.fetch_all(urls)
        self.compositor.reload_images()

    async def _sync_readers_only(self) -> None:
        # a layout change may need other video tracks; _sync_tracks is idempotent
        if not self._stop.is_set():
            await self._sync_tracks()

    def _open_reader(self, room: str | None, info: TrackInfo) -> None:
        try:
            sub = self.source.subscribe_track(
                self.app_key, info.room_id, info.user_id, info.kind, name=f"mix<-{info.track_id}"
            )
        except Exception as exc:  # unpublished in between
            log.debug("mix %s: cannot subscribe %s: %s", self.room_id, info.track_id, exc)
            return
        task = asyncio.create_task(self._read(room, info, sub), name=f"mix-read-{info.track_id}")
        self._readers[(room, info.user_id, info.kind)] = _Reader(info, task, sub)

    def _close_reader(self, reader: _Reader) -> None:
        with contextlib.suppress(Exception):
            reader.subscription.close()
        reader.task.cancel()

    def _group(self, member: _Member) -> SyncGroup:
        group = self._groups.get(member)
        if group is None:
            name = member[1] if member[0] is None else f"{member[0]}/{member[1]}"
            group = self._groups[member] = SyncGroup(name)
        return group

    async def _read(self, room: str | None, info: TrackInfo, sub: Subscription) -> None:
        loop = asyncio.get_running_loop()
        decoder = _decoder_for(info)
        timeline: TrackTimeline | None = None
        is_audio = info.kind is TrackKind.AUDIO
        key = SourceKey(
            info.user_id, StreamKind.SCREEN if info.kind is TrackKind.SCREEN else StreamKind.CAMERA, room
        )
        member: _Member = (room, info.user_id)
        mixer_key = member if room is not None else info.user_id
        state: _VideoState | None = None
        if not is_audio:
            with self._lock:
                state = self._video.setdefault(key, _VideoState(key))
        counter = info.track_id if room is None else f"{room}/{info.track_id}"
        try:
            while not self._stop.is_set():
                pkt = await sub.recv()
                if timeline is None:
                    timeline = TrackTimeline(self.clock, pkt.time_base, self._group(member))
                t = timeline.map(pkt) - (self.started_at or 0.0)
                t0 = time.perf_counter()
                frames = await loop.run_in_executor(self._executor, _decode, decoder, pkt.packet)
                self.stats.decode_seconds += time.perf_counter() - t0
                self.stats.decoded_frames[counter] = self.stats.decoded_frames.get(counter, 0) + len(frames)
                if is_audio:
                    for i, frame in enumerate(frames):
                        self.mixer.push(mixer_key, frame, t if i == 0 else None)
                elif state is not None:
                    with self._lock:
                        for frame in frames:
                            state.queue.append((t, frame))
                        while len(state.queue) > 120:
                            state.queue.popleft()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            if type(exc).__name__ != "TrackEnded":
                log.warning("mix %s: reader %s failed: %s", self.room_id, info.track_id, exc)
        finally:
            if timeline is not None:
                timeline.close()
            if is_audio:
                self.mixer.remove_source(mixer_key)
            else:
                with self._lock:
                    if self._video.get(key) is state:
                        del self._video[key]

    # ------------------------------------------------------------------ mixing thread

    def _current_frames(self, t: float) -> dict[SourceKey, av.VideoFrame]:
        frames: dict[SourceKey, av.VideoFrame] = {}
        with self._lock:
            for key, state in self._video.items():
                while state.queue and state.queue[0][0] <= t:
                    state.current_t, state.current = state.queue.popleft()
                if state.current is not None and t - state.current_t <= self.settings.stale_after:
                    frames[key] = state.current
        return frames

    def _run(self) -> None:
        try:
            self._mix_loop()
        except BaseException as exc:  # surfaced by stop()
            log.exception("mix %s: mixing failed", self.room_id)
            self._error = exc

    def _mix_loop(self) -> None:
        s = self.settings
        clock = self.clock
        origin = self.started_at or 0.0
        venc = (
            VideoEncoder(
                s.canvas.width,
                s.canvas.height,
                s.fps,
                s.video_bitrate_kbps,
                gop=s.gop,
                preset=s.preset,
                threads=s.encoder_threads,
            )
            if s.record_video
            else None
        )
        # one group per audio codec: its encoder, its writers, and their interleaver
        groups: list[_OutputGroup] = []
        for fmt in s.outputs:
            codec = audio_codec_for(fmt) if s.record_audio else None
            group = next((g for g in groups if g.codec == codec), None)
            if group is None:
                enc = (
                    AudioEncoder(codec, s.sample_rate, s.channels, s.audio_bitrate_kbps * 1000)
                    if codec is not None
                    else None
                )
                group = _OutputGroup(
                    codec, enc, _Interleaver(s.sample_rate, venc is not None, enc is not None)
                )
                groups.append(group)
            audio = (
                AudioParams(codec, s.sample_rate, s.channels, s.audio_bitrate_kbps * 1000)
                if codec is not None
                else None
            )
            has_video = venc is not None and fmt.has_video and fmt is not OutputFormat.M4A
            group.writers.append(self._open_output(fmt, venc.params if venc and has_video else None, audio))
        writers = [w for g in groups for w in g.writers]
        frame_size = 1024
        period = 1.0 / s.fps
        k = 0
        last_canvas: av.VideoFrame | None = None

        def emit(video: Sequence[EncodedPacket], audio: dict[str | None, list[EncodedPacket]]) -> None:
            events: list[Any] = []
            self.stats.video_packets += len(video)
            self.stats.bytes += sum(len(p.data) for p in video)
            for g in groups:
                mine = audio.get(g.codec, [])
                self.stats.audio_packets += len(mine)
                self.stats.bytes += sum(len(p.data) for p in mine)
                for p in g.interleaver.push([*video, *mine]):
                    for w in g.writers:
                        events.extend(w.write(p))
            self._deliver(events)

        def mix_audio_until(media_t: float) -> dict[str | None, list[EncodedPacket]]:
            out: dict[str | None, list[EncodedPacket]] = {g.codec: [] for g in groups}
            if not s.record_audio:
                return out
            while (self.mixer.position + frame_size) / s.sample_rate <= media_t + 1e-9:
                at = self.mixer.position / s.sample_rate
                block = self.mixer.read(frame_size)
                self.stats.audio_samples += frame_size
                for g in groups:
                    if g.encoder is not None:
                        out[g.codec].extend(g.encoder.feed(block, at))
            return out

        while True:
            media_t = k * period
            stop_at = self._stop_at
            if stop_at is not None and media_t >= stop_at:
                break
            due = origin + media_t + s.latency
            now = clock.now()
            if now < due:
                if self._wake.wait(due - now):
                    self._wake.clear()  # stop() asked: re-check where to end, then go on
                continue
            t_busy = time.perf_counter()
            video: list[EncodedPacket] = []
            if venc is not None:
                late = clock.now() - due > 2 * period and last_canvas is not None
                frames = self._current_frames(media_t)  # advances the queues even when late
                if late:
                    canvas = last_canvas
                    self.stats.late_frames += 1
                else:
                    canvas = self.compositor.compose(frames, wallclock=clock.wallclock(origin + media_t))
                assert canvas is not None
                canvas.pts = round(media_t * 90_000)
                canvas.time_base = VIDEO_TIME_BASE
                want_key = any(w.wants_keyframe for w in writers)
                video.extend(venc.encode(canvas, keyframe=want_key))
                last_canvas = canvas
                self.stats.frames += 1
            emit(video, mix_audio_until(media_t + period))
            self.stats.busy_seconds += time.perf_counter() - t_busy
            k += 1
        # flush: audio up to the end of the last frame, then the encoders
        end_t = k * period
        tail_audio = mix_audio_until(end_t)
        for g in groups:
            if g.encoder is not None:
                tail_audio[g.codec].extend(g.encoder.flush())
        emit(venc.encode(None) if venc is not None else [], tail_audio)
        events: list[Any] = []
        for g in groups:
            for p in g.interleaver.flush():
                for w in g.writers:
                    events.extend(w.write(p))
        for w in writers:
            events.extend(w.close())
        self._deliver(events)

    def _deliver(self, events: list[Any]) -> None:
        if events and self._on_events is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_events, events)


def _decode(decoder: Any, packet: Any) -> list[Any]:
    try:
        return list(decoder.decode(packet))
    except av.error.FFmpegError as exc:  # a broken packet must not end the recording
        log.debug("decode error: %s", exc)
        return []
