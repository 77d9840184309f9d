"""The stored form of a RecordingSpec: versioned JSON that round-trips and refuses bad documents."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomcast.domain.errors import InvalidArgument
from roomcast.domain.recording import (
    SPEC_VERSION,
    AudioEncoding,
    AudioFill,
    FileNaming,
    FillPolicy,
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
    VideoFill,
    spec_from_json,
    spec_to_json,
)

EXAMPLE = RecordingSpec(
    mode=RecordingMode.MIXED,
    users=UserSelection(
        audio=UserFilter(allow=frozenset({"b", "a"}), deny=frozenset({"c"})),
        video=UserFilter(deny_prefixes=frozenset({"bot-", "agent-"})),
    ),
    streams=StreamSelection(screen=False),
    media=MediaSelection.AUDIO_VIDEO,
    outputs=(OutputFormat.HLS, OutputFormat.MP4),
    video=VideoEncoding(640, 360, 15, 800, 2.5, "superfast"),
    audio=AudioEncoding(44100, 1, 64),
    layout=LayoutRef("grid", {"max_tiles": 4, "order": ["b", "a"]}),
    naming=FileNaming("{task_id}/{app}_{room_id}_mix_{start_ms}_{index}"),
    limits=RecordingLimits(start_timeout=60.0, idle_timeout=60.0, max_file_duration=3600.0),
    fill=FillPolicy(VideoFill.IMAGE, "https://img.example/p.png"),
)

# Version 1 as written by the first release: it must keep decoding to the same spec.
GOLDEN_V1: dict[str, Any] = {
    "v": 1,
    "mode": "mixed",
    "users": {
        "audio": {"allow": ["a", "b"], "deny": ["c"], "allow_prefixes": [], "deny_prefixes": []},
        "video": {"allow": None, "deny": [], "allow_prefixes": [], "deny_prefixes": ["agent-", "bot-"]},
    },
    "streams": {"audio": True, "camera": True, "screen": False},
    "media": "audio_video",
    "separate_files": False,
    "outputs": ["hls", "mp4"],
    "video": {"width": 640, "height": 360, "fps": 15, "bitrate_kbps": 800, "gop": 2.5, "preset": "superfast"},
    "audio": {"sample_rate": 44100, "channels": 1, "bitrate_kbps": 64},
    "layout": {"preset": "grid", "params": {"max_tiles": 4, "order": ["b", "a"]}},
    "naming": {"template": "{task_id}/{app}_{room_id}_mix_{start_ms}_{index}"},
    "limits": {
        "start_timeout": 60.0,
        "idle_timeout": 60.0,
        "max_file_duration": 3600.0,
        "hls_segment_duration": 6.0,
        "max_duration": 0.0,
    },
    "fill": {"video": "image", "image": "https://img.example/p.png", "audio": "silence"},
}


def test_golden_v1_document() -> None:
    # fields added since (with their defaults) are written, and absent ones decode to defaults
    assert spec_to_json(EXAMPLE) == {
        **GOLDEN_V1,
        "extra_rooms": [],
        "max_audio_sources": 0,
        "naming": {**GOLDEN_V1["naming"], "formats": {}},
        "limits": {**GOLDEN_V1["limits"], "file_durations": {}},
        "video": {**GOLDEN_V1["video"], "max_height": 0},
    }
    assert spec_from_json(GOLDEN_V1) == EXAMPLE


def test_loudest_voices_and_per_format_outputs_round_trip() -> None:
    spec = replace(
        EXAMPLE,
        max_audio_sources=3,
        naming=FileNaming("a/{stream}", formats={"mp4": "a/MP4/{stream}", "hls": "a/HLS/{stream}"}),
        limits=RecordingLimits(max_file_duration=60.0, file_durations={"mp4": 60.0, "hls": 0.0}),
    )
    doc = json.loads(json.dumps(spec_to_json(spec)))
    assert doc["max_audio_sources"] == 3 and doc["naming"]["formats"]["hls"] == "a/HLS/{stream}"
    assert doc["limits"]["file_durations"] == {"mp4": 60.0, "hls": 0.0}
    back = spec_from_json(doc)
    assert back == spec and back.max_audio_sources == 3
    assert spec_from_json(GOLDEN_V1).max_audio_sources == 0


def test_extra_rooms_round_trip() -> None:
    spec = replace(EXAMPLE, extra_rooms=("room-b", "room-c"))
    doc = json.loads(json.dumps(spec_to_json(spec)))
    assert doc["extra_rooms"] == ["room-b", "room-c"] and doc["v"] == 1
    back = spec_from_json(doc)
    assert back == spec and isinstance(back.extra_rooms, tuple)
    assert spec_from_json(GOLDEN_V1).extra_rooms == ()


def test_json_dumps_round_trip() -> None:
    text = json.dumps(spec_to_json(EXAMPLE), allow_nan=False)
    back = spec_from_json(json.loads(text))
    assert back == EXAMPLE
    assert isinstance(back.users.audio.allow, frozenset) and isinstance(back.outputs, tuple)
    assert back.layout is not None and back.layout.params["order"] == ["b", "a"]


def test_defaults_and_missing_fields() -> None:
    assert spec_from_json(spec_to_json(RecordingSpec())) == RecordingSpec()
    # fields added later with a default need no new version: absent means default
    assert spec_from_json({"v": SPEC_VERSION}) == RecordingSpec()
    assert spec_from_json({"v": 1, "video": {"width": 320, "height": 240}}).video == VideoEncoding(320, 240)


@pytest.mark.parametrize("version", [None, 0, 2, SPEC_VERSION + 1, "1", 1.0, True])
def test_unknown_version(version: Any) -> None:
    doc = spec_to_json(EXAMPLE)
    if version is None:
        del doc["v"]
    else:
        doc["v"] = version
    with pytest.raises(InvalidArgument) as err:
        spec_from_json(doc)
    assert err.value.subject == "spec.v"


def _set(doc: dict[str, Any], path: str | tuple[str, ...], value: Any) -> dict[str, Any]:
    """``doc`` with ``value`` at ``path`` (dotted, or parts: layout parameter keys may hold dots)."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".") if isinstance(path, str) else path
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "subject"),
    [
        ("mode", "bogus", "spec.mode"),
        ("mode", None, "spec.mode"),
        ("users", [], "spec.users"),
        ("users.audio.allow", "abc", "spec.users.audio.allow"),
        ("users.audio.allow", ["a", 1], "spec.users.audio.allow.1"),
        ("users.video.deny", None, "spec.users.video.deny"),
        ("streams.camera", 1, "spec.streams.camera"),
        ("outputs", ["mp4", "avi"], "spec.outputs.1"),
        ("outputs", "mp4", "spec.outputs"),
        ("extra_rooms", ["b", 3], "spec.extra_rooms.1"),
        ("extra_rooms", "b", "spec.extra_rooms"),
        ("video.width", "640", "spec.video.width"),
        ("video.width", 640.5, "spec.video.width"),
        ("video.fps", True, "spec.video.fps"),
        ("video.gop", "2", "spec.video.gop"),
        ("video.gop", math.nan, "spec.video.gop"),
        ("video.gop", math.inf, "spec.video.gop"),
        ("video.codec", "h265", "spec.video.codec"),
        ("extra", 1, "spec.extra"),
        ("layout", "grid", "spec.layout"),
        ("layout.preset", 3, "spec.layout.preset"),
        ("layout.params", ["max_tiles", 4], "spec.layout.params"),
        ("layout.params.order", {1, 2}, "spec.layout.params.order"),
        ("naming", {"template": None}, "spec.naming.template"),
        ("limits.idle_timeout", None, "spec.limits.idle_timeout"),
        ("fill.video", "blur", "spec.fill.video"),
        ("fill.image", 7, "spec.fill.image"),
    ],
)
def test_malformed_documents_name_the_field(path: str, value: Any, subject: str) -> None:
    doc = _set(spec_to_json(EXAMPLE), path, value)
    with pytest.raises(InvalidArgument) as err:
        spec_from_json(doc)
    assert err.value.subject == subject


