"""TIW online recording: request models (tencentcloud-sdk-python-tiw 3.1.59), their checks, and
the mapping to the recording spec and the class-video layouts.

Choices where the docs are silent or contradict themselves:

- ``RoomId`` "(1, 4294967295)" is taken as 1 to 4294967295 inclusive (a TRTC room id).
- A ``RecordUserSig`` that does not verify for ``RecordUserId`` is ``AuthFailure`` (the first
  code the action lists, without a description); a malformed ``RecordUserId`` (not
  ``tic_record_user_<RoomId>_<random>``, over 60 bytes) is ``InvalidParameter.RecordParameter``.
- ``MixStream.Enabled`` without ``MIX_STREAM`` in ``Extras`` is
  ``InvalidParameter.RecordParameter``; an unknown ``Extras`` value is ``InvalidExtra``.
- The built-in mixed layouts follow the TIW "混流录制" page: ModelId 1 is a 1320x1224 canvas with
  four 320x240 cameras in a row above the 1280x960 whiteboard, ModelId 2 a 1624x1000 canvas with
  the whiteboard on the left and four cameras in a column on the right; 8 px gaps, background
  ``#34363B``. The teacher (``TeacherId``) takes the first camera slot.
- ``RecordMode`` ``VIDEO_GENERATION_MODE`` (a closed beta upstream) and ``PullSmallVideo`` are
  refused with ``InvalidParameter.RecordParameter``: roomcast has no signalling player and
  publishers send one resolution.
- ``GroupId`` names the room whose whiteboard is recorded (default: ``RoomId`` as a string);
  ``TRTCRoomIdStr``, else ``TRTCRoomId``, else ``RoomId``, the room whose streams are recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import Field

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.params import Params
from roomcast.domain.layout import Color, Rect, RenderMode
from roomcast.domain.recording import (
    FileNaming,
    MediaSelection,
    OutputFormat,
    RecordingLimits,
    RecordingMode,
    RecordingSpec,
    StreamSelection,
    UserFilter,
    UserSelection,
)
from roomcast.domain.whiteboard import parse_ratio
from roomcast.services.class_videos import BOARD, ClassLayout, Slot

RECORD_PARAMETER = "InvalidParameter.RecordParameter"
TYPE_UNMATCHED = "InvalidParameter.BodyParameterTypeUnmatched"
SUBSTREAM = "tic_substream"
TIW_BOARD = "tic_record_user"
"""TIW's stream id of the whiteboard (RecordControl, custom layouts); the engine's is ``BOARD``."""
EXTRAS = frozenset({"MIX_STREAM"})
ROOM_MAX = 4_294_967_295
MAX_SIDE = 3840
MIX_BACKGROUND = Color(0x34, 0x36, 0x3B)
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def bad(message: str) -> TrtcError:
    return TrtcError(RECORD_PARAMETER, message)


class ConcatModel(Params):
    Enabled: bool = False
    Image: str | None = Field(default=None, max_length=2048)


class WhiteboardModel(Params):
    Width: int = 1280
    Height: int = 960
    InitParam: str | None = Field(default=None, max_length=10000)


class LayoutParamsModel(Params):
    Width: int
    Height: int
    X: int = 0
    Y: int = 0
    ZOrder: int = 0


class CanvasModel(Params):
    LayoutParams: LayoutParamsModel
    BackgroundColor: str | None = None


class StreamLayoutModel(Params):
    LayoutParams: LayoutParamsModel
    InputStreamId: str | None = Field(default=None, max_length=128)
    BackgroundColor: str | None = None
    FillMode: int = 0


class CustomLayoutModel(Params):
    Canvas: CanvasModel
    InputStreamList: list[StreamLayoutModel] = Field(max_length=32)


class MixStreamModel(Params):
    Enabled: bool = False
    DisableAudio: bool = False
    ModelId: int | None = None
    TeacherId: str | None = Field(default=None, max_length=128)
    Custom: CustomLayoutModel | None = None


class StreamControlModel(Params):
    StreamId: str = Field(max_length=128)
    DisableRecord: bool = False
    DisableAudio: bool = False
    PullSmallVideo: bool = False


class RecordControlModel(Params):
    Enabled: bool = False
    DisableRecord: bool = False
    DisableAudio: bool = False
    PullSmallVideo: bool = False
    StreamControls: list[StreamControlModel] = Field(default_factory=list, max_length=64)


class StartOnlineRecordParams(Params):
    SdkAppId: int
    RoomId: int
    RecordUserId: str = Field(max_length=256)
    RecordUserSig: str = Field(max_length=4096)
    GroupId: str | None = Field(default=None, max_length=128)
    Concat: ConcatModel | None = None
    Whiteboard: WhiteboardModel | None = None
    MixStream: MixStreamModel | None = None
    Extras: list[str] | None = Field(default=None, max_length=16)
    AudioFileNeeded: bool = False
    RecordControl: RecordControlModel | None = None
    RecordMode: str | None = Field(default=None, max_length=64)
    ChatGroupId: str | None = Field(default=None, max_length=128)
    AutoStopTimeout: int | None = None
    ExtraData: str | None = Field(default=None, max_length=10000)
    TRTCRoomId: int | None = None
    TRTCRoomIdStr: str | None = Field(default=None, max_length=128)


class TaskParams(Params):
    SdkAppId: int
    TaskId: str = Field(max_length=512)


# Describe, Stop, Pause and Resume take the same two parameters.
DescribeOnlineRecordParams = TaskParams
StopOnlineRecordParams = TaskParams
PauseOnlineRecordParams = TaskParams
ResumeOnlineRecordParams = TaskParams


# ------------------------------------------------------------------------------------------ checks


def media_room(p: StartOnlineRecordParams) -> str:
    if p.TRTCRoomIdStr:
        return p.TRTCRoomIdStr
    return str(p.TRTCRoomId if p.TRTCRoomId is not None else p.RoomId)


def board_room(p: StartOnlineRecordParams) -> str:
    return p.GroupId or str(p.RoomId)


def mixing(p: StartOnlineRecordParams) -> bool:
    return bool(p.MixStream is not None and p.MixStream.Enabled)


def check(p: StartOnlineRecordParams) -> None:
    """The documented rules the models cannot say; raises the action's codes."""
    if not 1 <= p.RoomId <= ROOM_MAX:
        raise bad(f"RoomId must be in [1, {ROOM_MAX}].")
    if p.TRTCRoomId is not None and not 1 <= p.TRTCRoomId <= ROOM_MAX:
        raise bad(f"TRTCRoomId must be in [1, {ROOM_MAX}].")
    prefix = f"tic_record_user_{p.RoomId}_"
    uid = p.RecordUserId
    if len(uid.encode()) > 60 or not uid.startswith(prefix) or len(uid) == len(prefix):
        raise bad(f"RecordUserId must be {prefix}<random>, at most 60 bytes.")
    if any(ord(c) < 32 for c in uid):
        raise bad("RecordUserId has control characters.")
    if not p.RecordUserSig:
        raise bad("RecordUserSig is empty.")
    for extra in p.Extras or []:
        if extra not in EXTRAS:
            raise TrtcError("InvalidParameter.InvalidExtra", f"The feature {extra!r} does not exist.")
    if p.AutoStopTimeout is not None and not 300 <= p.AutoStopTimeout <= 86400:
        raise bad("AutoStopTimeout must be in [300, 86400].")
    if p.RecordMode not in (None, "", "REALTIME_MODE"):
        if p.RecordMode == "VIDEO_GENERATION_MODE":
            raise bad("RecordMode VIDEO_GENERATION_MODE is not served; use REALTIME_MODE.")
        raise bad("RecordMode must be REALTIME_MODE or VIDEO_GENERATION_MODE.")
    wb = p.Whiteboard or WhiteboardModel()
    if not (2 <= wb.Width <= MAX_SIDE and 2 <= wb.Height <= MAX_SIDE):
        raise bad(f"Whiteboard.Width and Height must be in [2, {MAX_SIDE}].")
    if wb.InitParam:
        try:
            init = json.loads(wb.InitParam)
        except ValueError:
            raise bad("Whiteboard.InitParam must be a JSON object.") from None
        if not isinstance(init, dict):
            raise bad("Whiteboard.InitParam must be a JSON object.")
        ratio = init.get("ratio")
        if ratio is not None and (not isinstance(ratio, str) or parse_ratio(ratio, (0, 0)) == (0, 0)):
            raise bad('Whiteboard.InitParam ratio must be "W:H", e.g. "16:9".')
    rc = p.RecordControl
    if (
        rc is not None
        and rc.Enabled
        and (rc.PullSmallVideo or any(sc.PullSmallVideo for sc in rc.StreamControls))
    ):
        raise bad("PullSmallVideo is not served: publishers send a single resolution.")
    ms = p.MixStream
    if ms is not None and ms.Enabled:
        if "MIX_STREAM" not in (p.Extras or []):
            raise bad('MixStream needs "MIX_STREAM" in Extras.')
        if ms.Custom is None:
            if ms.ModelId not in (1, 2):
                raise bad("MixStream.ModelId must be 1 or 2 (or give MixStream.Custom).")
        else:
            _check_custom(ms.Custom)
    if (
        p.Concat is not None
        and p.Concat.Image is not None
        and not p.Concat.Image.startswith(("http://", "https://"))
    ):
        raise TrtcError("InvalidParameter.UrlFormatError", "Concat.Image must be an http(s) URL.")


