"""RecordingSpec validation, user filters and file naming."""

from __future__ import annotations

from dataclasses import replace

import pytest

from roomcast.domain.errors import InvalidArgument
from roomcast.domain.recording import (
    FileNaming,
    FillPolicy,
    MediaSelection,
    OutputFormat,
    RecordingLimits,
    RecordingMode,
    RecordingSpec,
    StreamSelection,
    UserFilter,
    UserSelection,
    VideoEncoding,
    VideoFill,
    validate_spec,
)


def test_mixed_spec_with_extra_rooms_is_valid() -> None:
    spec = RecordingSpec(RecordingMode.MIXED, video=VideoEncoding(640, 360), extra_rooms=("b", "c"))
    assert validate_spec(spec).extra_rooms == ("b", "c")


def test_mix_of_the_loudest_voices_reaches_the_mixer() -> None:
    from roomcast.media.mixed import settings_from_spec

    mix = RecordingSpec(RecordingMode.MIXED, video=VideoEncoding(640, 360))
    assert settings_from_spec(validate_spec(replace(mix, max_audio_sources=3))).max_audio_sources == 3
    assert settings_from_spec(mix).max_audio_sources is None  # 0: everyone


def test_defaults_are_valid() -> None:
    spec = validate_spec(RecordingSpec())
    assert spec.mode is RecordingMode.INDIVIDUAL and spec.outputs == (OutputFormat.MP4,)
    assert spec.records_audio and spec.records_video


@pytest.mark.parametrize(
    ("spec", "subject"),
    [
        (RecordingSpec(outputs=()), "outputs"),
        (RecordingSpec(outputs=(OutputFormat.MP4, OutputFormat.MP4)), "outputs"),
        (RecordingSpec(video=VideoEncoding(fps=0)), "video.fps"),
        (RecordingSpec(video=VideoEncoding(width=641, height=360)), "video.width"),
        (RecordingSpec(video=VideoEncoding(preset="warp")), "video.preset"),
        (RecordingSpec(mode=RecordingMode.MIXED), "video.width"),
        (RecordingSpec(mode=RecordingMode.MIXED, outputs=(OutputFormat.WEBM,)), "outputs"),
        (RecordingSpec(limits=RecordingLimits(idle_timeout=0)), "limits.idle_timeout"),
        (RecordingSpec(limits=RecordingLimits(max_file_duration=0.5)), "limits.max_file_duration"),
        (RecordingSpec(limits=RecordingLimits(hls_segment_duration=0)), "limits.hls_segment_duration"),
        (RecordingSpec(fill=FillPolicy(video=VideoFill.IMAGE)), "fill.image"),
        (RecordingSpec(naming=FileNaming("{task_id}_{nope}")), "naming.template"),
        (RecordingSpec(naming=FileNaming("../{task_id}")), "naming.template"),
        (RecordingSpec(naming=FileNaming("{task_id")), "naming.template"),
        (
            RecordingSpec(streams=StreamSelection(audio=False), media=MediaSelection.AUDIO_ONLY),
            "media",
        ),
        (RecordingSpec(users=UserSelection(audio=UserFilter.of(["a", ""]))), "users.audio"),
        (RecordingSpec(extra_rooms=("b",)), "extra_rooms"),  # individual mode has no mix
        (
            RecordingSpec(RecordingMode.MIXED, video=VideoEncoding(640, 360), extra_rooms=("b", "b")),
            "extra_rooms",
        ),
        (RecordingSpec(RecordingMode.MIXED, video=VideoEncoding(640, 360), extra_rooms=("",)), "extra_rooms"),
        (RecordingSpec(naming=FileNaming(formats={"flv": "{task_id}"})), "naming.formats"),
        (RecordingSpec(naming=FileNaming(formats={"hls": "{task_id}/{x}"})), "naming.formats.hls"),
        (RecordingSpec(limits=RecordingLimits(file_durations={"mp4": 0.5})), "limits.file_durations.mp4"),
        (RecordingSpec(limits=RecordingLimits(file_durations={"avi": 60.0})), "limits.file_durations"),
        (RecordingSpec(max_audio_sources=3), "max_audio_sources"),  # individual mode has no mix
        (RecordingSpec(video=VideoEncoding(max_height=8)), "video.max_height"),
        (
            RecordingSpec(RecordingMode.MIXED, video=VideoEncoding(640, 360, max_height=90)),
            "video.max_height",
        ),
        (
            RecordingSpec(RecordingMode.MIXED, video=VideoEncoding(640, 360), max_audio_sources=-1),
            "max_audio_sources",
        ),
    ],
)
def test_invalid_specs_name_the_field(spec: RecordingSpec, subject: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_spec(spec)
    assert err.value.subject == subject


def test_user_filters_deny_wins_and_lists_are_separate() -> None:
    users = UserSelection(audio=UserFilter.of(["a", "b"], deny=["b"]), video=UserFilter.of(deny=["a"]))
    assert users.audio.admits("a") and not users.audio.admits("b") and not users.audio.admits("c")
    assert not users.video.admits("a") and users.video.admits("c")
    assert users.admits("a") and users.admits("c")
    assert UserSelection.same(deny=["x"]).video.admits("y")


def test_naming_substitutes_and_sanitizes() -> None:
    naming = FileNaming("{task_id}/{room_id}_{user_id}_{stream}_{index}")
    out = naming.render(task_id="t1", room_id="r/../x", user_id="u 1", stream="camera", index=2)
    assert out == "t1/r_.._x_u_1_camera_2"
    assert ".." not in out.split("/")
