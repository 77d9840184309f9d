"""TRTC recording layouts as data: the ``trtc.recording`` template draws exactly what the closure
that ``layout_ref`` returned before layouts became data drew, for the same request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomcast.api.trtc import layouts as tl
from roomcast.api.trtc.params import parse
from roomcast.api.trtc.recording_params import (
    TRTC_RECORDING_TEMPLATE,
    CreateCloudRecordingParams,
    MixLayoutParamsModel,
    layout_ref,
    recording_spec,
)
from roomcast.domain.errors import InvalidArgument
from roomcast.domain.layout import Canvas, Layout, Participant
from roomcast.domain.layout_templates import LayoutFunction, build_layout
from roomcast.domain.recording import LayoutRef, spec_from_json, spec_to_json, validate_spec


def closure_before(mix: MixLayoutParamsModel | None) -> LayoutFunction:
    """``layout_ref(mix).function`` as it was when LayoutRef held a closure (verbatim)."""
    model = mix or MixLayoutParamsModel(MixLayoutMode=tl.RECORDING_DEFAULT_MIX_LAYOUT_MODE)
    params = model.to_layout_params()
    audio_only_hidden = model.PureAudioDisableLayout and model.MixLayoutMode != tl.MIX_LAYOUT_CUSTOM

    def apply(participants: Sequence[Participant], canvas: Canvas) -> Layout:
        shown = [p for p in participants if p.has_camera or p.has_screen or not audio_only_hidden]
        return tl.recording_layout(shown, params, canvas.width, canvas.height)

    return apply


WATERMARKS = [
    {
        "WaterMarkType": 0,
        "WaterMarkImage": {
            "WaterMarkUrl": "https://img.example/w.png",
            "Top": 10,
            "Left": 10,
            "Width": 80,
            "Height": 40,
        },
    },
    {
        "WaterMarkType": 1,
        "WaterMarkChar": {
            "Top": 300,
            "Left": 20,
            "Width": 200,
            "Height": 30,
            "Chars": "roomcast",
            "FontColor": "#FF0000",
            "BackGroundColor": "#000000",
        },
    },
    {"WaterMarkType": 2, "WaterMarkTimestamp": {"Pos": 3, "TimeZone": -5}},
]
CUSTOM_PANES = [
    {"Top": 0, "Left": 0, "Width": 640, "Height": 360, "UserId": "u3", "RenderMode": 2, "ImageLayer": 1},
    {"Top": 20, "Left": 20, "Width": 160, "Height": 90, "Alpha": 128, "ImageLayer": 2},
    {
        "Top": 20,
        "Left": 200,
        "Width": 160,
        "Height": 90,
        "MediaId": 1,
        "SubBackgroundImage": "https://i/s.png",
    },
    {"Top": 200, "Left": 400, "Width": 300, "Height": 300, "UserId": "absent", "ImageLayer": 3},
]
MIX_LAYOUT_PARAMS: list[dict[str, Any] | None] = [
    None,
    {"MixLayoutMode": 1},
    {"MixLayoutMode": 1, "MaxResolutionUserId": "u2", "RenderMode": 2, "PlaceHolderMode": 1},
    {"MixLayoutMode": 1, "MediaId": 1, "PureAudioDisableLayout": True, "BackGroundColor": "#102030"},
    {"MixLayoutMode": 2},
    {"MixLayoutMode": 2, "MaxResolutionUserId": "u3", "MaxResolutionUserAlign": 1, "MediaId": 1},
    {
        "MixLayoutMode": 2,
        "MaxResolutionUserId": "u1",
        "PlaceHolderMode": 1,
        "DefaultSubBackgroundImage": "https://img.example/ph.png",
        "PureAudioDisableLayout": True,
    },
    {"MixLayoutMode": 3},
    {"MixLayoutMode": 3, "PureAudioDisableLayout": True, "RenderMode": 0, "WaterMarkList": WATERMARKS},
    {
        "MixLayoutMode": 3,
        "BackgroundImageUrl": "https://img.example/bg.jpg",
        "BackgroundImageRenderMode": 2,
        "RenderMode": 3,
    },
    {"MixLayoutMode": 4, "MixLayoutList": CUSTOM_PANES},
    {"MixLayoutMode": 4, "MixLayoutList": CUSTOM_PANES, "PureAudioDisableLayout": True, "PlaceHolderMode": 1},
]


def room(n: int) -> list[Participant]:
    """``n`` anchors: some audio-only, some sharing a screen, one with the camera off."""
    out = []
    for i in range(1, n + 1):
        out.append(
            Participant(
                f"u{i}",
                join_order=i,
                has_camera=i % 4 != 2,
                has_screen=i % 3 == 0,
                has_audio=i != 5,
            )
        )
    return out


ROOMS = [room(0), room(1), room(3), room(6), room(20)]
CANVASES = [Canvas(360, 640), Canvas(1280, 720)]


@pytest.mark.parametrize("mix", MIX_LAYOUT_PARAMS, ids=lambda m: json.dumps(m, sort_keys=True)[:60])
def test_template_draws_what_the_closure_drew(mix: dict[str, Any] | None) -> None:
    model = None if mix is None else MixLayoutParamsModel.model_validate(mix)
    ref = layout_ref(model)
    assert ref.preset == TRTC_RECORDING_TEMPLATE
    stored = LayoutRef(**json.loads(json.dumps({"preset": ref.preset, "params": dict(ref.params)})))
    before = closure_before(model)
    after = build_layout(stored)
    for canvas in CANVASES:
        for people in ROOMS:
            assert after(people, canvas) == before(people, canvas)


def test_audio_only_anchors_hidden_except_in_custom() -> None:
    people = room(6)  # u2 publishes no video, u6 only a screen
    hidden = build_layout(layout_ref(MixLayoutParamsModel(MixLayoutMode=3, PureAudioDisableLayout=True)))
    shown = build_layout(layout_ref(MixLayoutParamsModel(MixLayoutMode=3)))
    canvas = Canvas(640, 360)
    assert {p.user_id for p in hidden(people, canvas).panes} == {"u1", "u3", "u4", "u5", "u6"}
    assert {p.user_id for p in shown(people, canvas).panes} == {f"u{i}" for i in range(1, 7)}
    assert (
        layout_ref(MixLayoutParamsModel.model_validate(MIX_LAYOUT_PARAMS[-1])).params["hide_audio_only"]
        is False
    )


def test_spec_from_a_request_round_trips() -> None:
    body = {
        "SdkAppId": 1400000001,
        "RoomId": "3560",
        "UserId": "rec",
        "UserSig": "sig",
        "RecordParams": {"RecordMode": 2},
        "StorageParams": {"CloudVod": {"TencentVod": {}}},
        "MixTranscodeParams": {
            "VideoParams": {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 500000, "Gop": 2}
        },
        "MixLayoutParams": {
            "MixLayoutMode": 4,
            "MixLayoutList": CUSTOM_PANES[:3],
            "WaterMarkList": WATERMARKS,
        },
    }
    spec = recording_spec(parse(CreateCloudRecordingParams, body))
    back = spec_from_json(json.loads(json.dumps(spec_to_json(spec))))
    assert back == spec
    validate_spec(back)


@pytest.mark.parametrize(
    "params",
    [
        {"MixLayoutParams": {"MixLayoutMode": 9}},
        {"MixLayoutParams": {"MixLayoutMode": 4}},  # custom needs MixLayoutList
        {"MixLayoutParams": {"MixLayoutMode": 3, "Bogus": 1}},
        {"MixLayoutParams": "grid"},
        {},
        {"MixLayoutParams": {"MixLayoutMode": 3}, "hide_audio_only": "yes"},
        {"MixLayoutParams": {"MixLayoutMode": 3}, "extra": 1},
    ],
)
def test_bad_stored_params_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument) as err:
        build_layout(LayoutRef(TRTC_RECORDING_TEMPLATE, params))
    assert err.value.subject == "layout"


pane_lists = st.lists(
    st.fixed_dictionaries(
        {"Top": st.integers(0, 400), "Left": st.integers(0, 700), "Width": st.integers(0, 700)},
        optional={
            "Height": st.integers(0, 400),
            "UserId": st.sampled_from(["u1", "u2", "u3", "u9", ""]),
            "Alpha": st.integers(0, 255),
            "RenderMode": st.integers(0, 3),
            "MediaId": st.integers(0, 1),
            "ImageLayer": st.integers(0, 5),
            "SubBackgroundImage": st.just("https://i/x.png"),
        },
    ).map(lambda d: {"Height": 100, **d}),
    min_size=1,
    max_size=6,
)
mix_params = st.fixed_dictionaries(
    {"MixLayoutMode": st.integers(1, 4), "MixLayoutList": pane_lists},
    optional={
        "MaxResolutionUserId": st.sampled_from(["u1", "u3", "u9"]),
        "MediaId": st.integers(0, 1),
        "PlaceHolderMode": st.integers(0, 1),
        "RenderMode": st.integers(0, 3),
        "BackgroundImageRenderMode": st.integers(0, 3),
        "MaxResolutionUserAlign": st.integers(0, 1),
        "PureAudioDisableLayout": st.booleans(),
        "DefaultSubBackgroundImage": st.just("https://i/d.png"),
        "BackGroundColor": st.just("#abcdef"),
    },
)


@settings(max_examples=60, deadline=None)
@given(mix_params, st.integers(0, 12))
def test_template_matches_closure_property(mix: dict[str, Any], n: int) -> None:
    model = MixLayoutParamsModel.model_validate(mix)
    stored = json.loads(json.dumps(spec_to_json_layout(layout_ref(model))))
    after = build_layout(LayoutRef(**stored))
    canvas = Canvas(720, 480)
    assert after(room(n), canvas) == closure_before(model)(room(n), canvas)


def spec_to_json_layout(ref: LayoutRef) -> dict[str, Any]:
    return {"preset": ref.preset, "params": dict(ref.params)}
