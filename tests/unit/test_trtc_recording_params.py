"""CreateCloudRecording parameters: validation codes and the mapping to the engine's spec."""

from __future__ import annotations

from typing import Any

import pytest

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.params import parse
from roomcast.api.trtc.recording_params import (
    CreateCloudRecordingParams,
    ModifyCloudRecordingParams,
    recording_spec,
    storage_description,
)
from roomcast.domain.layout import Canvas, Participant
from roomcast.domain.recording import MediaSelection, OutputFormat, RecordingMode
from roomcast.media.mixed import resolve_layout


def base(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "SdkAppId": 1400000001,
        "RoomId": "3560",
        "UserId": "rec-1",
        "UserSig": "sig",
        "RecordParams": {"RecordMode": 1},
        "StorageParams": {
            "CloudStorage": {
                "Vendor": 0,
                "Region": "ap-guangzhou",
                "Bucket": "b-125",
                "AccessKey": "a",
                "SecretKey": "s",
            }
        },
    }
    body.update(over)
    return body


def test_documented_example_mixed_to_vod() -> None:
    doc = {
        "StorageParams": {"CloudVod": {"TencentVod": {"ExpireTime": 0}}},
        "UserSig": "11xx111",
        "UserId": "10001",
        "RecordParams": {"MaxIdleTime": 60, "StreamType": 0, "RecordMode": 2},
        "RoomIdType": 1,
        "MixTranscodeParams": {
            "VideoParams": {"Width": 360, "BitRate": 500000, "Fps": 15, "Height": 640, "Gop": 10}
        },
        "MixLayoutParams": {"MixLayoutMode": 3},
        "SdkAppId": 1234,
        "RoomId": "3560",
    }
    p = parse(CreateCloudRecordingParams, doc)
    spec = recording_spec(p)
    assert spec.mode is RecordingMode.MIXED and spec.outputs == (OutputFormat.MP4,)  # VOD default MP4
    assert (spec.video.width, spec.video.height, spec.video.fps, spec.video.bitrate_kbps, spec.video.gop) == (
        360,
        640,
        15,
        500,
        10,
    )
    assert spec.limits.idle_timeout == 60
    assert storage_description(p) == {"kind": "library", "expire_s": 0}
    assert spec.layout is not None and spec.layout.preset == "trtc.recording"
    people = [Participant(f"u{i}", i) for i in range(4)]
    layout = resolve_layout(spec.layout)(people, Canvas(360, 640))
    assert len(layout.panes) == 4 and {pane.user_id for pane in layout.panes} == {"u0", "u1", "u2", "u3"}


def test_single_stream_defaults_and_naming() -> None:
    p = parse(
        CreateCloudRecordingParams,
        base(
            StorageParams={
                "CloudStorage": {
                    "Vendor": 1,
                    "Region": "us-east-1",
                    "Bucket": "b",
                    "AccessKey": "a",
                    "SecretKey": "s",
                    "FileNamePrefix": ["p1", "p2"],
                }
            }
        ),
    )
    spec = recording_spec(p)
    assert spec.mode is RecordingMode.INDIVIDUAL and spec.outputs == (
        OutputFormat.HLS,
    )  # storage default HLS
    assert spec.separate_files and spec.media is MediaSelection.AUDIO_VIDEO
    assert spec.limits.idle_timeout == 30 and spec.limits.max_file_duration == 1440 * 60
    assert spec.naming.template.startswith("p1/p2/{task_id}/{app}_{room_id}__UserId_s_{user_id}__UserId_e_")
    d = storage_description(p)
    assert d["vendor"] == "aws" and d["bucket"] == "b" and d["secret_key"] == "s"


def test_output_formats_and_av_merge() -> None:
    spec = recording_spec(
        parse(
            CreateCloudRecordingParams, base(RecordParams={"RecordMode": 1, "OutputFormat": 1, "AvMerge": 1})
        )
    )
    assert spec.outputs == (OutputFormat.HLS, OutputFormat.MP4) and not spec.separate_files
    audio = recording_spec(
        parse(
            CreateCloudRecordingParams,
            base(RecordParams={"RecordMode": 1, "StreamType": 1, "OutputFormat": 4}),
        )
    )
    assert audio.outputs == (OutputFormat.M4A,) and audio.media is MediaSelection.AUDIO_ONLY
    screen = recording_spec(
        parse(CreateCloudRecordingParams, base(RecordParams={"RecordMode": 1, "MediaId": 2}))
    )
    assert screen.streams.screen and not screen.streams.camera