def _check_custom(c: CustomLayoutModel) -> None:
    cw, ch = c.Canvas.LayoutParams.Width, c.Canvas.LayoutParams.Height
    if not (16 <= cw <= MAX_SIDE and 16 <= ch <= MAX_SIDE):
        raise bad(f"MixStream.Custom.Canvas size must be in [16, {MAX_SIDE}].")
    if c.Canvas.BackgroundColor and not _COLOUR.match(c.Canvas.BackgroundColor):
        raise bad("BackgroundColor must be #RRGGBB.")
    if not c.InputStreamList:
        raise bad("MixStream.Custom.InputStreamList needs at least one stream.")
    for n, s in enumerate(c.InputStreamList):
        lp = s.LayoutParams
        if not (2 <= lp.Width <= 3000 and 2 <= lp.Height <= 3000 and 0 <= lp.X <= 3000 and 0 <= lp.Y <= 3000):
            raise bad(f"InputStreamList.{n}.LayoutParams is out of range.")
        if lp.X + lp.Width > cw or lp.Y + lp.Height > ch:
            raise bad(f"InputStreamList.{n} does not fit in the canvas.")
        if s.FillMode not in (0, 1):
            raise bad(f"InputStreamList.{n}.FillMode must be 0 or 1.")
        if s.BackgroundColor and not _COLOUR.match(s.BackgroundColor):
            raise bad("BackgroundColor must be #RRGGBB.")


