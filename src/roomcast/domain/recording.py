"""The normalized recording request: what to record, how, and where the files go.

Plain frozen dataclasses, no I/O.  Every dialect adapter (``api/<dialect>``) builds one
:class:`RecordingSpec` from its vendor's request; the media engine (``roomcast.media``) only
ever sees this spec.  Nothing here knows a vendor field name.

File names
----------
``FileNaming.template`` is a :meth:`str.format` template for the file-name *prefix* (no
extension; the engine appends ``.mp4``, ``.m3u8``/``_00001.ts``, ``.m4a``, ``.mp3``, ``.webm``).
It may contain ``/`` to make sub-directories.  Variables the engine substitutes:

==============  ==========================================================================
``{task_id}``   the recording task's id
``{app}``       the application key
``{room_id}``   the room id
``{user_id}``   the recorded user (``mix`` in mixed mode)
``{stream}``    ``camera``, ``screen`` or ``mix``
``{media}``     ``av`` (audio+video in one file), ``audio`` or ``video``
``{start_time}`` UTC start of the file, ``YYYYmmddTHHMMSSZ``
``{start_ms}``  UTC start of the file, milliseconds since the epoch
``{index}``     the file's number within its user/stream, from 0 (a split or a codec change
                 starts the next one)
``{format}``    the output format: ``mp4``, ``hls``, ``m4a``, ``mp3`` or ``webm``
==============  ==========================================================================

``FileNaming.formats`` may give one output format a template of its own (a vendor whose MP4 and
HLS outputs each have their own path prefix); the others use ``template``.

Characters outside ``[A-Za-z0-9._=-]`` in substituted values are replaced with ``_`` so a user
id can never escape the output directory.
"""

from __future__ import annotations

import enum
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from .errors import InvalidArgument
from .jsondata import decode, encode, json_value
from .layout import Canvas
from .layout_templates import LayoutFunction, build_layout

__all__ = [
    "NAMING_VARIABLES",
    "SPEC_VERSION",
    "AudioEncoding",
    "AudioFill",
    "FileNaming",
    "FillPolicy",
    "LayoutFunction",
    "LayoutRef",
    "MediaSelection",
    "OutputFormat",
    "RecordingLimits",
    "RecordingMode",
    "RecordingSpec",
    "StreamSelection",
    "UserFilter",
    "UserSelection",
    "VideoEncoding",
    "VideoFill",
    "sanitize_name_part",
    "spec_from_json",
    "spec_to_json",
    "validate_spec",
]


class RecordingMode(enum.StrEnum):
    INDIVIDUAL = "individual"  # one set of files per user and stream
    MIXED = "mixed"  # one composited picture and one audio mix for the room


class MediaSelection(enum.StrEnum):
    AUDIO_VIDEO = "audio_video"
    AUDIO_ONLY = "audio_only"
    VIDEO_ONLY = "video_only"

    @property
    def audio(self) -> bool:
        return self is not MediaSelection.VIDEO_ONLY

    @property
    def video(self) -> bool:
        return self is not MediaSelection.AUDIO_ONLY


