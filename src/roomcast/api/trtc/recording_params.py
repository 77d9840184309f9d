"""TRTC cloud recording: request models, their validation, and the mapping to the engine's spec.

Choices where the docs are silent or contradict themselves (see spec/trtc-b §6.3):

- ``StorageParams`` with both ``CloudStorage`` and ``CloudVod``: ``CloudStorage`` wins.
- File names (the seed defines none): object storage keys are ``[FileNamePrefix/...]<TaskId>/``
  then ``<SdkAppId>_<RoomId>__UserId_s_<UserId>__UserId_e_<stream>_<media>_<start ms>_<n>``
  for single-stream files and ``[...]<TaskId>/<SdkAppId>_<RoomId>_mix_<start ms>_<n>`` for mixed
  ones; the media library (``CloudVod``) uses ``[<UserDefineRecordId>__UserId_u_]...`` likewise.
- ``BeginTimeStamp`` is in milliseconds.
- ``AvMerge=0`` (single-stream) records audio and video into separate files, ``1`` into one.
- Prefix rules ``"abc.*$"`` in subscription lists match user ids starting with ``abc``; a user
  whose id is literally ``"abc.*$"`` matches it exactly (the docs' caveat).
- ``WaterMarkType`` 2 is a timestamp watermark (the enum lists only 0 and 1). Text watermarks,
  "not supported yet" upstream, are rendered.
- Image URLs (``WaterMarkUrl``, ``BackgroundImageUrl``, ``DefaultSubBackgroundImage``,
  ``SubBackgroundImage``) must be http(s) URLs of public addresses (the node's URL policy);
  otherwise ``InvalidParameter.OutOfRange`` names the field (the code the action documents for a
  bad parameter value; there is no URL-specific one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, field_validator, model_validator

from roomcast.api.trtc import layouts as tl
from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.params import Params
from roomcast.domain.errors import InvalidArgument
from roomcast.domain.layout import Canvas, Layout, Participant
from roomcast.domain.layout_templates import LayoutFunction, register_template
from roomcast.domain.recording import (
    AudioEncoding,
    FileNaming,
    LayoutRef,
    MediaSelection,
    OutputFormat,
    RecordingLimits,
    RecordingMode,
    RecordingSpec,
    StreamSelection,
    UserFilter,
    UserSelection,
    VideoEncoding,
)
from roomcast.net.urls import UrlPolicy

MAX_LIST = 32
PREFIX_SUFFIX = ".*$"
_PREFIX_PART = re.compile(r"^[A-Za-z0-9_-]+$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
INT_ROOM_MAX = 4_294_967_294

# OutputFormat (object storage) and TencentVod.MediaType order their values differently.
STORAGE_FORMATS: dict[int, tuple[OutputFormat, ...]] = {
    0: (OutputFormat.HLS,),
    1: (OutputFormat.HLS, OutputFormat.MP4),
    2: (OutputFormat.HLS, OutputFormat.M4A),
    3: (OutputFormat.MP4,),
    4: (OutputFormat.M4A,),
}
VOD_FORMATS: dict[int, tuple[OutputFormat, ...]] = {
    0: (OutputFormat.MP4,),
    1: (OutputFormat.HLS,),
    2: (OutputFormat.M4A,),
    3: (OutputFormat.HLS, OutputFormat.MP4),
    4: (OutputFormat.HLS, OutputFormat.M4A),
}
SAMPLE_RATES = {1: 48000, 2: 44100, 3: 16000}
STORAGE_VENDORS = {0: "tencent", 1: "aws"}


def out_of_range(message: str) -> TrtcError:
    return TrtcError("InvalidParameter.OutOfRange", message)


def _in(name: str, value: int, allowed: Sequence[int] | range) -> int:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}")
    return value


class SubscribeStreamUserIdsModel(Params):
    SubscribeAudioUserIds: list[str] | None = None
    UnSubscribeAudioUserIds: list[str] | None = None
    SubscribeVideoUserIds: list[str] | None = None
    UnSubscribeVideoUserIds: list[str] | None = None

    @field_validator("*")
    @classmethod
    def _bounded(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if len(v) > MAX_LIST:
                raise ValueError(f"at most {MAX_LIST} user ids")
            if any(not u or len(u) > 128 for u in v):
                raise ValueError("user ids must be 1 to 128 characters")
        return v

    @model_validator(mode="after")
    def _not_both(self) -> SubscribeStreamUserIdsModel:
        if self.SubscribeAudioUserIds and self.UnSubscribeAudioUserIds:
            raise ValueError("an audio allowlist and blocklist cannot be given together")
        if self.SubscribeVideoUserIds and self.UnSubscribeVideoUserIds:
            raise ValueError("a video allowlist and blocklist cannot be given together")
        return self


class RecordParamsModel(Params):
    RecordMode: int
    MaxIdleTime: int = Field(default=30, ge=5, le=86400)
    StreamType: int = 0
    SubscribeStreamUserIds: SubscribeStreamUserIdsModel | None = None
    OutputFormat: int | None = None
    AvMerge: int = 0
    MaxMediaFileDuration: int = Field(default=1440, ge=1, le=1440)
    MediaId: int = 0
    FillType: int = 0
    SubscribeAbility: int = 0

    _mode = field_validator("RecordMode")(classmethod(lambda cls, v: _in("RecordMode", v, (1, 2))))
    _stream = field_validator("StreamType")(classmethod(lambda cls, v: _in("StreamType", v, (0, 1, 2))))
    _merge = field_validator("AvMerge")(classmethod(lambda cls, v: _in("AvMerge", v, (0, 1))))
    _media = field_validator("MediaId")(classmethod(lambda cls, v: _in("MediaId", v, (0, 1, 2))))
    _ability = field_validator("SubscribeAbility")(
        classmethod(lambda cls, v: _in("SubscribeAbility", v, (0, 1)))
    )
    _fill = field_validator("FillType")(classmethod(lambda cls, v: _in("FillType", v, (0, 1))))

    @field_validator("OutputFormat")
    @classmethod
    def _fmt(cls, v: int | None) -> int | None:
        return None if v is None else _in("OutputFormat", v, tuple(STORAGE_FORMATS))


class CloudStorageModel(Params):
    Vendor: int
    Region: str = Field(min_length=1, max_length=64)
    Bucket: str = Field(min_length=1, max_length=128)
    AccessKey: str = Field(min_length=1, max_length=256)
    SecretKey: str = Field(min_length=1, max_length=256)
    FileNamePrefix: list[str] | None = None

    _vendor = field_validator("Vendor")(classmethod(lambda cls, v: _in("Vendor", v, tuple(STORAGE_VENDORS))))

    @field_validator("FileNamePrefix")
    @classmethod
    def _prefix(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for part in v:
                if not _PREFIX_PART.match(part):
                    raise ValueError("prefix parts may hold only a-z, A-Z, 0-9, _ and -")
            if len("/".join(v)) > 256:
                raise ValueError("the prefix is too long")
        return v


class TencentVodModel(Params):
    Procedure: str | None = None
    ExpireTime: int = Field(default=0, ge=0)
    StorageRegion: str | None = None
    ClassId: int = Field(default=0, ge=0)
    SubAppId: int | None = None
    SessionContext: str | None = Field(default=None, max_length=1000)
    SourceContext: str | None = Field(default=None, max_length=250)
    MediaType: int = 0
    UserDefineRecordId: str | None = None

    _media = field_validator("MediaType")(classmethod(lambda cls, v: _in("MediaType", v, tuple(VOD_FORMATS))))

    @field_validator("UserDefineRecordId")
    @classmethod
    def _record_id(cls, v: str | None) -> str | None:
        if v is not None and not _RECORD_ID.match(v):
            raise ValueError("letters, digits, _ and - only, at most 64")
        return v


class CloudVodModel(Params):
    TencentVod: TencentVodModel | None = None


class StorageParamsModel(Params):
    CloudStorage: CloudStorageModel | None = None
    CloudVod: CloudVodModel | None = None


class VideoParamsModel(Params):
    Width: int = Field(ge=16, le=1920)
    Height: int = Field(ge=16, le=1920)
    Fps: int = Field(ge=1, le=60)
    BitRate: int = Field(ge=64000, le=8192000)
    Gop: int = Field(ge=1, le=60)

    @model_validator(mode="after")
    def _area(self) -> VideoParamsModel:
        if self.Width * self.Height > 1920 * 1080:
            raise ValueError("Width x Height must not exceed 1920 x 1080")
        return self


class AudioParamsModel(Params):
    SampleRate: int
    Channel: int
    BitRate: int = Field(ge=32000, le=128000)

    _rate = field_validator("SampleRate")(
        classmethod(lambda cls, v: _in("SampleRate", v, tuple(SAMPLE_RATES)))
    )
    _chan = field_validator("Channel")(classmethod(lambda cls, v: _in("Channel", v, (1, 2))))


class MixTranscodeParamsModel(Params):
    VideoParams: VideoParamsModel | None = None
    AudioParams: AudioParamsModel | None = None


class MixLayoutModel(Params):
    Top: int = Field(ge=0, le=tl.MIX_LAYOUT_COORD_MAX)
    Left: int = Field(ge=0, le=tl.MIX_LAYOUT_COORD_MAX)
    Width: int = Field(ge=0, le=tl.MIX_LAYOUT_COORD_MAX)
    Height: int = Field(ge=0, le=tl.MIX_LAYOUT_COORD_MAX)
    UserId: str | None = None
    Alpha: int = Field(default=0, ge=0, le=tl.MIX_LAYOUT_ALPHA_MAX)
    RenderMode: int = tl.RECORDING_DEFAULT_RENDER_MODE
    MediaId: int = 0
    ImageLayer: int = Field(default=0, ge=0, le=64)
    SubBackgroundImage: str | None = None

    _render = field_validator("RenderMode")(
        classmethod(lambda cls, v: _in("RenderMode", v, tuple(tl.RECORDING_RENDER_MODES)))
    )
    _media = field_validator("MediaId")(classmethod(lambda cls, v: _in("MediaId", v, (0, 1))))


class WaterMarkImageModel(Params):
    WaterMarkUrl: str = Field(min_length=1, max_length=1024)
    Top: int = Field(ge=0, le=tl.WATERMARK_COORD_MAX)
    Left: int = Field(ge=0, le=tl.WATERMARK_COORD_MAX)
    Width: int = Field(ge=0, le=tl.WATERMARK_COORD_MAX)
    Height: int = Field(ge=0, le=tl.WATERMARK_COORD_MAX)


class WaterMarkCharModel(Params):
    Top: int = Field(ge=0, le=tl.WATERMARK_COORD_MAX)
    Left: int = Field(ge=0, le=tl.WATERMARK_COORD_MAX)
    Width: int = Field(ge=0, le=tl.WATERMARK_COORD_MAX)
    Height: int = Field(ge=0, le=tl.WATERMARK_COORD_MAX)
    Chars: str = Field(min_length=1, max_length=256)
    FontSize: int = Field(default=tl.WATERMARK_CHAR_DEFAULT_FONT_SIZE, ge=1, le=500)
    FontColor: str | None = None
    BackGroundColor: str | None = None
    Font: str | None = None  # the vendor's font names; roomcast renders its own font


class WaterMarkTimestampModel(Params):
    Pos: int
    TimeZone: int = Field(default=tl.DEFAULT_TIME_ZONE, ge=-12, le=14)
    Font: str | None = None

    _pos = field_validator("Pos")(classmethod(lambda cls, v: _in("Pos", v, tuple(tl.TIMESTAMP_POSITIONS))))


class WaterMarkModel(Params):
    WaterMarkType: int = 0
    WaterMarkImage: WaterMarkImageModel | None = None
    WaterMarkChar: WaterMarkCharModel | None = None
    WaterMarkTimestamp: WaterMarkTimestampModel | None = None

    _type = field_validator("WaterMarkType")(
        classmethod(lambda cls, v: _in("WaterMarkType", v, tuple(sorted(tl.WATERMARK_TYPES))))
    )

    @model_validator(mode="after")
    def _body(self) -> WaterMarkModel:
        need = {0: self.WaterMarkImage, 1: self.WaterMarkChar, 2: self.WaterMarkTimestamp}[self.WaterMarkType]
        if need is None:
            raise ValueError("the watermark's type needs its matching description")
        return self


_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


class MixLayoutParamsModel(Params):
    MixLayoutMode: int
    MixLayoutList: list[MixLayoutModel] | None = Field(
        default=None, max_length=tl.RECORDING_MAX_MIX_LAYOUT_LIST
    )
    BackGroundColor: str | None = None
    MaxResolutionUserId: str | None = None
    MediaId: int = 0
    BackgroundImageUrl: str | None = None
    PlaceHolderMode: int = 0
    BackgroundImageRenderMode: int = tl.RECORDING_DEFAULT_RENDER_MODE
    DefaultSubBackgroundImage: str | None = None
    WaterMarkList: list[WaterMarkModel] | None = Field(default=None, max_length=tl.RECORDING_MAX_WATERMARKS)
    RenderMode: int = tl.RECORDING_DEFAULT_RENDER_MODE
    MaxResolutionUserAlign: int = 0
    PureAudioDisableLayout: bool = False

    _mode = field_validator("MixLayoutMode")(
        classmethod(lambda cls, v: _in("MixLayoutMode", v, tuple(sorted(tl.MIX_LAYOUT_MODES))))
    )
    _media = field_validator("MediaId")(classmethod(lambda cls, v: _in("MediaId", v, (0, 1))))
    _ph = field_validator("PlaceHolderMode")(
        classmethod(lambda cls, v: _in("PlaceHolderMode", v, tuple(sorted(tl.PLACE_HOLDER_MODES))))
    )
    _align = field_validator("MaxResolutionUserAlign")(
        classmethod(lambda cls, v: _in("MaxResolutionUserAlign", v, (0, 1)))
    )
    _rm = field_validator("RenderMode", "BackgroundImageRenderMode")(
        classmethod(lambda cls, v: _in("RenderMode", v, tuple(tl.RECORDING_RENDER_MODES)))
    )

    @field_validator("BackGroundColor")
    @classmethod
    def _color(cls, v: str | None) -> str | None:
        if v is not None and v != "" and not _COLOR.match(v):
            raise ValueError("colours are #RRGGBB")
        return v or None

    @model_validator(mode="after")
    def _custom(self) -> MixLayoutParamsModel:
        if self.MixLayoutMode == tl.MIX_LAYOUT_CUSTOM and not self.MixLayoutList:
            raise ValueError("a custom layout (MixLayoutMode 4) needs MixLayoutList")
        return self

    def check_canvas(self, width: int, height: int) -> None:
        for i, pane in enumerate(self.MixLayoutList or ()):
            if pane.Left + pane.Width > width or pane.Top + pane.Height > height:
                raise out_of_range(f"MixLayoutList.{i} does not fit the {width}x{height} canvas")

    def to_layout_params(self) -> tl.TrtcMixLayoutParams:
        marks: list[tl.TrtcWaterMark] = []
        for w in self.WaterMarkList or ():
            if w.WaterMarkType == 0 and w.WaterMarkImage is not None:
                i = w.WaterMarkImage
                marks.append(tl.TrtcWaterMarkImage(i.WaterMarkUrl, i.Top, i.Left, i.Width, i.Height))
            elif w.WaterMarkType == 1 and w.WaterMarkChar is not None:
                c = w.WaterMarkChar
                marks.append(
                    tl.TrtcWaterMarkChar(
                        c.Top, c.Left, c.Width, c.Height, c.Chars, c.FontSize, c.FontColor, c.BackGroundColor
                    )
                )
            elif w.WaterMarkTimestamp is not None:
                marks.append(
                    tl.TrtcWaterMarkTimestamp(w.WaterMarkTimestamp.Pos, w.WaterMarkTimestamp.TimeZone)
                )
        return tl.TrtcMixLayoutParams(
            mix_layout_mode=self.MixLayoutMode,
            mix_layout_list=tuple(
                tl.TrtcMixLayout(
                    top=m.Top,
                    left=m.Left,
                    width=m.Width,
                    height=m.Height,
                    user_id=m.UserId or None,
                    alpha=m.Alpha,
                    render_mode=m.RenderMode,
                    media_id=m.MediaId,
                    image_layer=m.ImageLayer,
                    sub_background_image=m.SubBackgroundImage,
                )
                for m in self.MixLayoutList or ()
            ),
            background_color=self.BackGroundColor,
            max_resolution_user_id=self.MaxResolutionUserId or None,
            media_id=self.MediaId,
            background_image_url=self.BackgroundImageUrl or None,
            place_holder_mode=self.PlaceHolderMode,
            background_image_render_mode=self.BackgroundImageRenderMode,
            default_sub_background_image=self.DefaultSubBackgroundImage or None,
            water_mark_list=tuple(marks),
            render_mode=self.RenderMode,
            max_resolution_user_align=self.MaxResolutionUserAlign,
        )


def image_url_fields(mix: MixLayoutParamsModel | None) -> list[tuple[str, str]]:
    """Every image URL of a ``MixLayoutParams`` as ``(field path, url)``."""
    if mix is None:
        return []
    base = "MixLayoutParams"
    out: list[tuple[str, str]] = []
    if mix.BackgroundImageUrl:
        out.append((f"{base}.BackgroundImageUrl", mix.BackgroundImageUrl))
    if mix.DefaultSubBackgroundImage:
        out.append((f"{base}.DefaultSubBackgroundImage", mix.DefaultSubBackgroundImage))
    for i, pane in enumerate(mix.MixLayoutList or ()):
        if pane.SubBackgroundImage:
            out.append((f"{base}.MixLayoutList.{i}.SubBackgroundImage", pane.SubBackgroundImage))
    for i, mark in enumerate(mix.WaterMarkList or ()):
        if mark.WaterMarkType == 0 and mark.WaterMarkImage is not None:
            out.append(
                (f"{base}.WaterMarkList.{i}.WaterMarkImage.WaterMarkUrl", mark.WaterMarkImage.WaterMarkUrl)
            )
    return out


async def check_image_urls(policy: UrlPolicy, mix: MixLayoutParamsModel | None) -> None:
    """Refuse image URLs the node will not fetch (local files, private addresses): the
    ``InvalidParameter.OutOfRange`` error names the field."""
    try:
        await policy.check_all(image_url_fields(mix))
    except InvalidArgument as exc:
        raise out_of_range(f"{exc.message}.") from None


class CreateCloudRecordingParams(Params):
    SdkAppId: int
    RoomId: str = Field(min_length=1, max_length=128)
    UserId: str = Field(min_length=1, max_length=128)
    UserSig: str = Field(min_length=1)
    RecordParams: RecordParamsModel
    StorageParams: StorageParamsModel
    RoomIdType: int = 1
    MixTranscodeParams: MixTranscodeParamsModel | None = None
    MixLayoutParams: MixLayoutParamsModel | None = None
    ResourceExpiredHour: int = Field(default=72, ge=6, le=720)
    PrivateMapKey: str | None = None

    _rt = field_validator("RoomIdType")(classmethod(lambda cls, v: _in("RoomIdType", v, (0, 1))))


class DescribeCloudRecordingParams(Params):
    SdkAppId: int
    TaskId: str = Field(min_length=1, max_length=256)
    RecorderKey: str | None = None  # identifies relay-recording tasks; accepted and ignored


class ModifyCloudRecordingParams(Params):
    SdkAppId: int
    TaskId: str = Field(min_length=1, max_length=256)
    MixLayoutParams: MixLayoutParamsModel | None = None
    SubscribeStreamUserIds: SubscribeStreamUserIdsModel | None = None


class DeleteCloudRecordingParams(Params):
    SdkAppId: int
    TaskId: str = Field(min_length=1, max_length=256)


# ---------------------------------------------------------------------------------- to the engine


def user_filter(allow: list[str] | None, deny: list[str] | None) -> UserFilter:
    """A vendor list pair to a filter; ``x.*$`` entries become prefix rules."""

    def split(ids: list[str] | None) -> tuple[frozenset[str], frozenset[str]]:
        exact: set[str] = set()
        prefixes: set[str] = set()
        for u in ids or ():
            if u.endswith(PREFIX_SUFFIX) and len(u) > len(PREFIX_SUFFIX):
                prefixes.add(u[: -len(PREFIX_SUFFIX)])
                exact.add(u)  # the docs' caveat: a user literally named "x.*$" matches too
            else:
                exact.add(u)
        return frozenset(exact), frozenset(prefixes)

    allow_exact, allow_prefixes = split(allow)
    deny_exact, deny_prefixes = split(deny)
    return UserFilter(
        allow=(allow_exact if allow else None),
        deny=deny_exact,
        allow_prefixes=allow_prefixes,
        deny_prefixes=deny_prefixes,
    )


def user_selection(subs: SubscribeStreamUserIdsModel | None) -> UserSelection:
    if subs is None:
        return UserSelection()
    return UserSelection(
        audio=user_filter(subs.SubscribeAudioUserIds, subs.UnSubscribeAudioUserIds),
        video=user_filter(subs.SubscribeVideoUserIds, subs.UnSubscribeVideoUserIds),
    )


TRTC_RECORDING_TEMPLATE = "trtc.recording"
"""Layout template of a recording's ``MixLayoutParams``; parameters: ``MixLayoutParams`` (the
request's object, JSON) and ``hide_audio_only`` (audio-only anchors take no window)."""


