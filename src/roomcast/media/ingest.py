"""Stream ingest media: pull a URL with PyAV and turn it into paced WebRTC-ready packets.

:class:`IngestPipeline` runs in a thread of its own (demuxing, decoding and encoding block). It
reads an MP4/FLV file over HTTP(S), an HLS playlist or an RTMP stream and hands out encoded
packets on the output timeline, each at the moment it is due:

* video: H.264 without B-frames is forwarded as it is (rewritten to Annex B with in-band SPS/PPS),
  anything else, or any source when an encoding is requested, is decoded and encoded to the
  room's codec (H.264 baseline, else VP8) with the requested size, rate, bitrate and GOP;
* audio: always decoded, scaled by the volume and encoded to 48 kHz Opus in 20 ms packets.

Timing: the output timeline starts when the pipeline does. Each *segment* (the first play, a loop,
a resume after a pause or a failure, a new URL) is anchored on it: a packet at media time ``t``
is due at ``anchor + (t - first media time of the segment)``. Audio and video use the same
anchor, so they stay in sync, and the anchor never moves back, so timestamps only grow. A small
read-ahead buffer absorbs the demuxer's interleaving and the encoders' hiccups.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np
from av.audio.resampler import AudioResampler
from av.bitstream import BitStreamFilterContext

from roomcast.domain.ingest import FOREVER, IngestSpec, VideoEncoding

log = logging.getLogger("roomcast.ingest")

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
OPUS_FRAME = 960  # 20 ms
LEAD_S = 0.05  # a segment's first packet is due this long after it is anchored
LIVE_LEAD_S = 0.5  # the same for live sources, whose data arrives with network jitter
READ_AHEAD_S = 0.3  # media read and encoded ahead of the clock
MAX_JUMP_S = 5.0  # a timestamp jump larger than this re-anchors (live stream discontinuity)
OPEN_TIMEOUT_S = 10.0
RETRY_BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
PROGRESS_RESETS_RETRIES_S = 5.0  # a segment that played this long resets the failure count

H264 = "video/H264"
VP8 = "video/VP8"
OPUS = "audio/opus"
_COPY_PROFILES = {"baseline", "constrained baseline", "main", "high"}


class SourceError(Exception):
    """The source could not be opened or read (``permanent``: retrying will not help)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Probe:
    """What a source holds, from opening it once."""

    format: str
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    duration_s: float | None  # None: a live stream (or one of unknown length)
    copyable: bool  # H.264 that can be forwarded without re-encoding

    @property
    def live(self) -> bool:
        return self.duration_s is None


# What an ingest source may be: streaming containers and the codecs they carry (FFmpeg would
# also "play" a text file as ANSI art, an image as a one-frame video, ...).
FORMATS = "mov,mp4,flv,live_flv,hls,mpegts,matroska,webm,mp3,aac,wav,ogg"
VIDEO_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "mpeg1video", "h263", "flv1", "theora"}
)
AUDIO_CODECS = frozenset(
    {"aac", "mp3", "mp2", "opus", "vorbis", "ac3", "eac3", "flac", "alac", "speex", "nellymoser", "adpcm_swf"}
)


def open_source(url: str, timeout_s: float = OPEN_TIMEOUT_S) -> av.container.InputContainer:
    options = {"rw_timeout": str(int(timeout_s * 1_000_000)), "format_whitelist": FORMATS}
    if url.startswith(("http://", "https://")):
        # HLS playlists fetch their segments themselves: network protocols only, never file:.
        options["protocol_whitelist"] = "http,https,tcp,tls,crypto"
    try:
        return av.open(url, mode="r", options=options, timeout=(timeout_s, timeout_s))
    except av.error.HTTPNotFoundError as exc:
        raise SourceError(f"the source answers 404 Not Found ({exc.strerror})") from None
    except av.error.InvalidDataError:
        raise SourceError("the source is not a media stream roomcast can read", permanent=True) from None
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"the source could not be opened: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, av.error.FFmpegError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def _codec_ok(name: str, kind: str) -> bool:
    allowed = name in VIDEO_CODECS if kind == "video" else (name in AUDIO_CODECS or name.startswith("pcm_"))
    if not allowed:
        return False
    try:
        av.codec.Codec(name, "r")
    except Exception:
        return False
    return True


