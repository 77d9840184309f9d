"""JOYY request mapping: storagecfg -> S3 targets per vender, mixconfig -> layout, encoders, users."""

from __future__ import annotations

from typing import Any

import pytest

from roomcast.api.jocloud.errors import JoyError
from roomcast.api.jocloud.layouts import JOYY_MIX_TEMPLATE, mix_layout_ref
from roomcast.api.jocloud.params import mix_params
from roomcast.api.jocloud.storage import object_url, storage
from roomcast.domain.layout import Canvas, Participant
from roomcast.domain.layout_templates import build_layout
from roomcast.domain.recording import MediaSelection
from roomcast.storage.target import StorageOptions, resolve_endpoint


def cfg(vender: int, endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "vender": vender,
        "endpoint": endpoint,
        "bucket": "bk",
        "accesskey": "ak",
        "secretkey": "sk",
        **extra,
    }


@pytest.mark.parametrize(
    ("vender", "endpoint", "url", "region"),
    [
        (0, "oss-cn-hangzhou.aliyuncs.com", "https://oss-cn-hangzhou.aliyuncs.com", "cn-hangzhou"),
        (
            0,
            "https://oss-cn-beijing-internal.aliyuncs.com",
            "https://oss-cn-beijing-internal.aliyuncs.com",
            "cn-beijing",
        ),
        (0, "bk.oss-cn-shanghai.aliyuncs.com", "https://oss-cn-shanghai.aliyuncs.com", "cn-shanghai"),
        (1, "cos.ap-guangzhou.myqcloud.com", "https://cos.ap-guangzhou.myqcloud.com", "ap-guangzhou"),
        (1, "bk.cos.ap-beijing.myqcloud.com", "https://cos.ap-beijing.myqcloud.com", "ap-beijing"),
        (2, "s3.cn-east-1.qiniucs.com", "https://s3.cn-east-1.qiniucs.com", "cn-east-1"),
        (2, "s3-cn-south-1.qiniucs.com", "https://s3.cn-south-1.qiniucs.com", "cn-south-1"),
        (2, "up-z1.qiniup.com", "https://s3.cn-north-1.qiniucs.com", "cn-north-1"),
        (2, "upload.qiniup.com", "https://s3.cn-east-1.qiniucs.com", "cn-east-1"),
        (1, "http://minio.internal:9000", "http://minio.internal:9000", "ap-guangzhou"),
    ],
)
def test_every_vender_maps_to_an_s3_endpoint_and_region(
    tmp_path: Any, vender: int, endpoint: str, url: str, region: str
) -> None:
    st = storage(cfg(vender, endpoint))
    assert st.target.kind == "s3" and st.target.bucket == "bk"
    assert (st.target.access_key, st.target.secret_key) == ("ak", "sk")
    got_url, got_region, _ = resolve_endpoint(st.target, StorageOptions(local_root=tmp_path))
    assert (got_url, got_region) == (url, region)
    assert st.endpoint == endpoint  # kept for the callbacks' file URLs


def test_storage_fields_and_prefix() -> None:
    assert storage(cfg(0, "oss-cn-hangzhou.aliyuncs.com", fileprefix=["aaaa", "bbbb"])).prefix == "aaaa/bbbb"
    for bad in (
        cfg(3, "x"),
        cfg(0, "x", fileprefix=["a/b"]),
        cfg(0, "x", fileprefix=["a-b"]),
        cfg(0, "x", fileprefix=["a" * 128]),
        {k: v for k, v in cfg(0, "x").items() if k != "bucket"},
        {**cfg(0, "x"), "secretkey": 5},
        "not an object",
    ):
        with pytest.raises(JoyError) as ei:
            storage(bad)
        assert ei.value.code == 2101
    assert object_url("oss-cn-hangzhou.aliyuncs.com", "bk", "a/b.m3u8") == (
        "https://bk.oss-cn-hangzhou.aliyuncs.com/a/b.m3u8"
    )


OUT = {"videowidth": 642, "videoheight": 358, "videobitrate": 10, "videofps": 90, "videogop": 100}