# ------------------------------------------------------------------------------------------ mapping


def _colour(text: str | None, default: Color) -> Color:
    if not text:
        return default
    v = int(text[1:], 16)
    return Color(v >> 16, (v >> 8) & 0xFF, v & 0xFF)


@dataclass(frozen=True)
class Controls:
    """What RecordControl asks: which streams are recorded, which without audio."""

    whiteboard: bool
    substream: bool
    users: UserSelection


def controls(p: StartOnlineRecordParams) -> Controls:
    rc = p.RecordControl
    if rc is None or not rc.Enabled:
        return Controls(True, True, UserSelection())

    def decide(stream_id: str, attr: str) -> bool:
        """Whether the stream is disabled for ``attr``: its own control first, else the global."""
        for sc in rc.StreamControls:
            if stream_id.startswith(sc.StreamId):
                return bool(getattr(sc, attr))
        return bool(getattr(rc, attr))

    user_controls = [
        sc for sc in rc.StreamControls if sc.StreamId not in (TIW_BOARD, SUBSTREAM) and sc.StreamId
    ]

    def user_filter(attr: str, *, also: str | None = None) -> UserFilter:
        def off(sc: StreamControlModel) -> bool:
            return bool(getattr(sc, attr) or (also is not None and getattr(sc, also)))

        globally_off = bool(getattr(rc, attr) or (also is not None and getattr(rc, also)))
        if globally_off:
            on = frozenset(sc.StreamId for sc in user_controls if not off(sc))
            return UserFilter(allow=frozenset(), allow_prefixes=on)
        return UserFilter(deny_prefixes=frozenset(sc.StreamId for sc in user_controls if off(sc)))

    return Controls(
        whiteboard=not decide(TIW_BOARD, "DisableRecord"),
        substream=not decide(SUBSTREAM, "DisableRecord"),
        users=UserSelection(
            audio=user_filter("DisableAudio", also="DisableRecord"), video=user_filter("DisableRecord")
        ),
    )


