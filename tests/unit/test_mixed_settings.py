"""Mixer glue that needs no media: layout references and settings from a recording spec."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from roomcast.domain.errors import InvalidArgument
from roomcast.domain.layout import Canvas, CustomSlot, Participant, Rect, grid
from roomcast.domain.layout_templates import preset_params
from roomcast.domain.recording import (
    LayoutRef,
    OutputFormat,
    RecordingMode,
    RecordingSpec,
    UserFilter,
    UserSelection,
    VideoEncoding,
)
from roomcast.media.mixed import audio_codec_for, resolve_layout, settings_from_spec

PEOPLE = [Participant(f"u{i}", join_order=i) for i in range(1, 4)]
CANVAS = Canvas(640, 360)


def test_resolve_named_presets() -> None:
    assert resolve_layout(None)(PEOPLE, CANVAS) == grid(PEOPLE, CANVAS)
    assert len(resolve_layout(LayoutRef("grid", {"max_tiles": 2}))(PEOPLE, CANVAS).panes) == 2
    assert resolve_layout(LayoutRef("floating"))(PEOPLE, CANVAS).panes[0].rect == Rect(0, 0, 640, 360)
    slots = [CustomSlot(Rect(0, 0, 100, 100), user_id="u2")]
    lay = resolve_layout(LayoutRef("custom", preset_params("custom", slots=slots)))(PEOPLE, CANVAS)
    assert [p.user_id for p in lay.panes] == ["u2"]
    with pytest.raises(InvalidArgument) as err:
        resolve_layout(LayoutRef("nope"))
    assert err.value.subject == "layout"


def test_layout_params_must_be_json() -> None:
    with pytest.raises(InvalidArgument) as err:
        LayoutRef("custom", {"slots": [CustomSlot(Rect(0, 0, 100, 100))]})
    assert err.value.subject == "layout.params.slots.0"
    assert LayoutRef("grid", {"order": ("b", "a")}).params == {"order": ["b", "a"]}


def test_settings_from_spec() -> None:
    spec = RecordingSpec(
        mode=RecordingMode.MIXED,
        outputs=(OutputFormat.MP4, OutputFormat.MP3),
        video=VideoEncoding(1280, 720, 30, 2000, 2.0, "superfast"),
        users=UserSelection(audio=UserFilter.of(deny=["u2"]), video=UserFilter.of(allow=["u1"])),
    )
    s = settings_from_spec(spec)
    assert (s.canvas.width, s.canvas.height, s.fps, s.preset) == (1280, 720, 30, "superfast")
    assert s.record_video and s.record_audio
    assert s.audio_users is not None and not s.audio_users("u2") and s.audio_users("u3")
    assert s.video_users is not None and s.video_users("u1") and not s.video_users("u3")
    assert [audio_codec_for(f) for f in s.outputs] == ["aac", "mp3"]
    assert s.extra_rooms == ()
    assert settings_from_spec(replace(spec, extra_rooms=("b",))).extra_rooms == ("b",)
    audio_only = settings_from_spec(
        RecordingSpec(mode=RecordingMode.MIXED, outputs=(OutputFormat.M4A,), video=VideoEncoding(640, 360))
    )
    assert not audio_only.record_video


def test_mixed_cost_counts_the_video_tracks_of_every_room() -> None:
    from roomcast.media.mixed_job import DECODE_VIDEO, mixed_cost
    from roomcast.rtc.track import TrackInfo, TrackKind

    spec = RecordingSpec(mode=RecordingMode.MIXED, video=VideoEncoding(1280, 720, 30))
    cams = [TrackInfo("app", f"r{i % 2}", f"u{i}", TrackKind.CAMERA, "video/VP8") for i in range(6)]
    mics = [TrackInfo("app", "r0", f"u{i}", TrackKind.AUDIO, "audio/opus") for i in range(6)]
    base = mixed_cost(spec, [])
    assert base == pytest.approx(0.4)
    assert mixed_cost(spec, cams[:4] + mics) == base  # a 4-up mix is in the composite figure
    assert mixed_cost(spec, cams + mics) == pytest.approx(base + 2 * DECODE_VIDEO)
    only_u0 = replace(spec, users=UserSelection(video=UserFilter.of(allow=["u0"])))
    assert mixed_cost(only_u0, cams) == base


def test_engine_estimate_lists_the_extra_rooms(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from roomcast.media.engine import RecordingEngine
    from roomcast.media.mixed_job import DECODE_VIDEO, register_mixed_mode
    from roomcast.rtc.events import EventBus
    from roomcast.rtc.track import TrackInfo, TrackKind

    class Rooms:
        """Track lists by room (the part of RoomManager that the estimate reads)."""

        events = EventBus()

        def list_tracks(self, app_key: str, room_id: str) -> list[TrackInfo]:
            n = {"r0": 4, "r1": 3, "r2": 5}.get(room_id, 0)
            return [
                TrackInfo(app_key, room_id, f"{room_id}u{i}", TrackKind.CAMERA, "video/H264")
                for i in range(n)
            ]

        def subscribe_track(self, *args: object, **kwargs: object) -> object:
            raise NotImplementedError

    with ThreadPoolExecutor(1) as pool:
        engine = RecordingEngine(Rooms(), tmp_path, executor=pool)  # type: ignore[arg-type]
        register_mixed_mode(engine)
        spec = RecordingSpec(mode=RecordingMode.MIXED, video=VideoEncoding(1280, 720, 30))
        alone = engine.estimate("app", "r0", spec)
        with_r1 = engine.estimate("app", "r0", replace(spec, extra_rooms=("r1",)))
        assert with_r1 == pytest.approx(alone + 3 * DECODE_VIDEO)
