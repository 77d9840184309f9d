"""TRTC relay to CDN (Start/Update/StopPublishCdnStream): request models and the mapping to a
:class:`~roomcast.domain.relay.RelaySpec`.

Choices where the docs are silent or contradict themselves (spec/trtc-a §3.2, §4.1, §6.9):

- ``AudioParams`` is "optional" in the table but "required when you start a relay task" in its
  text.  Omitting it is how a **video-only** relay is asked for (precaution 3 names that mode and
  nothing else can express it); omitting both ``AudioParams`` and ``VideoParams`` is
  ``InvalidParameter``.  ``AudioEncode`` left out: 48 kHz stereo 64 kbps.
- ``AudioEncode.Codec`` 1 (HE-AAC) and 2 (HE-AACv2) are validated as documented and encoded as
  AAC-LC (FFmpeg's native encoder has no HE profiles); every player decodes it.
- ``VideoEncode`` is required whenever ``VideoParams`` starts a relay; a transcoded canvas needs
  an even ``Width``/``Height`` of at least 16, ``Fps`` >= 1 and ``BitRate`` >= 32 kbps (the
  documented ranges start at 0).  For a single-stream relay (``WithTranscoding`` 0) the values
  only describe the upstream (the video is copied).
- Relay ``RoomIdType``: 0 integer, 1 string (the relay family's meaning); an integer room id
  must be digits.
- Update lists: ``SubscribeAudioList`` / ``UnSubscribeAudioList`` given as ``[]`` or ``""`` reset
  the list (everyone / nobody blocked); not given: unchanged.
- ``SequenceNumber``: an update whose number is not greater than the last accepted one fails
  with ``FailedOperation`` (the docs give no code); the first update may use any number.
- Codec changes in Update (``VideoEncode``, ``AudioEncode`` different from the task's) are
  ``InvalidParameter``; switching ``WithTranscoding`` or between audio / video / both is
  ``UnsupportedOperation``.
- Both ``PublishCdnParams`` and ``FeedBackRoomParams`` missing: ``MissingParameter``.
  ``PublishCdnUrl`` must be ``rtmp://`` or ``rtmps://`` with an application and stream name, to
  a host the node's URL policy allows (``InvalidParameter``).  ``IsTencentCdn`` is accepted and
  has no effect.
- ``McuCustomCrop.LocationX/Y`` "must be greater than 0": 0 is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from pydantic import Field, field_validator, model_validator

from roomcast.api.trtc import layouts as tl
from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.params import Params
from roomcast.domain.layout import Crop
from roomcast.domain.recording import (
    AudioEncoding,
    MediaSelection,
    RecordingMode,
    RecordingSpec,
    UserFilter,
    UserSelection,
    VideoEncoding,
)
from roomcast.domain.relay import (
    FeedbackRoom,
    LayoutSei,
    PassThroughSei,
    RelaySource,
    RelaySpec,
    SeiSettings,
    SingleStream,
)

MAX_CDN = 10
MAX_FEEDBACK = 10
MAX_USER_LIST = 32
MAX_SLOTS = 25
MAX_WATERMARKS = 25
AUDIO_SAMPLE_RATES = (48000, 44100, 32000, 24000, 16000, 8000)
HE_SAMPLE_RATES = (48000, 44100, 32000, 24000, 16000)
_COLOR = re.compile(r"^(0x|0X|#)?[0-9A-Fa-f]{6}$")
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")


def invalid(message: str) -> TrtcError:
    return TrtcError("InvalidParameter", message)


def _in(name: str, value: int, allowed: Sequence[int]) -> int:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}")
    return value


def _color(v: str | None) -> str | None:
    if v is not None and v != "" and not _COLOR.match(v):
        raise ValueError("colours are 0xRRGGBB")
    return v or None


class AgentParamsModel(Params):
    UserId: str = Field(min_length=1, max_length=128)
    UserSig: str | None = None
    MaxIdleTime: int = Field(default=30, ge=5, le=86400)


class AudioEncodeModel(Params):
    SampleRate: int
    Channel: int
    BitRate: int = Field(ge=8, le=500)
    Codec: int = 0

    _rate = field_validator("SampleRate")(
        classmethod(lambda cls, v: _in("SampleRate", v, AUDIO_SAMPLE_RATES))
    )
    _chan = field_validator("Channel")(classmethod(lambda cls, v: _in("Channel", v, (1, 2))))
    _codec = field_validator("Codec")(classmethod(lambda cls, v: _in("Codec", v, (0, 1, 2))))

    @model_validator(mode="after")
    def _he(self) -> AudioEncodeModel:
        if self.Codec == 2 and self.Channel != 2:
            raise ValueError("HE-AACv2 (Codec 2) needs Channel 2")
        if self.Codec in (1, 2) and self.SampleRate not in HE_SAMPLE_RATES:
            raise ValueError("HE-AAC needs a SampleRate of 16000 to 48000")
        return self


class VideoEncodeModel(Params):
    Width: int = Field(ge=0, le=1920)
    Height: int = Field(ge=0, le=1080)
    Fps: int = Field(ge=0, le=60)
    BitRate: int = Field(ge=0, le=10000)
    Gop: int = Field(ge=1, le=5)


class MixUserInfoModel(Params):
    UserId: str = Field(min_length=1, max_length=128)
    RoomId: str | None = Field(default=None, max_length=128)
    RoomIdType: int | None = None

    _rt = field_validator("RoomIdType")(
        classmethod(lambda cls, v: v if v is None else _in("RoomIdType", v, (0, 1)))
    )


class McuUserInfoParamsModel(Params):
    UserInfo: MixUserInfoModel


class UserMediaStreamModel(Params):
    UserInfo: MixUserInfoModel | None = None
    StreamType: int = 0

    _st = field_validator("StreamType")(classmethod(lambda cls, v: _in("StreamType", v, (0, 1))))


class SingleSubscribeParamsModel(Params):
    UserMediaStream: UserMediaStreamModel

    @model_validator(mode="after")
    def _user(self) -> SingleSubscribeParamsModel:
        if self.UserMediaStream.UserInfo is None:
            raise ValueError("UserMediaStream.UserInfo names the relayed user")
        return self


class MaxVideoUserModel(Params):
    UserMediaStream: UserMediaStreamModel


class McuCustomCropModel(Params):
    LocationX: int = Field(ge=0, le=tl.MCU_CUSTOM_CROP_MAX)
    LocationY: int = Field(ge=0, le=tl.MCU_CUSTOM_CROP_MAX)
    Width: int = Field(ge=1, le=tl.MCU_CUSTOM_CROP_MAX)
    Height: int = Field(ge=1, le=tl.MCU_CUSTOM_CROP_MAX)

    @model_validator(mode="after")
    def _bounds(self) -> McuCustomCropModel:
        if (
            self.LocationX + self.Width > tl.MCU_CUSTOM_CROP_MAX
            or self.LocationY + self.Height > tl.MCU_CUSTOM_CROP_MAX
        ):
            raise ValueError("the crop must end within 10000 px")
        return self


class McuLayoutModel(Params):
    UserMediaStream: UserMediaStreamModel | None = None
    ImageWidth: int = Field(default=0, ge=0, le=1920)
    ImageHeight: int = Field(default=0, ge=0, le=1920)
    LocationX: int = Field(default=0, ge=0, le=1920)
    LocationY: int = Field(default=0, ge=0, le=1920)
    ZOrder: int = Field(default=0, ge=0, le=64)
    RenderMode: int = 0
    BackGroundColor: str | None = None
    BackgroundImageUrl: str | None = Field(default=None, max_length=1024)
    CustomCrop: McuCustomCropModel | None = None
    BackgroundRenderMode: int = tl.MCU_DEFAULT_SLOT_BACKGROUND_RENDER_MODE

    _rm = field_validator("RenderMode")(
        classmethod(lambda cls, v: _in("RenderMode", v, tuple(tl.MCU_RENDER_MODES)))
    )
    _brm = field_validator("BackgroundRenderMode")(
        classmethod(lambda cls, v: _in("BackgroundRenderMode", v, tuple(tl.MCU_SLOT_BACKGROUND_RENDER_MODES)))
    )
    _bg = field_validator("BackGroundColor")(classmethod(lambda cls, v: _color(v)))


class McuLayoutParamsModel(Params):
    MixLayoutMode: int = tl.RELAY_DEFAULT_MIX_LAYOUT_MODE
    PureAudioHoldPlaceMode: int = 0
    MixLayoutList: list[McuLayoutModel] | None = Field(default=None, max_length=MAX_SLOTS)
    MaxVideoUser: MaxVideoUserModel | None = None
    RenderMode: int = 0

    _mode = field_validator("MixLayoutMode")(
        classmethod(lambda cls, v: _in("MixLayoutMode", v, tuple(sorted(tl.MIX_LAYOUT_MODES))))
    )
    _pa = field_validator("PureAudioHoldPlaceMode")(
        classmethod(lambda cls, v: _in("PureAudioHoldPlaceMode", v, (0, 1)))
    )
    _rm = field_validator("RenderMode")(
        classmethod(lambda cls, v: _in("RenderMode", v, tuple(tl.MCU_RENDER_MODES)))
    )

    @model_validator(mode="after")
    def _custom(self) -> McuLayoutParamsModel:
        if self.MixLayoutMode == tl.MIX_LAYOUT_CUSTOM and not self.MixLayoutList:
            raise ValueError("a custom layout (MixLayoutMode 4) needs MixLayoutList")
        return self


class McuWaterMarkImageModel(Params):
    WaterMarkUrl: str = Field(min_length=1, max_length=1024)
    WaterMarkWidth: int = Field(ge=0, le=1920)
    WaterMarkHeight: int = Field(ge=0, le=1920)
    LocationX: int = Field(ge=0, le=1920)
    LocationY: int = Field(ge=0, le=1920)
    ZOrder: int = Field(default=0, ge=0, le=64)


class McuWaterMarkTextModel(Params):
    Text: str = Field(min_length=1, max_length=256)
    WaterMarkWidth: int = Field(ge=0, le=1920)
    WaterMarkHeight: int = Field(ge=0, le=1920)
    LocationX: int = Field(ge=0, le=1920)
    LocationY: int = Field(ge=0, le=1920)
    FontSize: int = Field(ge=1, le=500)
    FontColor: str | None = None
    BackGroundColor: str | None = None

    _c = field_validator("FontColor", "BackGroundColor")(classmethod(lambda cls, v: _color(v)))


class McuWaterMarkParamsModel(Params):
    WaterMarkType: int = 0
    WaterMarkImage: McuWaterMarkImageModel | None = None
    WaterMarkText: McuWaterMarkTextModel | None = None

    _t = field_validator("WaterMarkType")(classmethod(lambda cls, v: _in("WaterMarkType", v, (0, 1))))

    @model_validator(mode="after")
    def _body(self) -> McuWaterMarkParamsModel:
        if (self.WaterMarkImage if self.WaterMarkType == 0 else self.WaterMarkText) is None:
            raise ValueError("WaterMarkType 0 needs WaterMarkImage, 1 needs WaterMarkText")
        return self


class McuVideoParamsModel(Params):
    VideoEncode: VideoEncodeModel | None = None
    LayoutParams: McuLayoutParamsModel | None = None
    BackGroundColor: str | None = None
    BackgroundImageUrl: str | None = Field(default=None, max_length=1024)
    WaterMarkList: list[McuWaterMarkParamsModel] | None = Field(default=None, max_length=MAX_WATERMARKS)
    BackgroundRenderMode: int = tl.MCU_DEFAULT_BACKGROUND_RENDER_MODE

    _bg = field_validator("BackGroundColor")(classmethod(lambda cls, v: _color(v)))
    _brm = field_validator("BackgroundRenderMode")(
        classmethod(lambda cls, v: _in("BackgroundRenderMode", v, tuple(tl.MCU_BACKGROUND_RENDER_MODES)))
    )


UserList = list[McuUserInfoParamsModel] | Literal[""]


class McuAudioParamsModel(Params):
    AudioEncode: AudioEncodeModel | None = None
    SubscribeAudioList: UserList | None = Field(default=None)
    UnSubscribeAudioList: UserList | None = Field(default=None)

    @field_validator("SubscribeAudioList", "UnSubscribeAudioList")
    @classmethod
    def _bounded(cls, v: UserList | None) -> UserList | None:
        if isinstance(v, list) and len(v) > MAX_USER_LIST:
            raise ValueError(f"at most {MAX_USER_LIST} users")
        return v


class McuPublishCdnParamModel(Params):
    PublishCdnUrl: str = Field(min_length=1, max_length=2048)
    IsTencentCdn: int = 1

    _t = field_validator("IsTencentCdn")(classmethod(lambda cls, v: _in("IsTencentCdn", v, (0, 1))))


class McuFeedBackRoomParamsModel(Params):
    RoomId: str = Field(min_length=1, max_length=128)
    RoomIdType: int
    UserId: str = Field(min_length=1, max_length=128)
    UserSig: str = Field(min_length=1)

    _rt = field_validator("RoomIdType")(classmethod(lambda cls, v: _in("RoomIdType", v, (0, 1))))


class McuLayoutVolumeModel(Params):
    AppData: str = Field(default="", max_length=4095)
    PayloadType: int = Field(default=100, ge=100, le=254)
    Interval: int = Field(default=1000, ge=100, le=600_000)
    FollowIdr: int = 0

    _f = field_validator("FollowIdr")(classmethod(lambda cls, v: _in("FollowIdr", v, (0, 1))))

    @field_validator("PayloadType")
    @classmethod
    def _pt(cls, v: int) -> int:
        if v == 244:
            raise ValueError("PayloadType 244 is reserved")
        return v


class McuPassThroughModel(Params):
    PayloadContent: str = Field(min_length=1, max_length=4096)
    PayloadType: int
    PayloadUuid: str | None = None
    Interval: int = Field(default=1000, ge=100, le=600_000)
    FollowIdr: int = 0

    _f = field_validator("FollowIdr")(classmethod(lambda cls, v: _in("FollowIdr", v, (0, 1))))

    @model_validator(mode="after")
    def _pt(self) -> McuPassThroughModel:
        if not (self.PayloadType == 5 or 100 <= self.PayloadType <= 254) or self.PayloadType == 244:
            raise ValueError("PayloadType is 5 or 100-254 (244 is reserved)")
        if self.PayloadType == 5 and not (self.PayloadUuid and _HEX32.match(self.PayloadUuid)):
            raise ValueError("PayloadType 5 needs PayloadUuid, 32 hexadecimal digits")
        return self


class McuSeiParamsModel(Params):
    LayoutVolume: McuLayoutVolumeModel | None = None
    PassThrough: McuPassThroughModel | None = None


class StartPublishCdnStreamParams(Params):
    SdkAppId: int
    RoomId: str = Field(min_length=1, max_length=128)
    RoomIdType: int
    AgentParams: AgentParamsModel
    WithTranscoding: int
    AudioParams: McuAudioParamsModel | None = None
    VideoParams: McuVideoParamsModel | None = None
    SingleSubscribeParams: SingleSubscribeParamsModel | None = None
    PublishCdnParams: list[McuPublishCdnParamModel] | None = Field(default=None, max_length=MAX_CDN)
    SeiParams: McuSeiParamsModel | None = None
    FeedBackRoomParams: list[McuFeedBackRoomParamsModel] | None = Field(default=None, max_length=MAX_FEEDBACK)

    _rt = field_validator("RoomIdType")(classmethod(lambda cls, v: _in("RoomIdType", v, (0, 1))))
    _wt = field_validator("WithTranscoding")(classmethod(lambda cls, v: _in("WithTranscoding", v, (0, 1))))


class UpdatePublishCdnStreamParams(Params):
    SdkAppId: int
    TaskId: str = Field(min_length=1, max_length=256)
    SequenceNumber: int = Field(ge=0)
    WithTranscoding: int
    AudioParams: McuAudioParamsModel | None = None
    VideoParams: McuVideoParamsModel | None = None
    SingleSubscribeParams: SingleSubscribeParamsModel | None = None
    PublishCdnParams: list[McuPublishCdnParamModel] | None = Field(default=None, max_length=MAX_CDN)
    SeiParams: McuSeiParamsModel | None = None
    FeedBackRoomParams: list[McuFeedBackRoomParamsModel] | None = Field(default=None, max_length=MAX_FEEDBACK)

    _wt = field_validator("WithTranscoding")(classmethod(lambda cls, v: _in("WithTranscoding", v, (0, 1))))


class StopPublishCdnStreamParams(Params):
    SdkAppId: int
    TaskId: str = Field(min_length=1, max_length=256)


# ---------------------------------------------------------------------------------- to the spec


def check_room_id(room_id: str, room_id_type: int | None, field: str) -> None:
    if room_id_type == 0 and not room_id.isdigit():
        raise TrtcError("InvalidParameter.RoomId", f"{field}: with RoomIdType 0 the room id is an integer.")


def _user_ids(items: UserList | None) -> list[tuple[str, str | None]]:
    return (
        [(i.UserInfo.UserId, i.UserInfo.RoomId or None) for i in items or ()]
        if isinstance(items, list)
        else []
    )


def audio_filter(audio: McuAudioParamsModel | None, previous: UserFilter | None = None) -> UserFilter:
    """The audio allowlist/blocklist (a user in both is not mixed); with ``previous`` (Update),
    a list not given keeps its value and ``[]`` or ``""`` resets it."""
    base = previous or UserFilter()
    if audio is None:
        return base
    allow = base.allow
    deny = base.deny
    if audio.SubscribeAudioList is not None:
        ids = [u for u, _ in _user_ids(audio.SubscribeAudioList)]
        allow = frozenset(ids) if ids else None
    if audio.UnSubscribeAudioList is not None:
        deny = frozenset(u for u, _ in _user_ids(audio.UnSubscribeAudioList))
    return UserFilter(allow=allow, deny=deny)


def layout_params(video: McuVideoParamsModel, main_room: str) -> tl.TrtcMcuLayoutParams:
    lp = video.LayoutParams or McuLayoutParamsModel()
    marks: list[tl.TrtcMcuWaterMarkImage | tl.TrtcMcuWaterMarkText] = []
    for w in video.WaterMarkList or ():
        if w.WaterMarkType == 0 and w.WaterMarkImage is not None:
            i = w.WaterMarkImage
            marks.append(
                tl.TrtcMcuWaterMarkImage(
                    i.WaterMarkUrl, i.WaterMarkWidth, i.WaterMarkHeight, i.LocationX, i.LocationY, i.ZOrder
                )
            )
        elif w.WaterMarkText is not None:
            t = w.WaterMarkText
            marks.append(
                tl.TrtcMcuWaterMarkText(
                    t.Text,
                    t.WaterMarkWidth,
                    t.WaterMarkHeight,
                    t.LocationX,
                    t.LocationY,
                    t.FontSize,
                    t.FontColor,
                    t.BackGroundColor,
                )
            )
    max_user = None
    if lp.MaxVideoUser is not None and lp.MaxVideoUser.UserMediaStream.UserInfo is not None:
        main = lp.MaxVideoUser.UserMediaStream.UserInfo
        max_user = (main.UserId, main.RoomId or None, lp.MaxVideoUser.UserMediaStream.StreamType)
    slots = []
    for s in lp.MixLayoutList or ():
        ui = s.UserMediaStream.UserInfo if s.UserMediaStream is not None else None
        crop = s.CustomCrop
        slots.append(
            tl.TrtcMcuLayout(
                image_width=s.ImageWidth,
                image_height=s.ImageHeight,
                location_x=s.LocationX,
                location_y=s.LocationY,
                z_order=s.ZOrder,
                render_mode=s.RenderMode,
                user_id=ui.UserId if ui is not None else None,
                room_id=(ui.RoomId or None) if ui is not None else None,
                stream_type=s.UserMediaStream.StreamType if s.UserMediaStream is not None else 0,
                background_image_url=s.BackgroundImageUrl or None,
                background_render_mode=s.BackgroundRenderMode,
                custom_crop=Crop(crop.LocationX, crop.LocationY, crop.Width, crop.Height) if crop else None,
            )
        )
    return tl.TrtcMcuLayoutParams(
        mix_layout_mode=lp.MixLayoutMode,
        pure_audio_hold_place_mode=lp.PureAudioHoldPlaceMode,
        mix_layout_list=tuple(slots),
        max_video_user=max_user,
        render_mode=lp.RenderMode,
        background_color=video.BackGroundColor,
        background_image_url=video.BackgroundImageUrl or None,
        background_render_mode=video.BackgroundRenderMode,
        water_mark_list=tuple(marks),
    )


def extra_rooms(
    layout: tl.TrtcMcuLayoutParams | None, audio: Sequence[tuple[str, str | None]], main_room: str
) -> tuple[str, ...]:
    """Other rooms the mix takes users from: rooms of custom slots and of audio-list users."""
    rooms: list[str] = []
    if layout is not None and layout.mix_layout_mode == tl.MIX_LAYOUT_CUSTOM:
        rooms += [s.room_id for s in layout.mix_layout_list if s.room_id]
    rooms += [r for _, r in audio if r]
    return tuple(r for r in dict.fromkeys(rooms) if r != main_room)


def check_canvas(layout: tl.TrtcMcuLayoutParams, width: int, height: int) -> None:
    for i, s in enumerate(layout.mix_layout_list):
        if s.location_x + s.image_width > width or s.location_y + s.image_height > height:
            raise invalid(
                f"VideoParams.LayoutParams.MixLayoutList.{i} does not fit the {width}x{height} canvas"
            )


def video_encoding(ve: VideoEncodeModel, *, transcoded: bool) -> VideoEncoding:
    if transcoded:
        if ve.Width < 16 or ve.Height < 16 or ve.Width % 2 or ve.Height % 2:
            raise invalid("VideoEncode: a mixed picture needs an even Width and Height of at least 16.")
        if ve.Fps < 1 or ve.BitRate < 32:
            raise invalid("VideoEncode: a mixed picture needs Fps >= 1 and BitRate >= 32 kbps.")
    return VideoEncoding(
        width=ve.Width,
        height=ve.Height,
        fps=max(1, ve.Fps),
        bitrate_kbps=max(32, ve.BitRate),
        gop=float(ve.Gop),
    )


def audio_encoding(ae: AudioEncodeModel | None) -> AudioEncoding:
    if ae is None:
        return AudioEncoding(48000, 2, 64)
    return AudioEncoding(ae.SampleRate, ae.Channel, max(16, ae.BitRate))


def sei_settings(sei: McuSeiParamsModel | None) -> SeiSettings:
    if sei is None:
        return SeiSettings()
    lv, pt = sei.LayoutVolume, sei.PassThrough
    return SeiSettings(
        layout=LayoutSei(lv.AppData, lv.PayloadType, lv.Interval, bool(lv.FollowIdr)) if lv else None,
        pass_through=(
            PassThroughSei(
                pt.PayloadContent,
                pt.PayloadType,
                pt.PayloadUuid if pt.PayloadType == 5 else None,
                pt.Interval,
                bool(pt.FollowIdr),
            )
            if pt
            else None
        ),
    )


def start_spec(p: StartPublishCdnStreamParams) -> RelaySpec:
    """The relay spec of a Start request (its URLs still to be checked against the policy)."""
    check_room_id(p.RoomId, p.RoomIdType, "RoomId")
    if not p.PublishCdnParams and not p.FeedBackRoomParams:
        raise TrtcError("MissingParameter", "Give PublishCdnParams or FeedBackRoomParams (or both).")
    if p.AudioParams is None and p.VideoParams is None:
        raise invalid("Give AudioParams, VideoParams or both: there is nothing to relay.")
    media = (
        MediaSelection.AUDIO_VIDEO
        if p.AudioParams is not None and p.VideoParams is not None
        else MediaSelection.AUDIO_ONLY
        if p.VideoParams is None
        else MediaSelection.VIDEO_ONLY
    )
    audio = audio_encoding(p.AudioParams.AudioEncode if p.AudioParams else None)
    audio_users = _user_ids(p.AudioParams.SubscribeAudioList) if p.AudioParams else []
    users = UserSelection(audio=audio_filter(p.AudioParams), video=UserFilter())
    video = VideoEncoding(width=640, height=360)
    layout = None
    single: SingleStream | None = None
    if p.VideoParams is not None:
        if p.VideoParams.VideoEncode is None:
            raise TrtcError("MissingParameter", "VideoParams.VideoEncode is required to relay video.")
        video = video_encoding(p.VideoParams.VideoEncode, transcoded=p.WithTranscoding == 1)
    if p.WithTranscoding == 1:
        if p.SingleSubscribeParams is not None:
            raise invalid(
                "SingleSubscribeParams relays one stream without transcoding: WithTranscoding must be 0."
            )
        source = RelaySource.MIX
        if p.VideoParams is not None:
            layout = layout_params(p.VideoParams, p.RoomId)
            check_canvas(layout, video.width, video.height)
    else:
        if p.SingleSubscribeParams is None:
            raise TrtcError(
                "MissingParameter", "WithTranscoding 0 relays the stream named in SingleSubscribeParams."
            )
        if p.VideoParams is not None and (
            p.VideoParams.LayoutParams is not None
            or p.VideoParams.WaterMarkList
            or p.VideoParams.BackgroundImageUrl
        ):
            raise invalid("Layouts, watermarks and backgrounds need WithTranscoding 1.")
        source = RelaySource.SINGLE
        ums = p.SingleSubscribeParams.UserMediaStream
        assert ums.UserInfo is not None
        if ums.UserInfo.RoomId:
            check_room_id(ums.UserInfo.RoomId, ums.UserInfo.RoomIdType, "SingleSubscribeParams RoomId")
        single = SingleStream(
            ums.UserInfo.UserId,
            ums.UserInfo.RoomId if ums.UserInfo.RoomId and ums.UserInfo.RoomId != p.RoomId else None,
            "screen" if ums.StreamType == 1 else "camera",
        )
        if p.SeiParams is not None and p.SeiParams.LayoutVolume is not None:
            raise invalid("The volume-layout SEI describes a mix: it needs WithTranscoding 1.")
    layout_ref = tl.relay_layout_ref(layout, room_id=p.RoomId) if layout is not None else None
    mix = RecordingSpec(
        mode=RecordingMode.MIXED,
        users=users,
        media=media,
        video=video,
        audio=audio,
        layout=layout_ref,
        extra_rooms=extra_rooms(layout, audio_users, p.RoomId),
    )
    if p.FeedBackRoomParams and source is not RelaySource.MIX:
        raise invalid("FeedBackRoomParams publishes a mix: it needs WithTranscoding 1.")
    return RelaySpec(
        source=source,
        mix=mix,
        single=single,
        outputs=tuple(c.PublishCdnUrl for c in p.PublishCdnParams or ()),
        sei=sei_settings(p.SeiParams),
        feedback=feedback_rooms(p.FeedBackRoomParams),
        audio_in_layout_only=layout is not None and layout.mix_layout_mode == tl.MIX_LAYOUT_CUSTOM,
        max_idle_s=float(p.AgentParams.MaxIdleTime),
    )


def feedback_rooms(rooms: list[McuFeedBackRoomParamsModel] | None) -> tuple[FeedbackRoom, ...]:
    out = []
    for i, r in enumerate(rooms or ()):
        check_room_id(r.RoomId, r.RoomIdType, f"FeedBackRoomParams.{i}.RoomId")
        out.append(FeedbackRoom(r.RoomId, r.UserId))
    if len({f.room_id for f in out}) != len(out):
        raise invalid("FeedBackRoomParams: each room once.")
    return tuple(out)


def updated_spec(old: RelaySpec, p: UpdatePublishCdnStreamParams, main_room: str) -> RelaySpec:
    """``old`` with the parts an Update request gives (omitted parts unchanged)."""
    transcoding = old.source is RelaySource.MIX
    if (p.WithTranscoding == 1) != transcoding:
        raise TrtcError(
            "UnsupportedOperation", "A relay cannot switch between transcoding and a single stream."
        )
    spec = old
    mix = old.mix
    if p.AudioParams is not None:
        if not mix.media.audio:
            raise TrtcError(
                "UnsupportedOperation", "This relay has no audio; it cannot start relaying audio."
            )
        ae = p.AudioParams.AudioEncode
        if ae is not None and audio_encoding(ae) != mix.audio:
            raise invalid("AudioEncode cannot change while relaying.")
        mix = replace(mix, users=replace(mix.users, audio=audio_filter(p.AudioParams, mix.users.audio)))
    if p.VideoParams is not None:
        if not mix.media.video:
            raise TrtcError(
                "UnsupportedOperation", "This relay has no video; it cannot start relaying video."
            )
        ve = p.VideoParams.VideoEncode
        if ve is not None and video_encoding(ve, transcoded=transcoding) != mix.video:
            raise invalid("VideoEncode cannot change while relaying.")
        if transcoding:
            layout = layout_params(p.VideoParams, main_room)
            check_canvas(layout, mix.video.width, mix.video.height)
            audio_users = _user_ids(p.AudioParams.SubscribeAudioList) if p.AudioParams else []
            mix = replace(
                mix,
                layout=tl.relay_layout_ref(layout, room_id=main_room),
                extra_rooms=extra_rooms(layout, audio_users, main_room),
            )
            spec = replace(spec, audio_in_layout_only=layout.mix_layout_mode == tl.MIX_LAYOUT_CUSTOM)
        elif p.VideoParams.LayoutParams is not None or p.VideoParams.WaterMarkList:
            raise invalid("Layouts and watermarks need WithTranscoding 1.")
    spec = replace(spec, mix=mix)
    if p.SingleSubscribeParams is not None:
        if transcoding:
            raise invalid("SingleSubscribeParams is valid only for a relay without transcoding.")
        ums = p.SingleSubscribeParams.UserMediaStream
        assert ums.UserInfo is not None
        spec = replace(
            spec,
            single=SingleStream(
                ums.UserInfo.UserId,
                ums.UserInfo.RoomId if ums.UserInfo.RoomId and ums.UserInfo.RoomId != main_room else None,
                "screen" if ums.StreamType == 1 else "camera",
            ),
        )
    if p.PublishCdnParams is not None:
        spec = replace(spec, outputs=tuple(c.PublishCdnUrl for c in p.PublishCdnParams))
    if p.FeedBackRoomParams is not None:
        if not transcoding and p.FeedBackRoomParams:
            raise invalid("FeedBackRoomParams publishes a mix: it needs WithTranscoding 1.")
        spec = replace(spec, feedback=feedback_rooms(p.FeedBackRoomParams))
    if not spec.outputs and not spec.feedback:
        raise TrtcError("MissingParameter", "A relay needs PublishCdnParams or FeedBackRoomParams (or both).")
    if p.SeiParams is not None:
        if not transcoding and p.SeiParams.LayoutVolume is not None:
            raise invalid("The volume-layout SEI describes a mix: it needs WithTranscoding 1.")
        spec = replace(spec, sei=sei_settings(p.SeiParams))
    return spec


def image_urls(video: McuVideoParamsModel | None) -> list[tuple[str, str]]:
    if video is None:
        return []
    out: list[tuple[str, str]] = []
    if video.BackgroundImageUrl:
        out.append(("VideoParams.BackgroundImageUrl", video.BackgroundImageUrl))
    for i, s in enumerate((video.LayoutParams.MixLayoutList or []) if video.LayoutParams else []):
        if s.BackgroundImageUrl:
            out.append(
                (f"VideoParams.LayoutParams.MixLayoutList.{i}.BackgroundImageUrl", s.BackgroundImageUrl)
            )
    for i, w in enumerate(video.WaterMarkList or ()):
        if w.WaterMarkType == 0 and w.WaterMarkImage is not None:
            out.append(
                (f"VideoParams.WaterMarkList.{i}.WaterMarkImage.WaterMarkUrl", w.WaterMarkImage.WaterMarkUrl)
            )
    return out
