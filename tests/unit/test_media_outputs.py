"""Output writers with synthetic encoded packets (no network): MP4, HLS, splitting, AAC grid."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from roomcast.domain.recording import FileNaming, OutputFormat
from roomcast.media.codecs import AudioEncoder, opus_packet_samples
from roomcast.media.outputs import (
    AudioParams,
    EncodedPacket,
    FileInfo,
    FileStarted,
    OutputContext,
    SegmentReady,
    VideoParams,
    finalize_mp4,
    open_output,
)


def h264_packets(n: int, fps: int = 15, gop: int = 15) -> list[EncodedPacket]:
    enc: Any = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 160, 120, "yuv420p"
    enc.time_base = Fraction(1, 90000)
    enc.gop_size = gop
    enc.options = {"preset": "ultrafast", "tune": "zerolatency"}
    out: list[EncodedPacket] = []
    for i in range(n):
        arr = np.full((180, 160), (i * 8) % 200 + 16, np.uint8)
        frame = av.VideoFrame.from_ndarray(arr, format="yuv420p")
        frame.pts = i * 90000 // fps
        for p in enc.encode(frame):
            out.append(EncodedPacket("video", bytes(p), int(p.pts), bool(p.is_keyframe)))
    return out


def ctx(tmp_path: Path, **kw: float) -> OutputContext:
    return OutputContext(
        root=tmp_path,
        naming=FileNaming("{task_id}/{user_id}_{stream}_{media}_{index}"),
        variables={"task_id": "t", "user_id": "u1", "stream": "camera"},
        wall_origin=1_700_000_000.0,
        **kw,
    )


def test_mp4_is_fragmented_while_recording_and_finalized_on_close(tmp_path: Path) -> None:
    out = open_output(OutputFormat.MP4, ctx(tmp_path), video=VideoParams("h264", 160, 120, 15))
    events = []
    pkts = h264_packets(45)
    for p in pkts[:30]:
        events += out.write(p)
    [started] = [e for e in events if isinstance(e, FileStarted)]
    assert started.key == "t/u1_camera_video_0.mp4"
    assert b"moof" in started.path.read_bytes()  # crash-safe form on disk
    for p in pkts[30:]:
        events += out.write(p)
    [info] = [e for e in out.close() if isinstance(e, FileInfo)]
    data = info.path.read_bytes()
    assert b"moof" not in data and data.find(b"moov") < data.find(b"mdat")
    assert (info.width, info.height) == (160, 120) and abs(info.duration - 3.0) < 0.1
    finalize_mp4(info.path)  # idempotent
    with av.open(str(info.path)) as f:
        extradata = f.streams.video[0].codec_context.extradata
        assert extradata is not None and extradata[:1] == b"\x01"  # avcC
        assert sum(1 for _ in f.decode(video=0)) == 45


def test_split_on_keyframes_and_hls_segments(tmp_path: Path) -> None:
    c = ctx(tmp_path, max_file_duration=2.0, hls_segment_duration=1.0)
    mp4 = open_output(OutputFormat.MP4, c, video=VideoParams("h264", 160, 120, 15))
    hls = open_output(OutputFormat.HLS, c, video=VideoParams("h264", 160, 120, 15))
    events = []
    for p in h264_packets(75, gop=15):  # 5 s, a keyframe each second
        events += mp4.write(p)
        events += hls.write(p)
    events += mp4.close() + hls.close()
    files = [e for e in events if isinstance(e, FileInfo) and e.format is OutputFormat.MP4]
    assert [f.index for f in files] == [0, 1, 2]
    assert [round(f.duration, 1) for f in files] == [2.0, 2.0, 1.0]
    hls_files = [e for e in events if isinstance(e, FileInfo) and e.format is OutputFormat.HLS]
    assert [f.index for f in hls_files] == [0, 1, 2]
    segs = [e for e in events if isinstance(e, SegmentReady)]
    assert len(segs) == 5 and all(abs(s.duration - 1.0) < 0.01 for s in segs)
    text = hls_files[0].path.read_text()
    assert "#EXT-X-ENDLIST" in text and text.count("#EXTINF:1.000,") == 2


def test_each_format_has_its_own_naming_and_file_length(tmp_path: Path) -> None:
    c = OutputContext(
        root=tmp_path,
        naming=FileNaming(
            "rec/{format}/{user_id}_{index}",
            formats={"hls": "rec/HLS/{user_id}_{start_time}", "mp4": "rec/MP4/{user_id}_{start_time}"},
        ),
        variables={"task_id": "t", "user_id": "u1", "stream": "camera"},
        wall_origin=1_700_000_000.0,
        max_file_duration=2.0,
        file_durations={"hls": 0.0},  # HLS: one file for the whole stream; MP4 every 2 s
        hls_segment_duration=1.0,
    )
    video = VideoParams("h264", 160, 120, 15)
    mp4, hls = open_output(OutputFormat.MP4, c, video=video), open_output(OutputFormat.HLS, c, video=video)
    events = []
    for p in h264_packets(75, gop=15):
        events += mp4.write(p)
        events += hls.write(p)
    events += mp4.close() + hls.close()
    started = [e for e in events if isinstance(e, FileStarted)]
    # (the stream and media the templates leave out are appended: names stay distinct)
    hls_key = "rec/HLS/u1_20231114T221320Z_camera_video"
    assert [e.key for e in started if e.format is OutputFormat.HLS] == [hls_key + ".m3u8"]
    mp4_keys = [e.key for e in started if e.format is OutputFormat.MP4]
    assert len(mp4_keys) == 3 and all(k.startswith("rec/MP4/u1_") and k.endswith(".mp4") for k in mp4_keys)
    assert len(set(mp4_keys)) == 3  # a new start time per split (index added when it would repeat)
    segs = [e.key for e in events if isinstance(e, SegmentReady)]
    assert len(segs) == 5 and all(k.startswith(hls_key + "_") and k.endswith(".ts") for k in segs)
    # The common template, with {format}, for a format without its own.
    m4a = OutputContext(
        root=tmp_path, naming=c.naming, variables=c.variables, wall_origin=c.wall_origin
    ).for_format(OutputFormat.M4A)
    assert m4a.naming.render(format="m4a", user_id="u1", index=0) == "rec/m4a/u1_0"


def test_audio_encoder_fills_gaps_and_trims_overlaps() -> None:
    enc = AudioEncoder("aac", 48000, 1, 64000)

    def frame(n: int) -> av.AudioFrame:
        f = av.AudioFrame.from_ndarray(np.zeros((1, n), np.int16), format="s16", layout="mono")
        f.sample_rate = 48000
        return f

    pkts = enc.feed(frame(960), 1.0)
    pkts += enc.feed(frame(960), 1.02)
    pkts += enc.feed(frame(960), 1.5)  # 460 ms gap -> silence
    assert enc.silence_samples == round(0.46 * 48000)
    pkts += enc.feed(frame(960), 1.45)  # 70 ms early -> trimmed
    assert enc.trimmed_samples == 960
    pkts += enc.flush()
    pts = [p.pts for p in pkts]
    assert pts == sorted(pts) and pts[1] - pts[0] == 1024


def test_opus_packet_samples() -> None:
    assert opus_packet_samples(bytes([0xFC, 0xFF, 0xFE])) == 960  # CELT 20 ms, one frame
    assert opus_packet_samples(bytes([0x78])) == 960  # SILK/hybrid 20 ms
    assert opus_packet_samples(bytes([0xFD])) == 1920  # two 20 ms frames


def test_audio_params_time_base() -> None:
    assert AudioParams("aac", 44100).time_base == Fraction(1, 44100)


def test_vp8_transcoder_fills_a_gap_with_black() -> None:
    from roomcast.domain.recording import VideoFill
    from roomcast.media.codecs import VideoTranscoder

    enc: Any = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = 160, 120, "yuv420p"
    enc.time_base = Fraction(1, 90000)
    enc.options = {"deadline": "realtime", "cpu-used": "8"}
    vp8: list[bytes] = []
    for i in range(4):
        arr = np.full((180, 160), 200, np.uint8)  # bright picture
        frame = av.VideoFrame.from_ndarray(arr, format="yuv420p")
        frame.pts = i * 6000
        vp8 += [bytes(p) for p in enc.encode(frame)]
    tx = VideoTranscoder("vp8", fps=15, bitrate=300_000, gop=2.0, preset="ultrafast", fill=VideoFill.BLACK)
    out = tx.feed(vp8[0], 0) + tx.feed(vp8[1], 6000)
    out += tx.feed(vp8[2], 6000 + 3 * 90000)  # after a 3 s gap
    out += tx.flush()
    assert tx.fill_frames == 1
    assert [p.pts for p in out] == [0, 6000, 12000, 6000 + 3 * 90000]
    assert out[0].keyframe
    dec: Any = av.CodecContext.create("h264", "r")
    lumas = []
    for p in out:
        for f in dec.decode(av.Packet(p.data)):
            lumas.append(float(f.to_ndarray()[:120].mean()))
    assert lumas[0] > 150 and lumas[2] < 30 and lumas[3] > 150
