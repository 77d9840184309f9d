"""Individual recordings capped in height (``VideoEncoding.max_height``): a taller H.264 picture is
re-encoded at the cap, keeping its shape; one within the cap is copied as received."""

from __future__ import annotations

from pathlib import Path

import av

from roomcast.domain.recording import FileNaming, OutputFormat, RecordingSpec, VideoEncoding, validate_spec
from roomcast.media.codecs import capped_size
from roomcast.media.individual import _Item, _Lanes
from roomcast.media.outputs import FileInfo, OutputContext
from tests.unit.test_media_outputs import h264_packets


def record(tmp_path: Path, max_height: int) -> FileInfo:
    spec = validate_spec(
        RecordingSpec(outputs=(OutputFormat.MP4,), video=VideoEncoding(max_height=max_height))
    )

    def make_ctx() -> OutputContext:
        return OutputContext(
            root=tmp_path,
            naming=FileNaming(f"cap{max_height}/{{user_id}}"),
            variables={"task_id": "t", "user_id": "u1", "stream": "camera"},
            wall_origin=1_700_000_000.0,
        )

    lanes = _Lanes(spec, make_ctx, want_audio=False, want_video=True)
    pkts = h264_packets(30)  # 160x120, 2 s
    items = [_Item(p.pts / 90000, i, "video", p.data, "h264", p.keyframe, p.pts) for i, p in enumerate(pkts)]
    lanes.process(items)
    for key in list(lanes.sets):
        lanes._close_set(key, 2.0)
    (info,) = lanes.completed
    return info


def test_a_taller_picture_is_scaled_down_keeping_its_shape(tmp_path: Path) -> None:
    info = record(tmp_path, 90)
    assert (info.width, info.height) == (120, 90)
    with av.open(str(info.path)) as f:
        stream = f.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (120, 90)
        assert sum(1 for _ in f.decode(video=0)) >= 25


def test_a_picture_within_the_cap_is_copied(tmp_path: Path) -> None:
    info = record(tmp_path, 180)
    assert (info.width, info.height) == (160, 120)
    copied = record(tmp_path, 0)
    assert copied.path.read_bytes() != b"" and (copied.width, copied.height) == (160, 120)


def test_capped_size() -> None:
    assert capped_size(1920, 1080, 360) == (640, 360)
    assert capped_size(320, 180, 360) == (320, 180)
    assert capped_size(320, 180, 0) == (320, 180)
