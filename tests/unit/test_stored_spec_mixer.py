"""A TRTC mixed-recording spec stored as JSON and read back drives the mixer like the original."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import av

from roomcast.api.trtc.params import parse
from roomcast.api.trtc.recording_params import CreateCloudRecordingParams, recording_spec
from roomcast.domain.recording import RecordingSpec, spec_from_json, spec_to_json, validate_spec
from roomcast.media.mixed import MixedRecorder, local_outputs, resolve_layout, settings_from_spec
from roomcast.media.outputs import OutputContext
from roomcast.rtc.track import TrackInfo, TrackKind

APP, ROOM = "1400000001", "3560"
TRACKS = [
    ("u1", TrackKind.CAMERA),
    ("u1", TrackKind.AUDIO),
    ("u2", TrackKind.AUDIO),  # audio only: hidden by PureAudioDisableLayout
    ("u3", TrackKind.CAMERA),
    ("u3", TrackKind.SCREEN),
    ("u3", TrackKind.AUDIO),
    ("u4", TrackKind.CAMERA),  # not subscribed for video
]


class Silent:
    """A subscription that never delivers a packet."""

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    async def recv(self) -> Any:
        await self._closed.wait()
        raise ConnectionError("closed")

    def request_keyframe(self) -> None:
        pass

    def close(self) -> None:
        self._closed.set()


class Room:
    def __init__(self) -> None:
        self.subscribed: list[tuple[str, TrackKind]] = []

    def list_tracks(self, app_key: str, room_id: str) -> list[TrackInfo]:
        codec = {TrackKind.AUDIO: "audio/opus"}
        return [TrackInfo(app_key, room_id, u, k, codec.get(k, "video/H264")) for u, k in TRACKS]

    def subscribe_track(self, app_key: str, room_id: str, user_id: str, kind: TrackKind, **_: Any) -> Silent:
        self.subscribed.append((user_id, kind))
        return Silent()


def stored_spec() -> tuple[RecordingSpec, RecordingSpec]:
    body = {
        "SdkAppId": int(APP),
        "RoomId": ROOM,
        "UserId": "rec",
        "UserSig": "sig",
        "RecordParams": {"RecordMode": 2, "SubscribeStreamUserIds": {"UnSubscribeVideoUserIds": ["u4"]}},
        "StorageParams": {"CloudVod": {"TencentVod": {}}},
        "MixTranscodeParams": {
            "VideoParams": {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 400000, "Gop": 2},
            "AudioParams": {"SampleRate": 2, "Channel": 1, "BitRate": 48000},
        },
        "MixLayoutParams": {
            "MixLayoutMode": 1,
            "MaxResolutionUserId": "u3",
            "MediaId": 1,
            "PureAudioDisableLayout": True,
            "BackGroundColor": "#204060",
            "WaterMarkList": [{"WaterMarkType": 2, "WaterMarkTimestamp": {"Pos": 0}}],
        },
    }
    spec = recording_spec(parse(CreateCloudRecordingParams, body))
    return spec, validate_spec(spec_from_json(json.loads(json.dumps(spec_to_json(spec)))))


async def test_stored_spec_drives_the_mixer(tmp_path: Path) -> None:
    original, spec = stored_spec()
    assert spec == original
    room = Room()
    ctx = OutputContext(
        root=tmp_path,
        naming=spec.naming,
        variables={"task_id": "t1", "app": APP, "room_id": ROOM, "user_id": "mix", "stream": "mix"},
        wall_origin=time.time(),
    )
    settings = settings_from_spec(spec)
    rec = MixedRecorder(room, APP, ROOM, resolve_layout(spec.layout), settings, local_outputs(ctx))
    await rec.start()
    await asyncio.sleep(0.6)
    layout = rec.layout
    participants = rec.participants
    await rec.stop(drain=False)

    # the same picture as the original spec's layout, and what the request asked for
    assert layout == resolve_layout(original.layout)(participants, settings.canvas)
    assert {p.user_id for p in participants} == {"u1", "u2", "u3"}  # u4 unsubscribed from video
    main, *small = layout.panes
    assert (main.user_id, main.stream.value, main.rect.width) == ("u3", "screen", 640)
    assert sorted((p.user_id, p.stream.value) for p in small) == [("u1", "camera"), ("u3", "camera")]
    assert len(layout.canvas.watermarks) == 1 and layout.canvas.background.color.r == 0x20
    assert ("u4", TrackKind.CAMERA) not in room.subscribed and ("u3", TrackKind.SCREEN) in room.subscribed

    assert await asyncio.to_thread(file_format, tmp_path) == (640, 360, 44100, 1)


def file_format(root: Path) -> tuple[int, int, int, int]:
    [path] = list(root.rglob("*.mp4"))
    with av.open(str(path)) as container:
        v = container.streams.video[0].codec_context
        a = container.streams.audio[0].codec_context
        return v.width, v.height, a.sample_rate, a.channels