PAUSED = UserSelection(audio=UserFilter(allow=frozenset()), video=UserFilter(allow=frozenset()))
"""Nobody is recorded while a task is paused."""


def recording_spec(p: StartOnlineRecordParams) -> RecordingSpec:
    c = controls(p)
    outputs = (OutputFormat.MP4, OutputFormat.MP3) if p.AudioFileNeeded else (OutputFormat.MP4,)
    return RecordingSpec(
        mode=RecordingMode.INDIVIDUAL,
        users=c.users,
        streams=StreamSelection(audio=True, camera=True, screen=c.substream),
        media=MediaSelection.AUDIO_VIDEO,
        outputs=outputs,
        naming=FileNaming("{task_id}/{user_id}_{stream}_{start_ms}_{index}"),
        # TIW stops by AutoStopTimeout (watched by this dialect) and at 24 hours (FORCE_STOP).
        limits=RecordingLimits(start_timeout=86400, idle_timeout=86400 * 7, max_duration=86400),
    )


def board_size(p: StartOnlineRecordParams) -> tuple[int, int, tuple[int, int]]:
    """The whiteboard video's width, height (even, for H.264) and page ratio."""
    wb = p.Whiteboard or WhiteboardModel()
    ratio = (16, 9)
    if wb.InitParam:
        ratio = parse_ratio(json.loads(wb.InitParam).get("ratio"), ratio)
    return max(16, wb.Width + wb.Width % 2), max(16, wb.Height + wb.Height % 2), ratio


def _model_layout(model: int, teacher: str | None) -> ClassLayout:
    cam = (320, 240)
    if model == 1:
        slots = [Slot(Rect(20, 256, 1280, 960), BOARD)]
        slots += [Slot(Rect(8 + i * 328, 8, *cam)) for i in range(4)]
        return ClassLayout(1320, 1224, tuple(slots), MIX_BACKGROUND, teacher)
    slots = [Slot(Rect(8, 8, 1280, 960), BOARD)]
    slots += [Slot(Rect(1296, 8 + i * 248, *cam)) for i in range(4)]
    return ClassLayout(1624, 1000, tuple(slots), MIX_BACKGROUND, teacher)


def mix_layout(p: StartOnlineRecordParams) -> ClassLayout:
    ms = p.MixStream
    assert ms is not None
    if ms.Custom is None:
        return _model_layout(int(ms.ModelId or 1), ms.TeacherId)
    c = ms.Custom
    slots = tuple(
        Slot(
            Rect(s.LayoutParams.X, s.LayoutParams.Y, s.LayoutParams.Width, s.LayoutParams.Height),
            BOARD if s.InputStreamId == TIW_BOARD else (s.InputStreamId or None),
            z=s.LayoutParams.ZOrder,
            render=RenderMode.FILL if s.FillMode == 1 else RenderMode.FIT,
            background=_colour(s.BackgroundColor, Color(0, 0, 0)),
        )
        for s in c.InputStreamList
    )
    w, h = c.Canvas.LayoutParams.Width, c.Canvas.LayoutParams.Height
    return ClassLayout(w + w % 2, h + h % 2, slots, _colour(c.Canvas.BackgroundColor, Color(0, 0, 0)))


def mix_user_id(p: StartOnlineRecordParams) -> str:
    ms = p.MixStream
    model = ms.ModelId if ms is not None and ms.Custom is None and ms.ModelId else 0
    return f"tic_mixstream_{p.RoomId}_{model}"