@pytest.mark.parametrize("doc", [[], "spec", None, 1])
def test_not_an_object(doc: Any) -> None:
    with pytest.raises(InvalidArgument) as err:
        spec_from_json(doc)
    assert err.value.subject == "spec"


def test_float_fields_take_integers() -> None:
    doc = _set(spec_to_json(EXAMPLE), "video.gop", 3)
    gop = spec_from_json(doc).video.gop
    assert gop == 3.0 and isinstance(gop, float)


def test_non_json_values_are_refused_when_encoding() -> None:
    with pytest.raises(InvalidArgument) as err:
        spec_to_json(RecordingSpec(limits=RecordingLimits(idle_timeout=math.inf)))
    assert err.value.subject == "spec.limits.idle_timeout"


# ---------------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
names = st.frozensets(st.text(max_size=10), max_size=4)
finite = st.floats(allow_nan=False, allow_infinity=False)
user_filters = st.builds(
    UserFilter,
    allow=st.none() | names,
    deny=names,
    allow_prefixes=names,
    deny_prefixes=names,
)
specs = st.builds(
    RecordingSpec,
    mode=st.sampled_from(RecordingMode),
    users=st.builds(UserSelection, audio=user_filters, video=user_filters),
    streams=st.builds(StreamSelection, audio=st.booleans(), camera=st.booleans(), screen=st.booleans()),
    media=st.sampled_from(MediaSelection),
    separate_files=st.booleans(),
    outputs=st.lists(st.sampled_from(OutputFormat), max_size=5).map(tuple),
    video=st.builds(
        VideoEncoding,
        width=st.integers(0, 4000),
        height=st.integers(0, 4000),
        fps=st.integers(-5, 120),
        bitrate_kbps=st.integers(0, 10**6),
        gop=finite,
        preset=st.text(max_size=10),
    ),
    audio=st.builds(
        AudioEncoding, sample_rate=st.integers(), channels=st.integers(), bitrate_kbps=st.integers()
    ),
    layout=st.none()
    | st.builds(
        LayoutRef, preset=st.text(max_size=16), params=st.dictionaries(st.text(max_size=8), json_values)
    ),
    naming=st.builds(FileNaming, template=st.text(max_size=40)),
    limits=st.builds(
        RecordingLimits,
        start_timeout=finite,
        idle_timeout=finite,
        max_file_duration=finite,
        hls_segment_duration=finite,
        max_duration=finite,
    ),
    fill=st.builds(
        FillPolicy,
        video=st.sampled_from(VideoFill),
        image=st.none() | st.text(max_size=20),
        audio=st.sampled_from(AudioFill),
    ),
    extra_rooms=st.lists(st.text(max_size=8), max_size=3).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(specs)
def test_round_trip_property(spec: RecordingSpec) -> None:
    doc = spec_to_json(spec)
    assert doc["v"] == SPEC_VERSION
    assert spec_from_json(json.loads(json.dumps(doc, allow_nan=False))) == spec
    assert spec_to_json(spec_from_json(doc)) == doc  # canonical: sets sorted, tuples as lists


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, str(i)))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), specs)
def test_corrupted_documents_raise_only_invalid_argument(data: st.DataObject, spec: RecordingSpec) -> None:
    doc = spec_to_json(spec)
    path = data.draw(st.sampled_from([p for p in _paths(doc) if p != ("v",)]))
    bad = _set(doc, path, data.draw(json_values))
    try:
        spec_from_json(bad)
    except InvalidArgument as exc:
        assert exc.subject.startswith("spec")