def h264_copyable(stream: av.video.stream.VideoStream) -> bool:
    """H.264 that browsers and recorders take as it is: no frame reordering, 8-bit 4:2:0."""
    cc = stream.codec_context
    if cc.name != "h264":
        return False
    profile = (cc.profile or "").lower()
    if profile and profile not in _COPY_PROFILES:
        return False
    if cc.has_b_frames:
        return False
    return cc.pix_fmt in (None, "yuv420p", "yuvj420p")


def probe(url: str, timeout_s: float = OPEN_TIMEOUT_S) -> Probe:
    """Open ``url`` and describe it; :class:`SourceError` if it cannot be played."""
    container = open_source(url, timeout_s)
    try:
        vs = next(iter(container.streams.video), None)
        as_ = next(iter(container.streams.audio), None)
        if vs is not None and not _codec_ok(vs.codec_context.name, "video"):
            vs = None
        if as_ is not None and not _codec_ok(as_.codec_context.name, "audio"):
            as_ = None
        if vs is None and as_ is None:
            raise SourceError("the source has no audio or video stream roomcast can decode", permanent=True)
        duration = container.duration / 1_000_000 if container.duration and container.duration > 0 else None
        return Probe(
            format=container.format.name,
            video_codec=vs.codec_context.name if vs is not None else None,
            audio_codec=as_.codec_context.name if as_ is not None else None,
            width=vs.codec_context.width if vs is not None else None,
            height=vs.codec_context.height if vs is not None else None,
            duration_s=duration,
            copyable=vs is not None and h264_copyable(vs),
        )
    finally:
        container.close()


@dataclass(order=True)
class OutPacket:
    due: float  # seconds on the output timeline
    seq: int
    media: str = field(compare=False)  # "audio" | "video"
    data: bytes = field(compare=False)
    pts: int = field(compare=False)  # 1/90000 (video) or 1/48000 (audio)
    keyframe: bool = field(compare=False)


