"""Output writers: MP4 (fragmented, then finalized), HLS, M4A, MP3 and WebM from encoded packets.

Writers are synchronous and do file I/O; run them in a worker thread.  See
``docs/recording-interfaces.md`` for the packet contract (time bases, keyframes, codec
parameters).  :func:`open_output` returns an :class:`OutputSet`, which owns the files of one
user/stream (or of one mix) in one format: it opens a file on the first usable packet, rebases
timestamps so each file starts at 0, splits at ``max_file_duration`` on a keyframe, and reports
:class:`FileStarted`, :class:`SegmentReady` and :class:`FileInfo` events.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import av

from roomcast.domain.recording import FileNaming, OutputFormat, sanitize_name_part

log = logging.getLogger(__name__)

__all__ = [
    "VIDEO_TIME_BASE",
    "AudioParams",
    "EncodedPacket",
    "FileInfo",
    "FileStarted",
    "OutputContext",
    "OutputEvent",
    "OutputSet",
    "SegmentReady",
    "VideoParams",
    "annexb_parameter_sets",
    "finalize_mp4",
    "open_output",
]

VIDEO_TIME_BASE = Fraction(1, 90000)
MP4_LIVE_OPTIONS: Mapping[str, str] = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": "1000000",  # also cut a fragment every second without keyframes
    "flush_packets": "1",  # hand each finished fragment to the OS at once (survives a crash)
}
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
SPLIT_KEYFRAME_LEAD = 0.0  # s before a split/segment cut when the writer starts asking for a keyframe

MediaKind = Literal["audio", "video"]


@dataclass(frozen=True, slots=True)
class VideoParams:
    codec: str  # "h264" (Annex-B) | "vp8"
    width: int
    height: int
    fps: int = 15
    extradata: bytes | None = None  # H.264: Annex-B SPS+PPS; None = from the first keyframe


@dataclass(frozen=True, slots=True)
class AudioParams:
    codec: str  # "aac" | "mp3" | "opus"
    sample_rate: int = 48000
    channels: int = 2
    bitrate: int = 128000

    @property
    def time_base(self) -> Fraction:
        return Fraction(1, self.sample_rate)


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    kind: MediaKind
    data: bytes
    pts: int  # video: 1/90000, audio: 1/sample_rate; on the caller's timeline
    keyframe: bool = True
    duration: int = 0


@dataclass(frozen=True, slots=True)
class OutputContext:
    """Where and how one output set names its files.

    ``variables`` fills the naming template (``task_id``, ``app``, ``room_id``, ``user_id``,
    ``stream``, ``media``); ``start_time``, ``start_ms``, ``index`` and ``format`` are added per
    file. ``wall_origin`` is the ``time.time()`` of timeline 0 (to report wall-clock start/end).
    ``file_durations`` overrides ``max_file_duration`` for some formats (by format value).
    """

    root: Path
    naming: FileNaming
    variables: Mapping[str, str]
    wall_origin: float
    max_file_duration: float = 0.0
    hls_segment_duration: float = 6.0
    file_durations: Mapping[str, float] = field(default_factory=dict)

    def for_format(self, fmt: OutputFormat) -> OutputContext:
        """The context of one output format: its own naming template and file duration."""
        return replace(
            self,
            naming=self.naming.for_format(fmt),
            max_file_duration=self.file_durations.get(fmt.value, self.max_file_duration),
        )


@dataclass(frozen=True, slots=True)
class FileStarted:
    path: Path
    key: str
    format: OutputFormat
    user_id: str
    stream: str
    media: str
    index: int
    start_offset: float  # seconds on the caller's timeline
    start_wallclock: float


@dataclass(frozen=True, slots=True)
class SegmentReady:
    path: Path
    key: str
    content_type: str
    seq: int
    duration: float
    playlist_path: Path
    playlist_key: str


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: Path
    key: str
    format: OutputFormat
    content_type: str
    user_id: str
    stream: str
    media: str
    index: int
    start_offset: float
    start_wallclock: float
    end_wallclock: float
    duration: float
    size: int
    width: int | None
    height: int | None
    has_audio: bool
    has_video: bool
    segments: tuple[str, ...] = ()  # HLS: segment keys in order
    dropped_packets: int = 0


OutputEvent = FileStarted | SegmentReady | FileInfo


# ---------------------------------------------------------------------------------------- helpers


def _nal_units(data: bytes) -> list[bytes]:
    out: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = len(data) if j < 0 else j
        nal = data[start:end]
        if j >= 0 and nal.endswith(b"\x00"):
            nal = nal[:-1]  # part of a 4-byte start code
        if nal:
            out.append(nal)
        i = j
    return out


def annexb_parameter_sets(data: bytes) -> bytes | None:
    """The SPS and PPS NAL units of an Annex-B access unit, as Annex-B (or None)."""
    nals = [n for n in _nal_units(data) if n[0] & 0x1F in (7, 8)]
    if not any(n[0] & 0x1F == 7 for n in nals):
        return None
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


def _add_video_stream(container: Any, params: VideoParams, first_keyframe: bytes) -> tuple[Any, int, int]:
    """Add a stream for copying ``params.codec`` packets; returns (stream, width, height)."""
    if params.codec == "h264":
        # A template from the keyframe itself: no encoder is opened, so FFmpeg keeps our
        # parameter sets (opening libx264 would write its own SPS into the extradata).
        with av.open(io.BytesIO(first_keyframe), format="h264") as tpl:
            src = tpl.streams.video[0]
            stream = container.add_stream_from_template(src)
            width = src.codec_context.width or params.width
            height = src.codec_context.height or params.height
        extradata = params.extradata or annexb_parameter_sets(first_keyframe)
        if extradata is not None:
            stream.codec_context.extradata = extradata
        stream.time_base = VIDEO_TIME_BASE
        return stream, width, height
    if params.codec == "vp8":
        stream = container.add_stream("libvpx", rate=params.fps)
        stream.width, stream.height = params.width, params.height
        stream.pix_fmt = "yuv420p"
        return stream, params.width, params.height
    raise ValueError(f"unsupported video codec {params.codec}")


_AUDIO_ENCODER_NAMES = {"aac": "aac", "mp3": "libmp3lame", "opus": "libopus"}


def _add_audio_stream(container: Any, params: AudioParams) -> Any:
    # For audio the (unused) encoder that PyAV opens produces exactly the codec configuration
    # of our own encoder with the same settings (AAC LC AudioSpecificConfig, OpusHead).
    stream = container.add_stream(_AUDIO_ENCODER_NAMES[params.codec], rate=params.sample_rate)
    stream.layout = "mono" if params.channels == 1 else "stereo"
    stream.bit_rate = params.bitrate
    if params.codec == "opus":
        stream.format = "s16"
    else:
        stream.format = "fltp"
    stream.time_base = params.time_base
    return stream


def finalize_mp4(path: Path | str) -> None:
    """Remux a (fragmented) MP4 into a normal one with the moov first; idempotent."""
    src_path = Path(path)
    tmp = src_path.with_name(src_path.name + ".finalize")
    with (
        av.open(str(src_path)) as src,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"}) as dst,
    ):
        mapping: dict[int, Any] = {}
        for s in src.streams:
            if s.type in ("audio", "video"):
                mapping[s.index] = dst.add_stream_from_template(s)
        for pkt in src.demux():
            if pkt.dts is None or pkt.stream.index not in mapping:
                continue
            pkt.stream = mapping[pkt.stream.index]
            dst.mux(pkt)
    os.replace(tmp, src_path)


def _start_time_text(wallclock: float) -> str:
    return datetime.fromtimestamp(wallclock, UTC).strftime("%Y%m%dT%H%M%SZ")


# ------------------------------------------------------------------------------------ file kinds


class _File:
    """One output file (or one HLS playlist with its segments)."""

    ext = ""
    content_type = "application/octet-stream"

    def __init__(self, prefix: Path, video: VideoParams | None, audio: AudioParams | None) -> None:
        self.prefix = prefix
        self.video = video
        self.audio = audio
        self.path = prefix.with_name(prefix.name + self.ext)
        self.width: int | None = None
        self.height: int | None = None

    def open(self, first_keyframe: bytes | None) -> None:
        raise NotImplementedError

    def write(
        self, kind: MediaKind, data: bytes, pts: int, keyframe: bool, duration: int
    ) -> list[SegmentReady]:
        raise NotImplementedError

    def close(self, end: float) -> list[SegmentReady]:
        raise NotImplementedError

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def segment_keys(self) -> tuple[str, ...]:
        return ()

    def wants_keyframe(self) -> bool:
        return False


class _ContainerFile(_File):
    format_name = "mp4"
    options: Mapping[str, str] = {}

    def __init__(self, prefix: Path, video: VideoParams | None, audio: AudioParams | None) -> None:
        super().__init__(prefix, video, audio)
        self.container: Any = None
        self.streams: dict[MediaKind, Any] = {}

    def _open_container(self, path: Path, first_keyframe: bytes | None, options: Mapping[str, str]) -> Any:
        container = av.open(str(path), "w", format=self.format_name, options=dict(options))
        streams: dict[MediaKind, Any] = {}
        if self.video is not None:
            if first_keyframe is None:
                raise ValueError("a video file needs its first keyframe")
            streams["video"], self.width, self.height = _add_video_stream(
                container, self.video, first_keyframe
            )
        if self.audio is not None:
            streams["audio"] = _add_audio_stream(container, self.audio)
        self.streams = streams
        return container

    def open(self, first_keyframe: bytes | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = self._open_container(self.path, first_keyframe, self.options)

    def _mux(
        self, container: Any, kind: MediaKind, data: bytes, pts: int, keyframe: bool, duration: int
    ) -> None:
        stream = self.streams[kind]
        pkt = av.Packet(data)
        pkt.pts = pkt.dts = pts
        pkt.time_base = VIDEO_TIME_BASE if kind == "video" else self.audio.time_base  # type: ignore[union-attr]
        if duration:
            pkt.duration = duration
        pkt.is_keyframe = keyframe
        pkt.stream = stream
        container.mux(pkt)

    def write(
        self, kind: MediaKind, data: bytes, pts: int, keyframe: bool, duration: int
    ) -> list[SegmentReady]:
        self._mux(self.container, kind, data, pts, keyframe, duration)
        return []

    def close(self, end: float) -> list[SegmentReady]:
        if self.container is not None:
            self.container.close()
            self.container = None
        return []


class _Mp4File(_ContainerFile):
    ext = ".mp4"
    content_type = "video/mp4"
    format_name = "mp4"
    options = MP4_LIVE_OPTIONS

    def __init__(self, prefix: Path, video: VideoParams | None, audio: AudioParams | None) -> None:
        super().__init__(prefix, video, audio)
        if video is None:
            self.content_type = "audio/mp4"

    def close(self, end: float) -> list[SegmentReady]:
        was_open = self.container is not None
        super().close(end)
        if was_open and self.path.exists():
            try:
                finalize_mp4(self.path)
            except Exception:  # the fragmented file stays playable; report, don't lose it
                log.exception("finalizing %s failed; keeping the fragmented file", self.path)
        return []


class _M4aFile(_Mp4File):
    ext = ".m4a"
    content_type = "audio/mp4"


class _Mp3File(_ContainerFile):
    ext = ".mp3"
    content_type = "audio/mpeg"
    format_name = "mp3"
    options: Mapping[str, str] = MappingProxyType({"flush_packets": "1"})


class _WebmFile(_ContainerFile):
    ext = ".webm"
    content_type = "video/webm"
    format_name = "webm"
    options: Mapping[str, str] = MappingProxyType({"flush_packets": "1"})

    def __init__(self, prefix: Path, video: VideoParams | None, audio: AudioParams | None) -> None:
        super().__init__(prefix, video, audio)
        if video is None:
            self.content_type = "audio/webm"


class _HlsFile(_ContainerFile):
    """MPEG-TS segments ``<prefix>_NNNNN.ts`` and the playlist ``<prefix>.m3u8``."""

    ext = ".m3u8"
    content_type = PLAYLIST_CONTENT_TYPE
    format_name = "mpegts"

    def __init__(
        self,
        prefix: Path,
        video: VideoParams | None,
        audio: AudioParams | None,
        segment_duration: float,
        root: Path,
    ) -> None:
        super().__init__(prefix, video, audio)
        self.segment_duration = segment_duration
        self.root = root
        self.first_keyframe: bytes | None = None
        self.seq = -1
        self.seg_start = 0.0
        self.last_time = 0.0
        self.segments: list[tuple[str, float]] = []
        self.seg_path: Path | None = None

    def _segment_path(self, seq: int) -> Path:
        return self.prefix.with_name(f"{self.prefix.name}_{seq:05d}.ts")

    def open(self, first_keyframe: bytes | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.first_keyframe = first_keyframe
        self._write_playlist(final=False)

    def _new_segment(self, start: float) -> None:
        self.seq += 1
        self.seg_start = start
        self.seg_path = self._segment_path(self.seq)
        self.container = self._open_container(self.seg_path, self.first_keyframe, {})

    def _close_segment(self, end: float) -> list[SegmentReady]:
        if self.container is None or self.seg_path is None:
            return []
        self.container.close()
        self.container = None
        duration = max(0.0, end - self.seg_start)
        self.segments.append((self.seg_path.name, duration))
        self._write_playlist(final=False)
        return [
            SegmentReady(
                path=self.seg_path,
                key=self.seg_path.relative_to(self.root).as_posix(),
                content_type="video/mp2t",
                seq=self.seq,
                duration=duration,
                playlist_path=self.path,
                playlist_key=self.path.relative_to(self.root).as_posix(),
            )
        ]

    def _write_playlist(self, final: bool) -> None:
        target = max([self.segment_duration, *(d for _, d in self.segments)])
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{math.ceil(target)}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:EVENT" if not final else "#EXT-X-PLAYLIST-TYPE:VOD",
        ]
        for name, dur in self.segments:
            lines.append(f"#EXTINF:{dur:.3f},")
            lines.append(name)
        if final:
            lines.append("#EXT-X-ENDLIST")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def write(
        self, kind: MediaKind, data: bytes, pts: int, keyframe: bool, duration: int
    ) -> list[SegmentReady]:
        tb = VIDEO_TIME_BASE if kind == "video" else self.audio.time_base  # type: ignore[union-attr]
        t = float(pts * tb)
        events: list[SegmentReady] = []
        cut_on = (kind == "video" and keyframe) if self.video is not None else True
        if self.container is None:
            self._new_segment(t)
        elif cut_on and t - self.seg_start >= self.segment_duration - 1e-3:
            events += self._close_segment(t)
            self._new_segment(t)
        self._mux(self.container, kind, data, pts, keyframe, duration)
        self.last_time = max(self.last_time, t + float(duration * tb))
        return events

    def wants_keyframe(self) -> bool:
        return (
            self.video is not None
            and self.container is not None
            and self.last_time - self.seg_start >= self.segment_duration - SPLIT_KEYFRAME_LEAD
        )

    def close(self, end: float) -> list[SegmentReady]:
        events = self._close_segment(max(end, self.last_time))
        self._write_playlist(final=True)
        return events

    def size(self) -> int:
        total = super().size()
        for name, _ in self.segments:
            p = self.path.with_name(name)
            total += p.stat().st_size if p.exists() else 0
        return total

    def segment_keys(self) -> tuple[str, ...]:
        return tuple(self.path.with_name(n).relative_to(self.root).as_posix() for n, _ in self.segments)


# ------------------------------------------------------------------------------------ output set


@dataclass
class _Current:
    file: _File
    index: int
    origin: float  # seconds on the caller's timeline
    started: FileStarted
    last_pts: dict[str, int] = field(default_factory=dict)
    end: float = 0.0
    dropped: int = 0


class OutputSet:
    """The files of one user/stream (or one mix) in one format, split by duration."""

    def __init__(
        self,
        fmt: OutputFormat,
        ctx: OutputContext,
        *,
        video: VideoParams | None,
        audio: AudioParams | None,
        first_index: int = 0,
    ) -> None:
        if video is None and audio is None:
            raise ValueError("an output needs audio or video")
        self.format = fmt
        self.ctx = ctx.for_format(fmt)
        self.video = video
        self.audio = audio
        self.next_index = first_index
        self.current: _Current | None = None
        self.completed: list[FileInfo] = []
        self.closed = False

    @property
    def media(self) -> str:
        if self.video is not None and self.audio is not None:
            return "av"
        return "video" if self.video is not None else "audio"

    @property
    def wants_keyframe(self) -> bool:
        """True when a split is due soon: the caller should ask for / force a keyframe."""
        cur = self.current
        limit = self.ctx.max_file_duration
        if cur is None or self.video is None:
            return False
        if cur.file.wants_keyframe():
            return True
        return bool(limit) and cur.end - cur.origin >= limit - SPLIT_KEYFRAME_LEAD

    def _uniquifier(self, index: int) -> str:
        """Suffixes for variables the template leaves out but names need to stay distinct."""
        template = self.ctx.naming.template
        extra: list[str] = []
        for var in ("user_id", "stream"):
            if "{" + var + "}" not in template and self.ctx.variables.get(var):
                extra.append(self.ctx.variables[var])
        if "{media}" not in template and self.media != "av":
            extra.append(self.media)
        if "{index}" not in template and index > 0:
            extra.append(str(index))
        return "".join("_" + sanitize_name_part(e) for e in extra)

    def _make_file(self, index: int, origin: float) -> tuple[_File, FileStarted]:
        wall = self.ctx.wall_origin + origin
        prefix_rel = self.ctx.naming.render(
            **self.ctx.variables,
            media=self.media,
            start_time=_start_time_text(wall),
            start_ms=int(wall * 1000),
            index=index,
            format=self.format.value,
        )
        prefix = self.ctx.root / (prefix_rel + self._uniquifier(index))
        fmt = self.format
        file: _File
        if fmt is OutputFormat.MP4:
            file = _Mp4File(prefix, self.video, self.audio)
        elif fmt is OutputFormat.M4A:
            file = _M4aFile(prefix, None, self.audio)
        elif fmt is OutputFormat.MP3:
            file = _Mp3File(prefix, None, self.audio)
        elif fmt is OutputFormat.WEBM:
            file = _WebmFile(prefix, self.video, self.audio)
        else:
            file = _HlsFile(prefix, self.video, self.audio, self.ctx.hls_segment_duration, self.ctx.root)
        started = FileStarted(
            path=file.path,
            key=file.path.relative_to(self.ctx.root).as_posix(),
            format=fmt,
            user_id=self.ctx.variables.get("user_id", ""),
            stream=self.ctx.variables.get("stream", ""),
            media=self.media,
            index=index,
            start_offset=origin,
            start_wallclock=wall,
        )
        return file, started

    def write(self, pkt: EncodedPacket) -> list[OutputEvent]:
        if self.closed:
            return []
        if (pkt.kind == "video" and self.video is None) or (pkt.kind == "audio" and self.audio is None):
            return []
        tb = VIDEO_TIME_BASE if pkt.kind == "video" else self.audio.time_base  # type: ignore[union-attr]
        t = float(pkt.pts * tb)
        events: list[OutputEvent] = []
        cur = self.current
        opener = pkt.kind == "video" and pkt.keyframe if self.video is not None else True
        split_due = cur is not None and t - cur.origin >= self.ctx.max_file_duration - 1e-3
        if opener and self.ctx.max_file_duration and split_due:
            events += self._close_current(t)
            cur = None
        if cur is None:
            if not opener:
                return events  # wait for a keyframe
            file, started = self._make_file(self.next_index, t)
            file.open(pkt.data if pkt.kind == "video" else None)
            cur = self.current = _Current(file=file, index=self.next_index, origin=t, started=started)
            self.next_index += 1
            events.append(started)
        rel = pkt.pts - round(cur.origin / float(tb))
        last = cur.last_pts.get(pkt.kind)
        if rel < 0 or (last is not None and rel <= last):
            cur.dropped += 1
            return events
        cur.last_pts[pkt.kind] = rel
        events += cur.file.write(pkt.kind, pkt.data, rel, pkt.keyframe, pkt.duration)
        duration = pkt.duration
        if not duration and pkt.kind == "video" and self.video is not None:
            duration = round(90000 / max(1, self.video.fps))  # nominal, for the reported end only
        cur.end = max(cur.end, t + float(duration * tb))
        return events

    def _close_current(self, end: float) -> list[OutputEvent]:
        cur = self.current
        if cur is None:
            return []
        self.current = None
        end = max(end, cur.end)
        events: list[OutputEvent] = list(cur.file.close(end - cur.origin))
        info = FileInfo(
            path=cur.file.path,
            key=cur.started.key,
            format=self.format,
            content_type=cur.file.content_type,
            user_id=cur.started.user_id,
            stream=cur.started.stream,
            media=cur.started.media,
            index=cur.index,
            start_offset=cur.origin,
            start_wallclock=cur.started.start_wallclock,
            end_wallclock=self.ctx.wall_origin + end,
            duration=max(0.0, end - cur.origin),
            size=cur.file.size(),
            width=cur.file.width,
            height=cur.file.height,
            has_audio=self.audio is not None,
            has_video=self.video is not None,
            segments=cur.file.segment_keys(),
            dropped_packets=cur.dropped,
        )
        self.completed.append(info)
        events.append(info)
        return events

    def close(self, end: float | None = None) -> list[OutputEvent]:
        """Finalize the current file; ``end`` (timeline seconds) extends its reported end."""
        if self.closed:
            return []
        self.closed = True
        cur = self.current
        return self._close_current(end if end is not None else (cur.end if cur else 0.0))

    def abort(self) -> None:
        """Close without finalizing (the file stays as written, e.g. fragmented)."""
        self.closed = True
        if self.current is not None:
            f = self.current.file
            if isinstance(f, _ContainerFile) and f.container is not None:
                with contextlib.suppress(Exception):
                    f.container.close()
            self.current = None


def open_output(
    fmt: OutputFormat,
    ctx: OutputContext,
    *,
    video: VideoParams | None = None,
    audio: AudioParams | None = None,
    first_index: int = 0,
) -> OutputSet:
    """An :class:`OutputSet` for ``fmt`` (M4A/MP3 ignore ``video``)."""
    if fmt in (OutputFormat.M4A, OutputFormat.MP3):
        video = None
    return OutputSet(fmt, ctx, video=video, audio=audio, first_index=first_index)