def layout_ref(mix: MixLayoutParamsModel | None) -> LayoutRef:
    model = mix or MixLayoutParamsModel(MixLayoutMode=tl.RECORDING_DEFAULT_MIX_LAYOUT_MODE)
    hide_audio_only = model.PureAudioDisableLayout and model.MixLayoutMode != tl.MIX_LAYOUT_CUSTOM
    return LayoutRef(
        preset=TRTC_RECORDING_TEMPLATE,
        params={
            "MixLayoutParams": model.model_dump(mode="json", exclude_none=True),
            "hide_audio_only": hide_audio_only,
        },
    )


def recording_layout_template(params: Mapping[str, Any]) -> LayoutFunction:
    """The layout function of a :data:`TRTC_RECORDING_TEMPLATE` reference."""
    unknown = set(params) - {"MixLayoutParams", "hide_audio_only"}
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}")
    hide_audio_only = params.get("hide_audio_only", False)
    if not isinstance(hide_audio_only, bool):
        raise ValueError("hide_audio_only must be true or false")
    layout_params = MixLayoutParamsModel.model_validate(params["MixLayoutParams"]).to_layout_params()

    def apply(participants: Sequence[Participant], canvas: Canvas) -> Layout:
        shown = [p for p in participants if p.has_camera or p.has_screen or not hide_audio_only]
        return tl.recording_layout(shown, layout_params, canvas.width, canvas.height)

    return apply


