"""JOYY recording request fields -> checked values: ``mixconfig`` (-> :class:`JoyyMixConfig` and
the encoder settings of ``output``) and the top-level ``startrecord`` fields.

Codes: a missing or mistyped top-level field is 2101 (invalid parameter); anything wrong inside
``mixconfig`` is 4016 (invalid mixed stream parameters). Choices where the seed is vague:

* ``input`` is also accepted as ``intput`` (the field table's spelling; the examples use ``input``);
  giving it together with ``templateid`` is 4016 ("do not fill it when using a layout template").
* Encoder values: ``videowidth``/``videoheight`` are required for video, rounded to the nearest
  multiple of 4; ``videobitrate`` is required, below roomcast's floor of 32 kbps it is raised to
  32; ``videofps`` above 60 becomes 60 (default 15); ``videogop`` (frames, default 30) is rounded
  up to whole seconds of key frame interval. ``videoencode`` 100 (H.264), ``audiobitrate`` 128,
  ``audiochannel`` 2, ``audiosample`` 48000 and ``audioformat`` 2 (AAC) are the only documented
  values: any other is 4016.
* An audio-only mix has no picture, but the mixer still wants a canvas: :data:`AUDIO_ONLY_CANVAS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from roomcast.api.jocloud.errors import JoyError
from roomcast.api.jocloud.layouts import (
    ALPHA_RANGE,
    COORD_MAX,
    CROP_MODES,
    FONT_SIZE_MAX,
    IMAGE_SCALE_MODES,
    INPUT_STREAM_TYPE_AUDIO,
    MAX_Z_ORDER,
    PATCH_MODES,
    TEMPLATE_IDS,
    TIMESTAMP_FORMATS,
    URL_MAX_BYTES,
    JoyyImageMark,
    JoyyInput,
    JoyyMixConfig,
    JoyyTextMark,
    JoyyTimestampMark,
    round_video_dimension,
)
from roomcast.domain.recording import (
    AudioEncoding,
    MediaSelection,
    UserFilter,
    UserSelection,
    VideoEncoding,
)

MIX_CODE = 4016
AUDIO_ONLY_CANVAS = (320, 240)
ID_MAX = 128
MEDIA_BY_TYPE = {0: MediaSelection.AUDIO_VIDEO, 1: MediaSelection.VIDEO_ONLY, 2: MediaSelection.AUDIO_ONLY}
"""``recordtype`` (0 audio+video, 1 video, 2 audio) and ``output.streamtype`` (same values)."""
BITRATE_FLOOR_KBPS = 32
FIXED_OUTPUT = {
    "videoencode": 100,
    "audiobitrate": 128,
    "audiochannel": 2,
    "audiosample": 48000,
    "audioformat": 2,
}


class Fields:
    """Typed access to one JSON object, failing with ``code`` and the field's dotted path."""

    def __init__(self, data: object, path: str, code: int) -> None:
        if not isinstance(data, dict):
            raise JoyError(code, f"{path or 'body'} must be a JSON object")
        self.data: dict[str, Any] = data
        self.path = path
        self.code = code

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> JoyError:
        return JoyError(self.code, f"{self._name(key)} {message}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise self.fail(key, "is required")
            return default
        if type(value) is not int:
            raise self.fail(key, "must be an integer")
        if not lo <= value <= hi:
            raise self.fail(key, f"must be in [{lo}, {hi}]")
        return value

    def opt_integer(self, key: str, lo: int, hi: int) -> int | None:
        return self.integer(key, lo, hi) if self.has(key) else None

    def number(self, key: str, lo: float, hi: float, default: float) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if type(value) not in (int, float) or not lo <= value <= hi:
            raise self.fail(key, f"must be a number in [{lo}, {hi}]")
        return float(value)

    def text(self, key: str, max_len: int = ID_MAX, *, required: bool = True) -> str:
        value = self.data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value or len(value.encode()) > max_len:
            raise self.fail(key, f"must be a non-empty string of at most {max_len} bytes")
        return value

    def opt_text(self, key: str, max_len: int = ID_MAX) -> str | None:
        return self.text(key, max_len) if self.has(key) else None

    def color(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        ok = (
            isinstance(value, str)
            and len(value) == 6
            and (value.isupper() or value.islower() or value.isdigit())
        )
        if not ok or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise self.fail(key, "must be an RGB colour 000000-FFFFFF (one letter case)")
        return str(value)

    def obj(self, key: str, *, required: bool = False) -> Fields | None:
        if not self.has(key):
            if required:
                raise self.fail(key, "is required")
            return None
        return Fields(self.data[key], self._name(key), self.code)

    def objects(self, key: str, max_items: int) -> list[Fields]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > max_items:
            raise self.fail(key, f"must be an array of at most {max_items} objects")
        return [Fields(v, f"{self._name(key)}[{i}]", self.code) for i, v in enumerate(value)]


@dataclass(frozen=True)
class MixParams:
    """A checked ``mixconfig``: the picture, the encoders, and who is heard and seen."""

    config: JoyyMixConfig
    media: MediaSelection
    video: VideoEncoding
    audio: AudioEncoding
    users: UserSelection
    other_rooms: tuple[str, ...]


def _input(f: Fields) -> JoyyInput:
    crop = {
        k: f.opt_integer(k, 1 if k in ("cropW", "cropH") else 0, COORD_MAX)
        for k in ("cropX", "cropY", "cropW", "cropH")
    }
    if any(v is not None for v in crop.values()) and any(v is None for v in crop.values()):
        raise f.fail("cropX", "cropX, cropY, cropW and cropH go together")
    streamtype = f.integer("streamtype", 0, 2, 0)
    audio = streamtype == INPUT_STREAM_TYPE_AUDIO
    return JoyyInput(
        uid=f.text("uid"),
        roomid=f.opt_text("roomid"),
        streamtype=streamtype,
        z_order=f.integer("zOrder", 0, MAX_Z_ORDER, 0),
        layout_x=f.integer("layoutX", 0, COORD_MAX, 0 if audio else None),
        layout_y=f.integer("layoutY", 0, COORD_MAX, 0 if audio else None),
        layout_w=f.integer("layoutW", 1, COORD_MAX, 1 if audio else None),
        layout_h=f.integer("layoutH", 1, COORD_MAX, 1 if audio else None),
        crop=f.integer("crop", 0, max(CROP_MODES), 0),
        crop_x=crop["cropX"],
        crop_y=crop["cropY"],
        crop_w=crop["cropW"],
        crop_h=crop["cropH"],
        alpha=f.number("alpha", *ALPHA_RANGE, 1.0),
    )


def _text_common(f: Fields) -> dict[str, Any]:
    font = f.opt_text("font")
    if font is not None and font != "NotoSansCJK":
        raise f.fail("font", 'only "NotoSansCJK" is supported')
    return {
        "x": f.integer("x", 0, COORD_MAX - 1),
        "y": f.integer("y", 0, COORD_MAX - 1),
        "size": f.integer("size", 1, FONT_SIZE_MAX),
        "font": font,
        "color": f.color("color"),
        "background_color": f.color("backgroundColor"),
        "alpha": f.number("alpha", *ALPHA_RANGE, 1.0),
    }


def _image_url(f: Fields, key: str = "url") -> str:
    return f.text(key, URL_MAX_BYTES)


def _watermarks(
    out: Fields,
) -> tuple[JoyyTimestampMark | None, tuple[JoyyTextMark, ...], tuple[JoyyImageMark, ...]]:
    wm = out.obj("watermark")
    if wm is None:
        return None, (), ()
    ts = None
    tsf = wm.obj("timestamp")
    if tsf is not None:
        fmt = tsf.text("format")
        if fmt not in TIMESTAMP_FORMATS:
            raise tsf.fail("format", f"must be one of {sorted(TIMESTAMP_FORMATS)}")
        ts = JoyyTimestampMark(format=fmt, **_text_common(tsf))
    texts = tuple(
        JoyyTextMark(content=t.text("content", 512), **_text_common(t)) for t in wm.objects("textList", 16)
    )
    images = tuple(
        JoyyImageMark(
            x=i.integer("x", 0, COORD_MAX - 1),
            y=i.integer("y", 0, COORD_MAX - 1),
            width=i.integer("width", 1, COORD_MAX - 1),
            height=i.integer("height", 1, COORD_MAX - 1),
            url=_image_url(i),
            scale=i.integer("scale", 0, max(IMAGE_SCALE_MODES)),
            alpha=i.number("alpha", *ALPHA_RANGE, 1.0),
        )
        for i in wm.objects("imageList", 16)
    )
    return ts, texts, images


def _encoders(out: Fields, media: MediaSelection) -> tuple[VideoEncoding, AudioEncoding, int, int]:
    for key, value in FIXED_OUTPUT.items():
        if out.has(key) and out.data[key] != value:
            raise out.fail(key, f"supports only the value {value}")
    if not media.video:
        w, h = AUDIO_ONLY_CANVAS
        return VideoEncoding(width=w, height=h), AudioEncoding(48000, 2, 128), w, h
    width = round_video_dimension(out.integer("videowidth", 16, 1920))
    height = round_video_dimension(out.integer("videoheight", 16, 1920))
    bitrate = out.integer("videobitrate", 1, 10000)
    fps = min(out.integer("videofps", 1, 10**6, 15), 60)
    gop_frames = out.integer("videogop", 1, 999, 30)
    gop_s = min(max(1, math.ceil(gop_frames / fps)), 60)
    video = VideoEncoding(
        width=width, height=height, fps=fps, bitrate_kbps=max(bitrate, BITRATE_FLOOR_KBPS), gop=float(gop_s)
    )
    return video, AudioEncoding(48000, 2, 128), width, height


def mix_params(raw: object, room_id: str, record_media: MediaSelection) -> MixParams:
    """Check ``mixconfig`` for a mix of ``room_id`` recording ``record_media`` (from ``recordtype``)."""
    f = Fields(raw, "mixconfig", MIX_CODE)
    out = f.obj("output", required=True)
    assert out is not None
    out_media = MEDIA_BY_TYPE[out.integer("streamtype", 0, 2, 0)]
    audio = record_media.audio and out_media.audio
    video = record_media.video and out_media.video
    if not (audio or video):
        raise f.fail("output.streamtype", "and recordtype leave nothing to record")
    media = (
        MediaSelection.AUDIO_VIDEO
        if audio and video
        else MediaSelection.AUDIO_ONLY
        if audio
        else MediaSelection.VIDEO_ONLY
    )
    input_key = "input" if f.has("input") else "intput"
    template = f.opt_integer("templateid", min(TEMPLATE_IDS), max(TEMPLATE_IDS))
    inputs = [_input(i) for i in f.objects(input_key, 64)]
    if template is not None and inputs:
        raise f.fail("templateid", "and input exclude each other")
    if template is None and not inputs and media.video:
        raise f.fail("templateid", "or input is required")
    layers = [i for i in inputs if i.streamtype != INPUT_STREAM_TYPE_AUDIO]
    if len(layers) > MAX_Z_ORDER + 1:
        raise f.fail(input_key, f"holds at most {MAX_Z_ORDER + 1} pictures")
    video_enc, audio_enc, width, height = _encoders(out, media)
    patch = out.integer("patch", 0, max(PATCH_MODES), 0)
    patch_url = _image_url(out, "patchUrl") if out.has("patchUrl") else None
    if patch == 3 and patch_url is None:
        raise out.fail("patchUrl", "is required with patch 3")
    bg = out.obj("background")
    bg_image = bg.obj("image") if bg is not None else None
    ts, texts, images = _watermarks(out)
    sei = out.data.get("base64seidata")
    if sei is not None and (not isinstance(sei, str) or len(sei) > 4096):
        raise out.fail("base64seidata", "must be a Base64 string of at most 2048 bytes decoded")
    config = JoyyMixConfig(
        width=width,
        height=height,
        template_id=template,
        inputs=tuple(inputs),
        patch=patch,
        patch_url=patch_url,
        background_color=bg.color("color") if bg is not None else None,
        background_image_url=_image_url(bg_image) if bg_image is not None else None,
        background_image_scale=bg_image.integer("scale", 0, max(IMAGE_SCALE_MODES))
        if bg_image is not None
        else 0,
        timestamp=ts,
        texts=texts,
        images=images,
    )
    if inputs:
        # With inputs, only the listed users are seen (streamtype 0/1) and heard (0/2), in the
        # task's room and in the other rooms named (the filters go by user id in every room).
        users = UserSelection(
            audio=UserFilter.of(i.uid for i in inputs if i.uid and i.streamtype in (0, 2)),
            video=UserFilter.of(i.uid for i in inputs if i.uid and i.streamtype in (0, 1)),
        )
    else:
        users = UserSelection()
    others = tuple(sorted({i.roomid for i in inputs if i.roomid and i.roomid != room_id}))
    return MixParams(config, media, video_enc, audio_enc, users, others)