def test_output_values_are_adjusted_as_documented() -> None:
    mix = mix_params({"templateid": 3, "output": OUT}, "r", MediaSelection.AUDIO_VIDEO)
    v = mix.video
    # Nearest multiple of 4; fps above 60 becomes 60; the gop rounds up to whole seconds.
    assert (v.width, v.height, v.fps, v.gop, v.bitrate_kbps) == (644, 360, 60, 2.0, 32)
    assert (mix.audio.sample_rate, mix.audio.channels, mix.audio.bitrate_kbps) == (48000, 2, 128)
    assert mix.media is MediaSelection.AUDIO_VIDEO


def test_media_from_recordtype_and_output_streamtype() -> None:
    audio = mix_params({"output": {"streamtype": 2}}, "r", MediaSelection.AUDIO_VIDEO)
    assert audio.media is MediaSelection.AUDIO_ONLY  # no picture fields needed, no layout
    video = mix_params({"templateid": 1, "output": OUT}, "r", MediaSelection.VIDEO_ONLY)
    assert video.media is MediaSelection.VIDEO_ONLY
    with pytest.raises(JoyError) as ei:
        mix_params({"output": {"streamtype": 2}}, "r", MediaSelection.VIDEO_ONLY)
    assert ei.value.code == 4016


def test_custom_input_selects_users_and_lays_them_out() -> None:
    inputs = [
        {
            "uid": "a",
            "streamtype": 0,
            "zOrder": 0,
            "layoutX": 0,
            "layoutY": 0,
            "layoutW": 320,
            "layoutH": 360,
        },
        {
            "uid": "b",
            "streamtype": 1,
            "zOrder": 1,
            "layoutX": 320,
            "layoutY": 0,
            "layoutW": 320,
            "layoutH": 360,
        },
        {"uid": "c", "streamtype": 2},
        {"uid": "d", "roomid": "other", "layoutX": 0, "layoutY": 0, "layoutW": 10, "layoutH": 10},
    ]
    out = {"videowidth": 640, "videoheight": 360, "videobitrate": 800}
    mix = mix_params(
        {"intput": inputs, "output": out}, "r", MediaSelection.AUDIO_VIDEO
    )  # the table's spelling
    assert mix.users.video.admits("a") and mix.users.video.admits("b") and not mix.users.video.admits("c")
    assert mix.users.audio.admits("a") and mix.users.audio.admits("c") and not mix.users.audio.admits("b")
    assert not mix.users.admits("x") and mix.other_rooms == ("other",)
    # the other room's user is seen and heard (streamtype 0)
    assert mix.users.video.admits("d") and mix.users.audio.admits("d")
    ref = mix_layout_ref(mix.config, room_id="r")
    assert ref.preset == JOYY_MIX_TEMPLATE
    people = [Participant(u, join_order=i, has_camera=True) for i, u in enumerate("abc")]
    people.append(Participant("d", join_order=4, room_id="other"))
    layout = build_layout(ref)(people, Canvas(640, 360))
    panes = {
        (p.room_id, p.user_id): (p.rect.x, p.rect.width, p.has_video)
        for p in layout.panes
        if p.user_id in ("a", "b", "d")
    }
    assert panes == {
        (None, "a"): (0, 320, True),
        (None, "b"): (320, 320, True),
        ("other", "d"): (0, 10, True),
    }


@pytest.mark.parametrize(
    "mix",
    [
        {"templateid": 6, "output": OUT},
        {"templateid": 1, "input": [{"uid": "a"}], "output": OUT},
        {"input": [{"layoutX": 0, "layoutY": 0, "layoutW": 5, "layoutH": 5}], "output": OUT},
        {"templateid": 1, "output": {**OUT, "audiosample": 44100}},
        {"templateid": 1, "output": {**OUT, "videowidth": 1921}},
        {"templateid": 1, "output": {**OUT, "patch": 3}},
        {"templateid": 1, "output": {**OUT, "background": {"color": "GgGgGg"}}},
        {
            "templateid": 1,
            "output": {**OUT, "watermark": {"timestamp": {"x": 0, "y": 0, "size": 9, "format": "%s"}}},
        },
        {"templateid": 1, "output": {k: v for k, v in OUT.items() if k != "videowidth"}},
        {"templateid": 1},
        [],
    ],
)
def test_bad_mixconfig_is_4016(mix: Any) -> None:
    with pytest.raises(JoyError) as ei:
        mix_params(mix, "r", MediaSelection.AUDIO_VIDEO)
    assert ei.value.code == 4016