register_template(TRTC_RECORDING_TEMPLATE, recording_layout_template)


def outputs_for(p: CreateCloudRecordingParams) -> tuple[OutputFormat, ...]:
    storage = p.StorageParams
    if storage.CloudStorage is not None or storage.CloudVod is None:
        return STORAGE_FORMATS[p.RecordParams.OutputFormat or 0]
    vod = storage.CloudVod.TencentVod or TencentVodModel()
    if vod.MediaType == 2 and p.RecordParams.StreamType != 1:
        raise out_of_range("TencentVod.MediaType 2 (AAC) needs RecordParams.StreamType 1 (audio only)")
    return VOD_FORMATS[vod.MediaType]


def naming(p: CreateCloudRecordingParams) -> FileNaming:
    prefix = ""
    if p.StorageParams.CloudStorage is not None:
        prefix = "/".join(p.StorageParams.CloudStorage.FileNamePrefix or ())
    elif p.StorageParams.CloudVod is not None and p.StorageParams.CloudVod.TencentVod is not None:
        record_id = p.StorageParams.CloudVod.TencentVod.UserDefineRecordId
        prefix = f"{record_id}__UserId_u_" if record_id else ""
    lead = f"{prefix}/" if prefix and not prefix.endswith("_") else ""
    inline = prefix if prefix.endswith("_") else ""
    if p.RecordParams.RecordMode == 2:
        name = f"{inline}{{app}}_{{room_id}}_mix_{{start_ms}}_{{index}}"
    else:
        user = "__UserId_s_{user_id}__UserId_e_{stream}_{media}"
        name = f"{inline}{{app}}_{{room_id}}{user}_{{start_ms}}_{{index}}"
    return FileNaming(template=f"{lead}{{task_id}}/{name}")


