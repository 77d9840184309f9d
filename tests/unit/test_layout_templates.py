"""The layout template registry: generic presets from JSON parameters, dialect templates loaded by
name in any process, and bad references refused when a spec is validated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from roomcast.domain.errors import InvalidArgument
from roomcast.domain.layout import (
    AbsentRule,
    Canvas,
    Color,
    Corner,
    Crop,
    CustomSlot,
    Flow,
    ImageRef,
    Layout,
    MainSelector,
    Participant,
    Placeholder,
    PlaceholderKind,
    Rect,
    RelRect,
    RenderMode,
    Side,
    StreamKind,
    TileStyle,
    custom,
    floating,
    grid,
    screen_share,
    strip,
)
from roomcast.domain.layout_templates import (
    TEMPLATE_MODULES,
    LayoutFunction,
    build_layout,
    layout_template,
    load_template_modules,
    preset_params,
    register_template,
    registered_templates,
)
from roomcast.domain.recording import (
    LayoutRef,
    RecordingMode,
    RecordingSpec,
    VideoEncoding,
    spec_from_json,
    spec_to_json,
    validate_spec,
)

PEOPLE = [
    Participant("u1", 1),
    Participant("u2", 2, has_screen=True),
    Participant("u3", 3, has_camera=False),
    Participant("u4", 4),
]
CANVAS = Canvas(1280, 720)
STYLE = TileStyle(
    render=RenderMode.FIT,
    placeholder=Placeholder(PlaceholderKind.IMAGE, ImageRef("https://i/p.png", RenderMode.STRETCH)),
    fill_color=Color(10, 20, 30),
    alpha=0.5,
)


def through_json(preset: str, **kwargs: Any) -> LayoutFunction:
    params = json.loads(json.dumps(preset_params(preset, **kwargs)))
    return build_layout(LayoutRef(preset, params))


@pytest.mark.parametrize(
    ("preset", "direct", "kwargs"),
    [
        ("grid", grid, {}),
        ("grid", grid, {"max_tiles": 2, "order": ["u3", "u1"], "include_no_video": False, "style": STYLE}),
        ("floating", floating, {}),
        (
            "floating",
            floating,
            {
                "main": MainSelector("u2", StreamKind.SCREEN),
                "per_line": 5,
                "corner": Corner.TOP_RIGHT,
                "flow": Flow.COLUMNS,
                "main_style": STYLE,
            },
        ),
        ("floating", floating, {"main": None}),
        (
            "screen_share",
            screen_share,
            {"main": MainSelector("u2", StreamKind.SCREEN), "main_side": Side.RIGHT},
        ),
        ("screen_share", screen_share, {"bottom_overflow": 8, "side_fraction": 0.25, "small_style": STYLE}),
        ("strip", strip, {"vertical": True, "max_tiles": 3, "slots": 5}),
    ],
)
def test_generic_presets_from_json(preset: str, direct: Any, kwargs: dict[str, Any]) -> None:
    assert through_json(preset, **kwargs)(PEOPLE, CANVAS) == direct(PEOPLE, CANVAS, **kwargs)


def test_custom_slots_from_json() -> None:
    slots = [
        CustomSlot(
            Rect(0, 0, 640, 360), user_id="u2", stream=StreamKind.SCREEN, z=1, crop=Crop(0, 0, 100, 50)
        ),
        CustomSlot(RelRect(0.5, 0.5, 0.5, 0.5), render=RenderMode.STRETCH, alpha=0.25),
        CustomSlot(
            RelRect(0, 0.5, 0.5, 0.5), user_id="gone", room_id="r2", background_image=ImageRef("https://i/b")
        ),
    ]
    params = preset_params("custom", slots=slots, absent=AbsentRule.HIDE, max_slots=2)
    assert params["slots"][0]["rect"]["type"] == "rect" and params["slots"][1]["rect"]["type"] == "rel_rect"
    fn = through_json("custom", slots=slots, absent=AbsentRule.HIDE, max_slots=2)
    assert fn(PEOPLE, CANVAS) == custom(PEOPLE, CANVAS, slots, absent=AbsentRule.HIDE, max_slots=2)


@pytest.mark.parametrize(
    ("ref", "detail"),
    [
        (LayoutRef("nope"), "unknown layout template"),
        (LayoutRef("grid", {"max_tile": 3}), "max_tile"),
        (LayoutRef("grid", {"max_tiles": "3"}), "max_tiles"),
        (LayoutRef("floating", {"corner": "middle"}), "corner"),
        (LayoutRef("floating", {"per_line": "auto"}), "per_line"),
        (LayoutRef("custom", {}), "slots"),
        (LayoutRef("custom", {"slots": [{"rect": {"x": 0, "y": 0, "width": 1, "height": 1}}]}), "type"),
        (
            LayoutRef(
                "custom", {"slots": [{"rect": {"type": "rect", "x": 0, "y": 0, "width": -5, "height": 1}}]}
            ),
            "",
        ),
    ],
)
def test_bad_references_are_invalid_layouts(ref: LayoutRef, detail: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        build_layout(ref)
    assert err.value.subject == "layout" and detail in err.value.message


def mixed(layout: LayoutRef | None) -> RecordingSpec:
    return RecordingSpec(mode=RecordingMode.MIXED, video=VideoEncoding(640, 360), layout=layout)


def test_validate_spec_checks_the_layout() -> None:
    validate_spec(mixed(None))
    validate_spec(mixed(LayoutRef("floating", {"max_small": 3})))
    validate_spec(mixed(LayoutRef("trtc.recording", {"MixLayoutParams": {"MixLayoutMode": 2}})))
    for bad in (
        LayoutRef("nope"),
        LayoutRef("strip", {"vertical": 1}),
        LayoutRef("trtc.recording", {"MixLayoutParams": {"MixLayoutMode": 5}}),
        # builds, but fails when drawn: the unknown template only shows on a canvas
        LayoutRef(
            "sparkrtc.mix", {"layout": {"layout_template": "custom", "layout_panes": [{"video_type": "X"}]}}
        ),
    ):
        with pytest.raises(InvalidArgument) as err:
            validate_spec(mixed(bad))
        assert err.value.subject == "layout", bad


def test_register_template() -> None:
    def only_first(params: Mapping[str, Any]) -> LayoutFunction:
        n = int(params.get("n", 1))

        def apply(ps: Sequence[Participant], canvas: Canvas) -> Layout:
            return grid(ps[:n], canvas)

        return apply

    register_template("test.only_first", only_first)
    register_template("test.only_first", only_first)  # the same factory again: no-op
    assert "test.only_first" in registered_templates() and layout_template("test.only_first") is only_first
    assert len(build_layout(LayoutRef("test.only_first", {"n": 2}))(PEOPLE, CANVAS).panes) == 2

    def other(params: Mapping[str, Any]) -> LayoutFunction:
        return grid

    with pytest.raises(ValueError, match="already registered"):
        register_template("test.only_first", other)
    with pytest.raises(ValueError, match="already registered"):
        register_template("grid", other)


def test_explicit_loader_registers_every_dialect() -> None:
    load_template_modules()
    assert {"trtc.recording", "trtc.relay", "sparkrtc.mix", "jocloud.mix"} <= registered_templates()
    assert {"grid", "floating", "screen_share", "strip", "custom"} <= registered_templates()
    load_template_modules(TEMPLATE_MODULES)  # idempotent


# A process that never imported a dialect (a worker resolving a stored spec): importing domain/
# and media/ pulls in no api/ module, and resolving the spec loads the dialect's templates.
WORKER = """
import json, sys
import roomcast.domain.recording as rec
import roomcast.media.mixed as mixed
from roomcast.domain.layout import Canvas, Participant
assert not [m for m in sys.modules if m.startswith("roomcast.api")], "api imported at import time"
spec = rec.spec_from_json(json.loads(sys.stdin.read()))
rec.validate_spec(spec)
layout = mixed.resolve_layout(spec.layout)([Participant("a", 1), Participant("b", 2)], Canvas(640, 360))
print(json.dumps(sorted(p.user_id for p in layout.panes)))
"""


def test_worker_process_resolves_a_stored_dialect_layout() -> None:
    spec = mixed(
        LayoutRef("trtc.recording", {"MixLayoutParams": {"MixLayoutMode": 1, "MaxResolutionUserId": "b"}})
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", WORKER],
        input=json.dumps(spec_to_json(spec)),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["a", "b"]


def test_stored_spec_with_unknown_template_decodes_but_does_not_validate() -> None:
    doc = spec_to_json(mixed(LayoutRef("someone.else", {"x": [1, 2]})))
    spec = spec_from_json(doc)
    assert spec.layout == LayoutRef("someone.else", {"x": [1, 2]})
    with pytest.raises(InvalidArgument) as err:
        validate_spec(spec)
    assert err.value.subject == "layout"