class OutputFormat(enum.StrEnum):
    MP4 = "mp4"  # H.264 + AAC; fragmented while recording, finalized (faststart) at the end
    HLS = "hls"  # H.264 + AAC in MPEG-TS segments plus an .m3u8 playlist
    M4A = "m4a"  # AAC only
    MP3 = "mp3"  # MP3 only
    WEBM = "webm"  # VP8 as received + Opus as received (no video transcode)

    @property
    def has_video(self) -> bool:
        return self in (OutputFormat.MP4, OutputFormat.HLS, OutputFormat.WEBM)

    @property
    def has_audio(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Which users: ``allow`` None = everyone; ``deny`` always wins over ``allow``.

    ``allow_prefixes``/``deny_prefixes`` match user ids by prefix (a vendor lets lists hold
    ``"abc.*$"`` for "every id starting with abc"); a non-empty ``allow_prefixes`` makes the filter
    an allowlist even when ``allow`` is None.
    """

    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    allow_prefixes: frozenset[str] = frozenset()
    deny_prefixes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, allow: Iterable[str] | None = None, deny: Iterable[str] = ()) -> UserFilter:
        return cls(None if allow is None else frozenset(allow), frozenset(deny))

    def admits(self, user_id: str) -> bool:
        if user_id in self.deny or any(user_id.startswith(p) for p in self.deny_prefixes):
            return False
        if self.allow is None and not self.allow_prefixes:
            return True
        return (self.allow is not None and user_id in self.allow) or any(
            user_id.startswith(p) for p in self.allow_prefixes
        )


@dataclass(frozen=True, slots=True)
class UserSelection:
    """Separate user lists for audio and video (one vendor has two lists)."""

    audio: UserFilter = UserFilter()
    video: UserFilter = UserFilter()

    @classmethod
    def same(cls, allow: Iterable[str] | None = None, deny: Iterable[str] = ()) -> UserSelection:
        f = UserFilter.of(allow, deny)
        return cls(audio=f, video=f)

    def admits(self, user_id: str) -> bool:
        """Whether any of the user's media is recorded."""
        return self.audio.admits(user_id) or self.video.admits(user_id)


@dataclass(frozen=True, slots=True)
class StreamSelection:
    """Which published streams: the microphone, the camera, the screen share."""

    audio: bool = True
    camera: bool = True
    screen: bool = True


@dataclass(frozen=True, slots=True)
class VideoEncoding:
    """Used whenever the engine encodes video (mixed mode, VP8 -> H.264, fillers).

    ``width``/``height`` 0 = keep the source size (individual mode).  ``gop`` is in seconds.
    ``preset`` is a libx264 preset (speed/quality trade-off; see bench/recording.py).
    ``max_height`` (individual mode, 0 = none): a picture taller than this is scaled down to it,
    keeping its shape (H.264 is then re-encoded; a picture within it is kept as received).
    """

    width: int = 0
    height: int = 0
    fps: int = 15
    bitrate_kbps: int = 1000
    gop: float = 2.0
    preset: str = "veryfast"
    max_height: int = 0


@dataclass(frozen=True, slots=True)
class AudioEncoding:
    sample_rate: int = 48000
    channels: int = 2
    bitrate_kbps: int = 128


class VideoFill(enum.StrEnum):
    """What a video stream shows while its publisher is muted or away."""

    LAST_FRAME = "last_frame"
    BLACK = "black"
    IMAGE = "image"


class AudioFill(enum.StrEnum):
    SILENCE = "silence"


@dataclass(frozen=True, slots=True)
class FillPolicy:
    video: VideoFill = VideoFill.LAST_FRAME
    image: str | None = None  # path or URL of the picture for VideoFill.IMAGE
    audio: AudioFill = AudioFill.SILENCE


@dataclass(frozen=True, slots=True)
class LayoutRef:
    """Which layout the mixer draws, as data: a template name and its JSON parameters.

    ``preset`` names a template of :mod:`roomcast.domain.layout_templates` (the generic
    ``grid``, ``floating``, ``screen_share``, ``strip``, ``custom``, or a dialect's such as
    ``trtc.recording``); ``params`` are that template's parameters.  ``params`` must be a JSON
    object: it is checked and copied on construction (tuples become lists), so a spec can
    always be stored (:func:`spec_to_json`) and resolved again in another process.
    """

    preset: str = "grid"
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        params = json_value(self.params, "layout.params")
        if not isinstance(params, dict):
            raise InvalidArgument("layout parameters must be a JSON object", subject="layout.params")
        object.__setattr__(self, "params", MappingProxyType(params))


NAMING_VARIABLES: Final = frozenset(
    {"task_id", "app", "room_id", "user_id", "stream", "media", "start_time", "start_ms", "index", "format"}
)
_SAFE = re.compile(r"[^A-Za-z0-9._=-]")


def sanitize_name_part(value: str) -> str:
    """A value made safe for one path component (no separators, no ``..``)."""
    out = _SAFE.sub("_", value)
    return "_" if out in ("", ".", "..") else out


@dataclass(frozen=True, slots=True)
class FileNaming:
    template: str = "{task_id}/{room_id}_{user_id}_{stream}_{start_time}_{index}"
    formats: Mapping[str, str] = field(default_factory=dict)
    """Templates of their own for some output formats (keys: :class:`OutputFormat` values)."""

    def for_format(self, fmt: OutputFormat) -> FileNaming:
        """The naming one output format uses (its own template, or the common one)."""
        return FileNaming(self.formats.get(fmt.value, self.template))

    def render(self, **values: object) -> str:
        """Substitute the variables (sanitized) and return a relative path prefix."""
        safe = {k: sanitize_name_part(str(v)) for k, v in values.items()}
        rendered = self.template.format(**safe)
        parts = [sanitize_name_part(p) for p in rendered.split("/") if p]
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class RecordingLimits:
    """Times in seconds.  ``max_file_duration`` 0 = never split."""

    start_timeout: float = 30.0  # wait this long for a stream to record, then end (reason no_stream)
    idle_timeout: float = 30.0  # no publisher for this long -> end (reason idle)
    max_file_duration: float = 0.0
    file_durations: Mapping[str, float] = field(default_factory=dict)
    """``max_file_duration`` of some output formats (keys: :class:`OutputFormat` values; 0 =
    never split), where a vendor cuts each format at its own length."""
    hls_segment_duration: float = 6.0
    max_duration: float = 0.0  # whole recording; 0 = unlimited


@dataclass(frozen=True, slots=True)
class RecordingSpec:
    mode: RecordingMode = RecordingMode.INDIVIDUAL
    users: UserSelection = UserSelection()
    streams: StreamSelection = StreamSelection()
    media: MediaSelection = MediaSelection.AUDIO_VIDEO
    separate_files: bool = False  # audio and video each in their own file
    outputs: tuple[OutputFormat, ...] = (OutputFormat.MP4,)
    video: VideoEncoding = VideoEncoding()
    audio: AudioEncoding = AudioEncoding()
    layout: LayoutRef | None = None  # mixed mode only
    naming: FileNaming = FileNaming()
    limits: RecordingLimits = RecordingLimits()
    fill: FillPolicy = FillPolicy()
    max_audio_sources: int = 0
    """Mixed mode: mix only the N loudest speakers at any moment (0: everyone)."""
    extra_rooms: tuple[str, ...] = ()
    """Mixed mode: other rooms of the same app whose publishers the mix may include (the
    ``users`` filters apply to them too; layouts see them with ``Participant.room_id`` set)."""

    @property
    def records_audio(self) -> bool:
        return self.media.audio and self.streams.audio

    @property
    def records_video(self) -> bool:
        return self.media.video and (self.streams.camera or self.streams.screen)


# ------------------------------------------------------------------------------------- stored form

SPEC_VERSION: Final = 1
"""Version of the :func:`spec_to_json` document format."""


def spec_to_json(spec: RecordingSpec) -> dict[str, Any]:
    """The spec as a versioned document that :func:`json.dumps` accepts.

    Fields by name (see :mod:`roomcast.domain.jsondata`: frozensets as sorted lists, enums as
    their values, the layout as its template name and JSON parameters) plus ``"v"``:
    :data:`SPEC_VERSION`.  A field missing from a document takes its default, so adding a field
    with a default needs no new version; renaming or re-typing one does (bump the version and
    convert older documents in :func:`spec_from_json`).
    """
    body: dict[str, Any] = encode(RecordingSpec, spec, "spec")
    return {"v": SPEC_VERSION, **body}


def spec_from_json(data: Mapping[str, Any]) -> RecordingSpec:
    """The spec of a :func:`spec_to_json` document; not validated (see :func:`validate_spec`).

    Raises :class:`InvalidArgument` naming the field (``spec.v`` for another version,
    ``spec.users.audio.allow.0`` ...) for anything malformed."""
    if not isinstance(data, Mapping):
        raise _fail("spec", "a stored spec must be a JSON object")
    version = data.get("v")
    if type(version) is not int or version != SPEC_VERSION:
        raise _fail("spec.v", f"unsupported spec version {version!r}; this roomcast reads {SPEC_VERSION}")
    spec: RecordingSpec = decode(RecordingSpec, {k: v for k, v in data.items() if k != "v"}, "spec")
    return spec


# ------------------------------------------------------------------------------------- validation

_X264_PRESETS: Final = frozenset(
    {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
)
_AAC_RATES: Final = frozenset({8000, 16000, 22050, 24000, 32000, 44100, 48000})


def _fail(subject: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, subject=subject)


def _check_range(subject: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise _fail(subject, f"{subject} must be in [{lo}, {hi}], got {value}")


def validate_spec(spec: RecordingSpec) -> RecordingSpec:
    """Check a spec; raise :class:`InvalidArgument` whose ``subject`` is the dotted field name."""
    if not spec.outputs:
        raise _fail("outputs", "at least one output format is needed")
    if len(set(spec.outputs)) != len(spec.outputs):
        raise _fail("outputs", "output formats repeat")
    if not (spec.records_audio or spec.records_video):
        raise _fail("media", "nothing to record: no audio and no video stream selected")
    audio_only_formats = {OutputFormat.M4A, OutputFormat.MP3}
    if not spec.records_audio and all(o in audio_only_formats for o in spec.outputs):
        raise _fail("outputs", "audio formats need audio")
    if spec.mode is RecordingMode.MIXED and OutputFormat.WEBM in spec.outputs:
        raise _fail("outputs", "WebM (VP8 kept as received) is for individual recordings only")
    v = spec.video
    if v.width or v.height:
        _check_range("video.width", v.width, 16, 3840)
        _check_range("video.height", v.height, 16, 2160)
        if v.width % 2 or v.height % 2:
            raise _fail("video.width" if v.width % 2 else "video.height", "video size must be even")
    elif spec.mode is RecordingMode.MIXED:
        raise _fail("video.width", "mixed recordings need a canvas size")
    _check_range("video.fps", v.fps, 1, 60)
    _check_range("video.bitrate_kbps", v.bitrate_kbps, 32, 50000)
    _check_range("video.gop", v.gop, 0.2, 60)
    if v.max_height:
        _check_range("video.max_height", v.max_height, 16, 2160)
        if spec.mode is RecordingMode.MIXED:
            raise _fail("video.max_height", "a mixed recording has the canvas size")
    if v.preset not in _X264_PRESETS:
        raise _fail("video.preset", f"unknown encoder preset {v.preset!r}")
    a = spec.audio
    if a.sample_rate not in _AAC_RATES:
        raise _fail("audio.sample_rate", f"unsupported sample rate {a.sample_rate}")
    if a.channels not in (1, 2):
        raise _fail("audio.channels", "channels must be 1 or 2")
    _check_range("audio.bitrate_kbps", a.bitrate_kbps, 16, 512)
    lim = spec.limits
    _check_range("limits.start_timeout", lim.start_timeout, 0.1, 86400)
    _check_range("limits.idle_timeout", lim.idle_timeout, 0.1, 86400 * 7)
    if lim.max_file_duration:
        _check_range("limits.max_file_duration", lim.max_file_duration, 1, 86400)
    for fmt, duration in lim.file_durations.items():
        _check_format_key("limits.file_durations", fmt)
        if duration:
            _check_range(f"limits.file_durations.{fmt}", duration, 1, 86400)
    if lim.max_duration:
        _check_range("limits.max_duration", lim.max_duration, 1, 86400 * 7)
    _check_range("limits.hls_segment_duration", lim.hls_segment_duration, 1, 60)
    if spec.fill.video is VideoFill.IMAGE and not spec.fill.image:
        raise _fail("fill.image", "the image fill needs an image")
    _validate_template(spec.naming.template)
    for fmt, template in spec.naming.formats.items():
        _check_format_key("naming.formats", fmt)
        _validate_template(template, f"naming.formats.{fmt}")
    _validate_layout(spec)
    _check_range("max_audio_sources", spec.max_audio_sources, 0, 64)
    if spec.max_audio_sources and spec.mode is not RecordingMode.MIXED:
        raise _fail("max_audio_sources", "only mixed recordings mix the loudest speakers")
    if spec.extra_rooms and spec.mode is not RecordingMode.MIXED:
        raise _fail("extra_rooms", "only mixed recordings take users from other rooms")
    if any(not r for r in spec.extra_rooms) or len(set(spec.extra_rooms)) != len(spec.extra_rooms):
        raise _fail("extra_rooms", "room ids must be non-empty and distinct")
    for name, flt in (("users.audio", spec.users.audio), ("users.video", spec.users.video)):
        for uid in (flt.allow or frozenset()) | flt.deny:
            if not uid:
                raise _fail(name, "empty user id in a user list")
    return spec


def _validate_layout(spec: RecordingSpec) -> None:
    """The layout's template is registered, its parameters build, and it lays out a canvas."""
    if spec.layout is None:
        return
    fn = build_layout(spec.layout)
    if spec.video.width and spec.video.height:
        try:
            fn([], Canvas(spec.video.width, spec.video.height))
        except (ValueError, TypeError, LookupError) as exc:
            raise _fail("layout", f"layout {spec.layout.preset!r} fails: {exc}") from None


def _check_format_key(subject: str, fmt: str) -> None:
    if fmt not in {f.value for f in OutputFormat}:
        raise _fail(subject, f"unknown output format {fmt!r}")


def _validate_template(template: str, subject: str = "naming.template") -> None:
    if not template.strip():
        raise _fail(subject, "the file name template is empty")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise _fail(subject, f"bad file name template: {exc}") from None
    for f in fields:
        if f not in NAMING_VARIABLES:
            raise _fail(subject, f"unknown variable {{{f}}} in the file name template")
    if template.startswith("/") or ".." in template.split("/"):
        raise _fail(subject, "the file name template must be a relative path")
    # Variables that keep names distinct (user_id, stream, media, index) may be left out: the
    # engine then appends them as suffixes (see roomcast.media.outputs.OutputSet).