def test_subscription_lists_with_prefixes() -> None:
    subs = {"SubscribeVideoUserIds": ["teacher", "stu.*$"], "UnSubscribeAudioUserIds": ["noisy"]}
    spec = recording_spec(
        parse(
            CreateCloudRecordingParams, base(RecordParams={"RecordMode": 1, "SubscribeStreamUserIds": subs})
        )
    )
    assert (
        spec.users.video.admits("teacher")
        and spec.users.video.admits("stu42")
        and spec.users.video.admits("stu.*$")
    )
    assert not spec.users.video.admits("guest")
    assert spec.users.audio.admits("guest") and not spec.users.audio.admits("noisy")


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"RecordParams": {}}, "MissingParameter.RecordMode"),
        ({"RecordParams": {"RecordMode": 3}}, "InvalidParameter"),
        ({"RecordParams": {"RecordMode": 1, "MaxIdleTime": 2}}, "InvalidParameter"),
        (
            {
                "StorageParams": {
                    "CloudStorage": {"Vendor": 0, "Region": "r", "Bucket": "b", "AccessKey": "a"}
                }
            },
            "MissingParameter.SecretKey",
        ),
        (
            {
                "StorageParams": {
                    "CloudStorage": {
                        "Vendor": 5,
                        "Region": "r",
                        "Bucket": "b",
                        "AccessKey": "a",
                        "SecretKey": "s",
                    }
                }
            },
            "InvalidParameter",
        ),
        (
            {
                "RecordParams": {
                    "RecordMode": 1,
                    "SubscribeStreamUserIds": {
                        "SubscribeAudioUserIds": ["a"],
                        "UnSubscribeAudioUserIds": ["b"],
                    },
                }
            },
            "InvalidParameter",
        ),
        (
            {
                "RecordParams": {
                    "RecordMode": 1,
                    "SubscribeStreamUserIds": {"SubscribeAudioUserIds": [str(i) for i in range(33)]},
                }
            },
            "InvalidParameter",
        ),
        (
            {
                "MixTranscodeParams": {
                    "VideoParams": {"Width": 1920, "Height": 1920, "Fps": 15, "BitRate": 600000, "Gop": 2}
                }
            },
            "InvalidParameter",
        ),
        ({"MixTranscodeParams": {"VideoParams": {"Width": 640}}}, "MissingParameter"),
        ({"MixLayoutParams": {"MixLayoutMode": 4}}, "InvalidParameter"),
        ({"MixLayoutParams": {"MixLayoutMode": 3, "BackGroundColor": "red"}}, "InvalidParameter"),
        ({"Bogus": 1}, "UnknownParameter"),
        ({"ResourceExpiredHour": 1}, "InvalidParameter"),
    ],
)
def test_validation_codes(over: dict[str, Any], code: str) -> None:
    with pytest.raises(TrtcError) as ei:
        parse(CreateCloudRecordingParams, base(**over), "InvalidParameter.OutOfRange")
    expected = "InvalidParameter.OutOfRange" if code == "InvalidParameter" else code
    assert ei.value.code == expected, ei.value.message


def test_integer_room_ids() -> None:
    with pytest.raises(TrtcError) as ei:
        recording_spec(parse(CreateCloudRecordingParams, base(RoomId="abc")))
    assert ei.value.code == "InvalidParameter.RoomId"
    recording_spec(parse(CreateCloudRecordingParams, base(RoomId="abc", RoomIdType=0)))


def test_custom_layout_must_fit_canvas() -> None:
    body = base(
        RecordParams={"RecordMode": 2},
        MixTranscodeParams={
            "VideoParams": {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 600000, "Gop": 2}
        },
        MixLayoutParams={
            "MixLayoutMode": 4,
            "MixLayoutList": [{"Top": 0, "Left": 600, "Width": 100, "Height": 100}],
        },
    )
    with pytest.raises(TrtcError) as ei:
        recording_spec(parse(CreateCloudRecordingParams, body))
    assert ei.value.code == "InvalidParameter.OutOfRange"


def test_vod_aac_needs_audio_only() -> None:
    body = base(StorageParams={"CloudVod": {"TencentVod": {"MediaType": 2}}})
    with pytest.raises(TrtcError) as ei:
        recording_spec(parse(CreateCloudRecordingParams, body))
    assert ei.value.code == "InvalidParameter.OutOfRange"


def test_modify_params() -> None:
    p = parse(
        ModifyCloudRecordingParams,
        {"SdkAppId": 1, "TaskId": "t", "SubscribeStreamUserIds": {"SubscribeVideoUserIds": ["123"]}},
    )
    assert p.SubscribeStreamUserIds is not None and p.MixLayoutParams is None