def check_room(p: CreateCloudRecordingParams) -> None:
    if p.RoomIdType == 1 and (not p.RoomId.isdigit() or not 1 <= int(p.RoomId) <= INT_ROOM_MAX):
        raise TrtcError("InvalidParameter.RoomId", "With RoomIdType 1 the RoomId is an integer room number.")


def recording_spec(p: CreateCloudRecordingParams) -> RecordingSpec:
    check_room(p)
    rp = p.RecordParams
    mixed = rp.RecordMode == 2
    media = {0: MediaSelection.AUDIO_VIDEO, 1: MediaSelection.AUDIO_ONLY, 2: MediaSelection.VIDEO_ONLY}[
        rp.StreamType
    ]
    streams = StreamSelection(audio=True, camera=rp.MediaId in (0, 1), screen=rp.MediaId in (0, 2))
    video = VideoEncoding()
    audio = AudioEncoding(sample_rate=48000, channels=2, bitrate_kbps=64)
    if mixed:
        vp = (p.MixTranscodeParams.VideoParams if p.MixTranscodeParams else None) or VideoParamsModel(
            Width=360, Height=640, Fps=15, BitRate=550000, Gop=10
        )
        video = VideoEncoding(
            width=vp.Width, height=vp.Height, fps=vp.Fps, bitrate_kbps=vp.BitRate // 1000, gop=vp.Gop
        )
        if p.MixLayoutParams is not None:
            p.MixLayoutParams.check_canvas(vp.Width, vp.Height)
    ap = p.MixTranscodeParams.AudioParams if p.MixTranscodeParams else None
    if ap is not None:
        audio = AudioEncoding(
            sample_rate=SAMPLE_RATES[ap.SampleRate], channels=ap.Channel, bitrate_kbps=ap.BitRate // 1000
        )
    outputs = outputs_for(p)
    return RecordingSpec(
        mode=RecordingMode.MIXED if mixed else RecordingMode.INDIVIDUAL,
        users=user_selection(rp.SubscribeStreamUserIds),
        streams=streams,
        media=media,
        separate_files=(not mixed and rp.AvMerge == 0 and media is MediaSelection.AUDIO_VIDEO),
        outputs=outputs,
        video=video,
        audio=audio,
        layout=layout_ref(p.MixLayoutParams) if mixed else None,
        naming=naming(p),
        limits=RecordingLimits(
            # With no anchor ever publishing, the recorder also gives up after MaxIdleTime.
            start_timeout=float(rp.MaxIdleTime),
            idle_timeout=float(rp.MaxIdleTime),
            max_file_duration=float(rp.MaxMediaFileDuration * 60),
            hls_segment_duration=6.0,
        ),
    )


def storage_description(p: CreateCloudRecordingParams) -> dict[str, Any]:
    """Where the files go, as plain values (the service turns this into a StorageTarget)."""
    cs = p.StorageParams.CloudStorage
    if cs is not None:
        return {
            "kind": "s3",
            "vendor": STORAGE_VENDORS[cs.Vendor],
            "region": cs.Region,
            "bucket": cs.Bucket,
            "access_key": cs.AccessKey,
            "secret_key": cs.SecretKey,
        }
    if p.StorageParams.CloudVod is not None:
        vod = p.StorageParams.CloudVod.TencentVod or TencentVodModel()
        return {"kind": "library", "expire_s": vod.ExpireTime}
    raise TrtcError("MissingParameter.CloudStorage", "StorageParams needs CloudStorage or CloudVod.")