class Controls:
    """The knobs the event loop turns while the pipeline thread plays (thread-safe)."""

    def __init__(self, spec: IngestSpec) -> None:
        self._cond = threading.Condition()
        self.url = spec.url
        self.generation = 0  # bumped by each URL switch
        self.volume = spec.volume
        self.paused = spec.paused
        self.stopped = False
        self._keyframe = False

    def switch(self, url: str) -> None:
        with self._cond:
            self.url = url
            self.generation += 1
            self._cond.notify_all()

    def set_volume(self, volume: int) -> None:
        self.volume = volume

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self.paused = paused
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def request_keyframe(self) -> None:
        self._keyframe = True

    def take_keyframe(self) -> bool:
        wanted, self._keyframe = self._keyframe, False
        return wanted

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds; any change wakes the sleeper."""
        if timeout <= 0:
            return
        with self._cond:
            self._cond.wait(timeout)


@dataclass(frozen=True)
class Outcome:
    reason: str  # completed | max_duration | stopped | failed
    error: str | None = None


@dataclass
class Stats:
    video_mode: str | None = None  # copy | transcode
    video_packets: int = 0
    audio_packets: int = 0
    failures: int = 0
    last_error: str | None = None
    width: int | None = None
    height: int | None = None


class _Interrupted(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why  # stopped | switched | paused | max_duration


Emit = Callable[[OutPacket], None]


class IngestPipeline:
    """Plays one ingest task's source(s); :meth:`run` blocks until the task's media ends."""

    def __init__(
        self,
        spec: IngestSpec,
        controls: Controls,
        emit: Emit,
        *,
        video_codec: str = H264,
        check_url: Callable[[str], None] | None = None,
        retries: int = 3,
        elapsed_s: float = 0.0,
    ) -> None:
        self.spec = spec
        self.controls = controls
        self._emit = emit
        self.video_codec = video_codec
        self._check_url = check_url
        self._retries = retries
        self.stats = Stats()
        self._t0 = time.monotonic() - elapsed_s  # the output timeline's zero (a resumed task: earlier)
        self._elapsed0 = elapsed_s
        self._seq = 0
        self._last_due = -math.inf
        self._last_video_pts = -1
        self._audio_next: int | None = None  # the next audio packet's pts
        self._audio_floor = 0  # audio pts never go below this (after a segment)
        self._opus: av.audio.codeccontext.AudioCodecContext | None = None
        self._opus_channels = 0
        self.position_s = 0.0  # media time of the last packet sent (where a resume starts)
        self.url = spec.url  # the URL playing
        self.plays_done = 0  # complete plays of it
        self.live = False  # whether it is a live stream (no position to resume at)
        self._live_played = False  # the current source is live and has delivered media
        self._segment_live = False

    # ---------------------------------------------------------------- clock

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _over_max(self) -> bool:
        limit = self.spec.max_duration_s
        return limit is not None and self.now() >= limit

    # ----------------------------------------------------------------- loop

    def run(self) -> Outcome:
        c = self.controls
        plays_left = self.spec.repeats
        seek = self.spec.seek_s
        generation = c.generation
        failures = 0
        while True:
            if c.stopped:
                return Outcome("stopped")
            if self._over_max():
                return Outcome("max_duration")
            if c.paused:
                self._wait_paused()
                continue
            if c.generation != generation:
                generation, plays_left, seek = c.generation, self.spec.repeats, 0.0
                self._live_played = False
                self.plays_done = 0
            url = self.url = c.url
            started = self.now()
            try:
                why, live = self._play(url, seek, generation)
            except SourceError as exc:
                if self.now() - started >= PROGRESS_RESETS_RETRIES_S:
                    failures = 0
                failures += 1
                self.stats.failures += 1
                self.stats.last_error = str(exc)
                fields = {"error": str(exc), "attempt": failures}
                log.warning("ingest.source_failed", extra={"fields": fields})
                if exc.permanent or failures > self._retries:
                    if c.generation != generation or c.stopped:
                        continue  # a new URL (or a stop) arrived meanwhile
                    if self._live_played and not exc.permanent:
                        # A live stream that played and can no longer be reached has ended (an
                        # RTMP or HLS live source signals its end as a broken connection).
                        return Outcome("completed", f"the live stream ended: {exc}")
                    return Outcome("failed", str(exc))
                seek = self.position_s
                c.wait(RETRY_BACKOFF_S[min(failures - 1, len(RETRY_BACKOFF_S) - 1)])
                continue
            failures = 0
            if why == "ended":
                if live:
                    return Outcome("completed")
                self.plays_done += 1
                self.position_s = 0.0
                if plays_left != FOREVER:
                    plays_left -= 1
                    if plays_left <= 0:
                        return Outcome("completed")
                seek = 0.0
            elif why == "paused":
                seek = 0.0 if live else self.position_s
            elif why == "switched":
                continue
            elif why == "max_duration":
                return Outcome("max_duration")
            elif why == "stopped":
                return Outcome("stopped")

    def _wait_paused(self) -> None:
        c = self.controls
        while c.paused and not c.stopped and not self._over_max():
            limit = self.spec.max_duration_s
            c.wait(1.0 if limit is None else max(0.01, min(1.0, limit - self.now())))

    def _check(self, generation: int) -> None:
        c = self.controls
        if c.stopped:
            raise _Interrupted("stopped")
        if c.generation != generation:
            raise _Interrupted("switched")
        if c.paused:
            raise _Interrupted("paused")
        if self._over_max():
            raise _Interrupted("max_duration")

    # ----------------------------------------------------------------- play

    def _play(self, url: str, seek: float, generation: int) -> tuple[str, bool]:
        """Play ``url`` once from ``seek``: (why it ended, whether it is live)."""
        if self._check_url is not None:
            self._check_url(url)
        container = open_source(url)
        try:
            return self._play_container(container, seek, generation)
        finally:
            container.close()

    def _play_container(
        self, container: av.container.InputContainer, seek: float, generation: int
    ) -> tuple[str, bool]:
        vs = next(iter(container.streams.video), None)
        as_ = next(iter(container.streams.audio), None)
        if vs is not None and not _codec_ok(vs.codec_context.name, "video"):
            vs = None
        if as_ is not None and not _codec_ok(as_.codec_context.name, "audio"):
            as_ = None
        if vs is None and as_ is None:
            raise SourceError("the source has no audio or video stream roomcast can decode", permanent=True)
        live = not (container.duration and container.duration > 0)
        self._live_played = self._live_played and live
        if seek > 0 and not live:
            try:
                container.seek(int(seek * 1_000_000), backward=True, any_frame=False)
            except av.error.FFmpegError as exc:
                raise SourceError(f"cannot seek to {seek:.1f} s: {_describe(exc)}", permanent=True) from None
        self._segment_live = self.live = live
        seg = _Segment(self, vs, as_, seek if not live else 0.0, live=live)
        streams = [s for s in (vs, as_) if s is not None]
        heap: list[OutPacket] = []
        try:
            for packet in container.demux(streams):
                self._check(generation)
                for out in seg.process(packet):
                    heapq.heappush(heap, out)
                self._pump(heap, seg, generation, draining=False)
            for out in seg.flush():
                heapq.heappush(heap, out)
            self._pump(heap, seg, generation, draining=True)
        except _Interrupted as stop:
            return stop.why, live
        except av.error.EOFError:
            pass
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"reading the source failed: {_describe(exc)}") from None
        return "ended", live

    def _pump(self, heap: list[OutPacket], seg: _Segment, generation: int, *, draining: bool) -> None:
        """Send what is due; wait while enough is buffered (or until everything is, ``draining``)."""
        while heap:
            now = self.now()
            top = heap[0]
            if top.due <= now:
                self._send(heapq.heappop(heap))
                continue
            if not draining and seg.buffered_until < now + READ_AHEAD_S:
                return  # read more
            self._check(generation)
            self.controls.wait(min(top.due - now, 0.05))
            self._check(generation)

    def _send(self, out: OutPacket) -> None:
        self._live_played = self._live_played or self._segment_live
        if out.media == "video":
            self.stats.video_packets += 1
        else:
            self.stats.audio_packets += 1
        self._emit(out)

    # ------------------------------------------------------------ encoders

    def out(self, media: str, data: bytes, pts: int, keyframe: bool, due: float) -> OutPacket:
        self._seq += 1
        self._last_due = max(self._last_due, due)
        return OutPacket(due=due, seq=self._seq, media=media, data=data, pts=pts, keyframe=keyframe)

    def opus(self, channels: int) -> av.audio.codeccontext.AudioCodecContext:
        if self._opus is None or self._opus_channels != channels:
            enc = av.CodecContext.create("libopus", "w")
            assert isinstance(enc, av.audio.codeccontext.AudioCodecContext)
            enc.sample_rate = AUDIO_RATE
            enc.layout = "stereo" if channels == 2 else "mono"
            enc.format = "s16"
            enc.bit_rate = (self.spec.audio.bitrate_kbps or 64) * 1000
            enc.time_base = AUDIO_TIME_BASE
            enc.options = {"application": "audio", "frame_duration": "20"}
            enc.open()
            self._opus, self._opus_channels = enc, channels
        return self._opus


class _Segment:
    """One play of one source: decoders, the anchor and the per-stream state."""

    def __init__(
        self,
        pipe: IngestPipeline,
        vs: av.video.stream.VideoStream | None,
        as_: av.audio.stream.AudioStream | None,
        seek: float,
        *,
        live: bool,
    ) -> None:
        self.pipe = pipe
        self.live = live
        self.vs = vs
        self.as_ = as_
        self.seek = seek
        self.media0: float | None = None
        self.anchor = 0.0
        self.buffered_until = -math.inf
        self.last_t: float | None = None
        enc: VideoEncoding | None = pipe.spec.video
        self.copy = vs is not None and enc is None and pipe.video_codec == H264 and h264_copyable(vs)
        self.bsf: BitStreamFilterContext | None = None
        self.waiting_keyframe = True
        self.venc: av.video.codeccontext.VideoCodecContext | None = None
        self.next_frame_t = -math.inf
        if vs is not None:
            pipe.stats.video_mode = "copy" if self.copy else "transcode"
            extradata = vs.codec_context.extradata or b""
            if self.copy and extradata[:1] == b"\x01":  # avcC (MP4, FLV): convert to Annex B
                self.bsf = BitStreamFilterContext("h264_mp4toannexb", vs)
            if not self.copy:
                vs.codec_context.thread_type = "AUTO"
        self.channels = 2
        if as_ is not None:
            src_channels = as_.codec_context.channels or 2
            wanted = pipe.spec.audio.channels
            self.channels = wanted if wanted in (1, 2) else min(2, max(1, src_channels))
        self.resampler = AudioResampler(
            format="s16", layout="stereo" if self.channels == 2 else "mono", rate=AUDIO_RATE
        )
        self.fifo = av.AudioFifo()
        pipe._audio_next = None

    # -- timing

    def _anchor(self, t: float) -> None:
        pipe = self.pipe
        self.media0 = t
        lead = LIVE_LEAD_S if self.live else LEAD_S
        self.anchor = max(pipe.now() + lead, pipe._last_due + 0.02)
        self.last_t = t

    def due(self, t: float) -> float:
        if self.media0 is None:
            self._anchor(t)
        assert self.media0 is not None
        if self.last_t is not None and abs(t - self.last_t) > MAX_JUMP_S:
            # A discontinuity (live stream restart, broken timestamps): start a new anchor here.
            self._anchor(t)
            assert self.media0 is not None
        self.last_t = t if self.last_t is None else max(self.last_t, t)
        return self.anchor + (t - self.media0)

    def _push(self, out: OutPacket) -> OutPacket:
        self.buffered_until = max(self.buffered_until, out.due)
        return out

    # -- packets

    def process(self, packet: av.Packet[Any]) -> list[OutPacket]:
        if packet.stream is self.vs:
            return self._video(packet)
        if packet.stream is self.as_:
            return self._audio(packet)
        return []

    def flush(self) -> list[OutPacket]:
        out: list[OutPacket] = []
        if self.vs is not None and not self.copy:
            with _quiet():
                for frame in self.vs.codec_context.decode(None):
                    out += self._video_frame(frame)
        return out

    def _video(self, packet: av.Packet[Any]) -> list[OutPacket]:
        if packet.size == 0:
            return []
        if not self.copy:
            out: list[OutPacket] = []
            frames: list[av.VideoFrame] = []
            with _quiet():
                frames = self.vs.codec_context.decode(packet) if self.vs is not None else []
            for frame in frames:
                out += self._video_frame(frame)
            return out
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.time_base is None:
            return []
        t = float(ts * packet.time_base)
        keyframe = bool(packet.is_keyframe)
        if self.waiting_keyframe:
            if not keyframe:
                return []
            self.waiting_keyframe = False
        packets = self.bsf.filter(packet) if self.bsf is not None else [packet]
        data = b"".join(bytes(p) for p in packets)
        if not data:
            return []
        due = self.due(t)
        pipe = self.pipe
        pts = max(round(due * 90000), pipe._last_video_pts + 1)
        pipe._last_video_pts = pts
        pipe.position_s = t
        return [self._push(pipe.out("video", data, pts, keyframe, due))]

    def _video_frame(self, frame: av.VideoFrame) -> list[OutPacket]:
        t = frame.time
        if t is None or not math.isfinite(t) or t < self.seek - 1e-3:
            return []
        pipe = self.pipe
        enc_spec = pipe.spec.video or VideoEncoding()
        if enc_spec.fps:
            if t < self.next_frame_t - 0.25 / enc_spec.fps:
                return []
            self.next_frame_t = max(self.next_frame_t + 1 / enc_spec.fps, t)
        due = self.due(t)
        pts = max(round(due * 90000), pipe._last_video_pts + 1)
        pipe._last_video_pts = pts
        pipe.position_s = t
        enc = self._encoder(frame, enc_spec)
        vf = frame.reformat(width=enc.width, height=enc.height, format="yuv420p")
        vf.pts = pts
        vf.time_base = VIDEO_TIME_BASE
        if pipe.controls.take_keyframe():
            vf.pict_type = av.video.frame.PictureType.I
        out: list[OutPacket] = []
        for p in enc.encode(vf):
            p_pts = p.pts if p.pts is not None else pts
            out.append(self._push(pipe.out("video", bytes(p), p_pts, bool(p.is_keyframe), p_pts / 90000)))
        return out

    def _encoder(self, frame: av.VideoFrame, spec: VideoEncoding) -> av.video.codeccontext.VideoCodecContext:
        if self.venc is not None:
            return self.venc
        pipe = self.pipe
        width = spec.width or frame.width
        height = spec.height or frame.height
        if spec.width and not spec.height:
            height = round(frame.height * spec.width / frame.width)
        elif spec.height and not spec.width:
            width = round(frame.width * spec.height / frame.height)
        width, height = max(2, width - width % 2), max(2, height - height % 2)
        rate = self.vs.average_rate if self.vs is not None else None
        fps = spec.fps or (float(rate) if rate else 30.0)
        bitrate = (spec.bitrate_kbps or _default_kbps(width, height, fps)) * 1000
        gop = max(1, round(fps * (spec.gop_s or 2)))
        if pipe.video_codec == H264:
            enc = av.CodecContext.create("libx264", "w")
            enc.options = {"preset": "veryfast", "tune": "zerolatency", "profile": "baseline"}
        else:
            enc = av.CodecContext.create("libvpx", "w")
            enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        assert isinstance(enc, av.video.codeccontext.VideoCodecContext)
        enc.width, enc.height = width, height
        enc.pix_fmt = "yuv420p"
        enc.time_base = VIDEO_TIME_BASE
        enc.framerate = Fraction(fps).limit_denominator(1001)
        enc.bit_rate = bitrate
        enc.gop_size = gop
        enc.max_b_frames = 0
        enc.thread_type = "SLICE"
        enc.open()
        self.venc = enc
        pipe.stats.width, pipe.stats.height = width, height
        return enc

    def _audio(self, packet: av.Packet[Any]) -> list[OutPacket]:
        if self.as_ is None or packet.size == 0:
            return []
        if self.copy and self.waiting_keyframe and self.vs is not None:
            return []  # audio starts with the first video keyframe (sync)
        out: list[OutPacket] = []
        pipe = self.pipe
        frames: list[av.AudioFrame] = []
        with _quiet():
            frames = self.as_.codec_context.decode(packet)
        for frame in frames:
            t = frame.time
            if t is None or not math.isfinite(t):
                continue
            if self.media0 is not None and t + frame.samples / max(1, frame.sample_rate) < self.media0:
                continue  # before the segment's first video frame
            if not self.copy and t < self.seek - 0.02:
                continue
            if pipe._audio_next is None:
                start = round(self.due(t) * AUDIO_RATE)
                pipe._audio_next = max(start, pipe._audio_floor)
                self.fifo = av.AudioFifo()
            else:
                self.due(t)
            for rf in self.resampler.resample(frame):
                rf.pts = None
                self.fifo.write(_scaled(rf, pipe.controls.volume))
            enc = pipe.opus(self.channels)
            while self.fifo.samples >= OPUS_FRAME:
                chunk = self.fifo.read(OPUS_FRAME)
                if chunk is None:
                    break
                chunk.pts = None
                for p in enc.encode(chunk):
                    pts = pipe._audio_next
                    pipe._audio_next = pts + OPUS_FRAME
                    pipe._audio_floor = pipe._audio_next
                    out.append(self._push(pipe.out("audio", bytes(p), pts, True, pts / AUDIO_RATE)))
            if self.vs is None:
                pipe.position_s = t
        return out


def _scaled(frame: av.AudioFrame, volume: int) -> av.AudioFrame:
    if volume >= 100:
        return frame
    arr = frame.to_ndarray()
    scaled = np.clip(arr.astype(np.float32) * (volume / 100.0), -32768, 32767).astype(np.int16)
    out = av.AudioFrame.from_ndarray(scaled, format="s16", layout=frame.layout.name)
    out.sample_rate = frame.sample_rate
    return out


def _default_kbps(width: int, height: int, fps: float) -> int:
    """About 1.2 Mbit/s for 720p30, scaled by pixels per second."""
    return max(150, min(6000, round(1200 * (width * height * fps) / (1280 * 720 * 30))))


class _quiet:
    """Decoding errors of single packets (corrupt data mid-stream) are skipped, not fatal."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        return exc_type is not None and issubclass(exc_type, av.error.InvalidDataError)
