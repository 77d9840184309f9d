"""Recording benchmarks: CPU per per-user recording and how many run in real time here.

Prints figures, asserts nothing.  Run: ``.venv/bin/python bench/recording.py [--seconds 20]``.

Part A - the recorder pipeline alone (no network): pre-encoded test-pattern media (H.264 as the
SFU delivers it, Opus 20 ms) goes through the per-user pipeline (``_Lanes``: H.264 copy + Opus
decode -> AAC -> fragmented MP4, finalize) as fast as it can.  CPU seconds per media second =
cores per real-time recording.  Then N pipelines in parallel threads show how it scales over the
cores (PyAV releases the GIL in codecs).

Part B - end to end through the SFU, in real time: K publishers send pre-encoded packets (cheap
senders), the engine records every user; the recorder's share is the process CPU with the
recording minus without it.

Part C - composited (mixed) recordings: runs ``bench/mixing.py`` (720p30 4-up, veryfast and
ultrafast) and prints its figures.

Part D - the whole product path: a roomcast server on loopback with an S3 server (moto) and a
media library, bots publishing, one per-user recording to S3 and one mixed recording to the
library created with the official TRTC SDK; prints the time from DeleteCloudRecording until the
task has exited, that is until the last file is confirmed by the store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from roomcast.domain.recording import (
    FileNaming,
    OutputFormat,
    RecordingSpec,
    StreamSelection,
    VideoEncoding,
)
from roomcast.media.engine import RecordingEngine
from roomcast.media.individual import _Item, _Lanes
from roomcast.media.outputs import OutputContext
from roomcast.media.testpattern import PatternAudioTrack, PatternVideoTrack
from roomcast.rtc.auth import StaticTokenAuthenticator
from roomcast.rtc.client import RoomClient
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.testing import serve_sfu
from roomcast.rtc.track import TrackKind

VIDEO_TB = Fraction(1, 90000)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------------------ media fixtures


HARD = False  # --hard: a panning noise texture instead of the flat test pattern


def encode_video(codec: str, width: int, height: int, fps: int, seconds: float, bitrate: int) -> list[Any]:
    """(data, pts90, keyframe) of a test pattern, encoded like a WebRTC sender would."""
    track = PatternVideoTrack("u1", width=width, height=height, fps=fps, realtime=False)
    track.clock.anchor(time.time())
    rng = np.random.default_rng(1)
    texture = rng.integers(40, 200, (height, width * 2), dtype=np.uint8)
    enc: Any = av.CodecContext.create("libx264" if codec == "h264" else "libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = VIDEO_TB
    enc.bit_rate = bitrate
    enc.gop_size = fps * 10
    if codec == "h264":
        enc.options = {"preset": "veryfast", "tune": "zerolatency", "profile": "baseline"}
    else:
        enc.options = {"deadline": "realtime", "cpu-used": "8"}
    out = []
    for i in range(int(seconds * fps)):
        frame = track.render(i)
        if HARD:  # camera-like content: a panning texture plus sensor noise
            y = np.frombuffer(memoryview(frame.planes[0]), np.uint8).reshape(-1, frame.planes[0].line_size)
            shift = (i * 4) % width
            noise = rng.integers(0, 12, (height, width), dtype=np.uint8)
            y[:height, :width] = texture[:, shift : shift + width] // 2 + noise + y[:height, :width] // 3
        for p in enc.encode(frame):
            out.append((bytes(p), int(p.pts), bool(p.is_keyframe)))
    return out


def encode_opus(seconds: float) -> list[tuple[bytes, int]]:
    track = PatternAudioTrack("u1", realtime=False)
    track.clock.anchor(time.time())
    enc: Any = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 48000, "stereo", "s16", 64000
    enc.time_base = Fraction(1, 48000)
    out = []
    for i in range(int(seconds * 50)):
        f = track.render(i)
        stereo = av.AudioFrame.from_ndarray(f.to_ndarray().repeat(2, axis=1), format="s16", layout="stereo")
        stereo.sample_rate, stereo.pts = 48000, i * 960
        for p in enc.encode(stereo):
            if p.pts is not None and p.pts >= 0:
                out.append((bytes(p), int(p.pts)))
    return out


def items(video: list[Any], audio: list[tuple[bytes, int]], vcodec: str) -> list[_Item]:
    its = [_Item(pts / 90000, n, "video", d, vcodec, k, pts) for n, (d, pts, k) in enumerate(video)]
    its += [_Item(pts / 48000, 10**7 + n, "audio", d, "opus", True) for n, (d, pts) in enumerate(audio)]
    its.sort()
    return its


def run_lanes(spec: RecordingSpec, its: list[_Item], root: Path, tag: str) -> None:
    def make_ctx() -> OutputContext:
        return OutputContext(
            root=root,
            naming=FileNaming("{task_id}_{user_id}_{index}"),
            variables={"task_id": tag, "user_id": "u1", "stream": "camera"},
            wall_origin=time.time(),
        )

    lanes = _Lanes(spec, make_ctx, want_audio=True, want_video=True)
    for i in range(0, len(its), 8):
        lanes.process(its[i : i + 8])
    lanes.close(its[-1].t)


# ------------------------------------------------------------------------------------- part A


def part_a(seconds: float) -> dict[str, float]:
    print(f"\n== A. per-user pipeline alone ({seconds:.0f} s of media, single thread) ==")
    audio = encode_opus(seconds)
    cases: list[tuple[str, str, tuple[int, int, int, int], tuple[OutputFormat, ...], str]] = [
        ("H.264 360p15 copy + Opus->AAC -> MP4", "h264", (640, 360, 15, 600_000), (OutputFormat.MP4,), ""),
        ("H.264 720p30 copy + Opus->AAC -> MP4", "h264", (1280, 720, 30, 1_700_000), (OutputFormat.MP4,), ""),
        (
            "H.264 360p15 copy + AAC -> MP4 + HLS",
            "h264",
            (640, 360, 15, 600_000),
            (OutputFormat.MP4, OutputFormat.HLS),
            "",
        ),
        ("VP8 360p15 -> WebM copy (Opus copy)", "vp8", (640, 360, 15, 600_000), (OutputFormat.WEBM,), ""),
        (
            "VP8 360p15 -> H.264 veryfast + AAC -> MP4",
            "vp8",
            (640, 360, 15, 600_000),
            (OutputFormat.MP4,),
            "veryfast",
        ),
        (
            "VP8 360p15 -> H.264 ultrafast + AAC -> MP4",
            "vp8",
            (640, 360, 15, 600_000),
            (OutputFormat.MP4,),
            "ultrafast",
        ),
    ]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, vcodec, (w, h, fps, br), outputs, preset in cases:
            video = encode_video(vcodec, w, h, fps, seconds, br)
            its = items(video, audio, vcodec)
            spec = RecordingSpec(
                outputs=outputs,
                streams=StreamSelection(screen=False),
                video=VideoEncoding(fps=fps, preset=preset or "veryfast"),
            )
            c0, w0 = cpu(), time.perf_counter()
            run_lanes(spec, its, Path(tmp), f"a{len(results)}")
            used, wall = cpu() - c0, time.perf_counter() - w0
            cores = used / seconds
            results[name] = cores
            print(
                f"  {name:<46} {100 * cores:6.2f} % of a core  (x{seconds / wall:6.1f} real time, one thread)"
            )
    return results


def part_a_parallel(seconds: float, threads: int) -> None:
    print(f"\n== A2. H.264 360p15 copy + AAC pipelines in {threads} threads at once ==")
    audio = encode_opus(seconds)
    video = encode_video("h264", 640, 360, 15, seconds, 600_000)
    its = items(video, audio, "h264")
    spec = RecordingSpec(outputs=(OutputFormat.MP4,), streams=StreamSelection(screen=False))
    n = threads * 4
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(threads) as pool:
        c0, w0 = cpu(), time.perf_counter()
        list(pool.map(lambda k: run_lanes(spec, its, Path(tmp), f"p{k}"), range(n)))
        used, wall = cpu() - c0, time.perf_counter() - w0
    media = n * seconds
    cpus = os.cpu_count() or 1
    print(f"  {n} recordings x {seconds:.0f} s in {wall:.2f} s wall, {used:.2f} s CPU")
    print(f"  -> wall clock: about {media / wall:.0f} such recordings in real time here (other load counts)")
    print(
        f"  -> CPU: {100 * used / media:.2f} % of a core each, i.e. about {cpus * media / used:.0f} on "
        f"{cpus} idle CPUs (pipeline only; receiving through the SFU is extra, see B)"
    )


# ------------------------------------------------------------------------------------- part B


class PacketTrack(MediaStreamTrack):
    """Replays pre-encoded packets in real time (aiortc sends av.Packet without encoding)."""

    def __init__(
        self, kind: str, packets: list[tuple[bytes, int]], time_base: Fraction, period: float
    ) -> None:
        super().__init__()
        self.kind = kind
        self.packets = packets
        self.time_base = time_base
        self.period = period  # seconds of one loop
        self.i = 0
        self.start: float | None = None

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        loop_n, idx = divmod(self.i, len(self.packets))
        data, pts = self.packets[idx]
        t = loop_n * self.period + float(pts * self.time_base)
        wait = self.start + t - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.i += 1
        pkt = av.Packet(data)
        pkt.pts = round(t / float(self.time_base))
        pkt.time_base = self.time_base
        return pkt


async def part_b(users: int, window: float) -> None:
    print(f"\n== B. end to end through the SFU: {users} H.264 360p15 + Opus publishers, one process ==")
    loop_s = 10.0
    video = encode_video("h264", 640, 360, 15, loop_s, 600_000)
    # make every loop start with a keyframe: the first packet is one (gop 150 = 10 s)
    vpk = [(d, p) for d, p, _k in video]
    apk = encode_opus(loop_s)
    manager = RoomManager(SfuConfig(stats_interval=0, min_keyframe_interval=0.5))
    with tempfile.TemporaryDirectory() as tmp:
        async with serve_sfu(manager, StaticTokenAuthenticator("t")) as url:
            clients = []
            for k in range(users):
                c = RoomClient(url, app_id="a", room_id="bench", user_id=f"u{k + 1}", token="t")
                await c.connect()
                await c.publish(
                    {
                        TrackKind.AUDIO: PacketTrack("audio", apk, Fraction(1, 48000), loop_s),
                        TrackKind.CAMERA: PacketTrack("video", vpk, VIDEO_TB, loop_s),
                    },
                    video_codecs=("video/H264",),
                )
                clients.append(c)
            await asyncio.sleep(2.0)
            c0, w0 = cpu(), time.monotonic()
            await asyncio.sleep(window)
            base = (cpu() - c0) / (time.monotonic() - w0)
            engine = RecordingEngine(manager, Path(tmp))
            spec = RecordingSpec(outputs=(OutputFormat.MP4,), streams=StreamSelection(screen=False))
            await engine.start("bench", "a", "bench", spec)
            await asyncio.sleep(2.0)
            c0, w0 = cpu(), time.monotonic()
            await asyncio.sleep(window)
            with_rec = (cpu() - c0) / (time.monotonic() - w0)
            ended = await engine.stop("bench")
            await engine.close()
            loss = []
            for f in ended.files:
                with av.open(str(f.path)) as cont:
                    frames = cont.streams.video[0].frames
                loss.append(max(0.0, 1 - frames / (15 * f.duration)))
            for c in clients:
                await c.close()
    per = (with_rec - base) / users
    print(f"  SFU + publishers alone: {100 * base:6.1f} % CPU; with the recording: {100 * with_rec:6.1f} %")
    print(f"  -> recorder cost per user (subscribe + H.264 copy + AAC + fMP4): {100 * per:5.2f} % of a core")
    durations = sorted(round(f.duration, 1) for f in ended.files)
    print(
        f"  files: {len(ended.files)}, {durations[0]}..{durations[-1]} s each (recorded {window + 2:.0f} s)"
    )
    worst, mean = 100 * max(loss), 100 * sum(loss) / len(loss)
    print(f"  video frames missing per file: worst {worst:.1f} %, mean {mean:.1f} %")


# ------------------------------------------------------------------------------------- part C


REPO_ROOT = str(Path(__file__).resolve().parents[1])


def part_c() -> None:
    import subprocess

    print("\n== C. mixed (composited) recordings (bench/mixing.py) ==", flush=True)
    script = Path(__file__).resolve().parent / "mixing.py"
    subprocess.run(
        [sys.executable, str(script), "--presets", "ultrafast,veryfast", "--max", "4", "--seconds", "5"],
        check=False,
    )


async def part_d(users: int, seconds: float) -> None:
    """Stop -> last file stored, through the API, the engine, the upload queue and a real S3 server."""
    import json

    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer
    from tencentcloud.common import credential
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.trtc.v20190722 import models, trtc_client

    from roomcast.bots import publish_bot
    from roomcast.runtime import Runtime
    from roomcast.services.join_tokens import issue_usersig

    sys.path.insert(0, REPO_ROOT)
    from tests.support.live import free_port, live_server

    print(f"\n== D. stop -> last file stored ({users} publishers, {seconds:.0f} s, S3 on loopback) ==")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="a",
        aws_secret_access_key="b",
        config=Config(s3={"addressing_style": "path"}),
    )
    s3.create_bucket(Bucket="bench")
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            live_server(Path(tmp) / "var", ice_host_addresses=["127.0.0.1"], s3_endpoint=endpoint) as srv,
        ):

            async def tenant(rt: Runtime) -> Any:
                creds = await rt.tenancy.create_account("bench")
                return creds, await rt.tenancy.create_app(creds.account_id, "bench")

            creds, app = await asyncio.to_thread(srv.run, tenant)
            prof = ClientProfile(httpProfile=HttpProfile(endpoint=srv.endpoint, protocol="http"))
            client = trtc_client.TrtcClient(
                credential.Credential(creds.secret_id, creds.secret_key), "ap-guangzhou", prof
            )
            bots = [
                asyncio.create_task(
                    publish_bot(
                        srv.url,
                        str(app.sdk_app_id),
                        "900",
                        f"u{i}",
                        issue_usersig(app, f"u{i}"),
                        duration=seconds + 15,
                        video=(640, 360, 15),
                    )
                )
                for i in range(1, users + 1)
            ]
            await asyncio.sleep(3)

            def create(body: dict[str, Any]) -> str:
                req = models.CreateCloudRecordingRequest()
                req.from_json_string(json.dumps(body))
                return str(client.CreateCloudRecording(req).TaskId)

            common = {"SdkAppId": app.sdk_app_id, "RoomId": "900"}
            single = await asyncio.to_thread(
                create,
                {
                    **common,
                    "UserId": "rec-1",
                    "UserSig": issue_usersig(app, "rec-1"),
                    "RecordParams": {"RecordMode": 1, "OutputFormat": 1, "AvMerge": 1},
                    "StorageParams": {
                        "CloudStorage": {
                            "Vendor": 1,
                            "Region": "us-east-1",
                            "Bucket": "bench",
                            "AccessKey": "a",
                            "SecretKey": "b",
                        }
                    },
                },
            )
            mixed = await asyncio.to_thread(
                create,
                {
                    **common,
                    "UserId": "rec-2",
                    "UserSig": issue_usersig(app, "rec-2"),
                    "RecordParams": {"RecordMode": 2},
                    "MixTranscodeParams": {
                        "VideoParams": {"Width": 1280, "Height": 720, "Fps": 30, "BitRate": 2000000, "Gop": 2}
                    },
                    "StorageParams": {"CloudVod": {"TencentVod": {"MediaType": 0}}},
                },
            )
            await asyncio.sleep(seconds)

            def delete_and_wait(task_id: str) -> float:
                t0 = time.monotonic()
                req = models.DeleteCloudRecordingRequest()
                req.SdkAppId, req.TaskId = app.sdk_app_id, task_id
                client.DeleteCloudRecording(req)
                d = models.DescribeCloudRecordingRequest()
                d.SdkAppId, d.TaskId = app.sdk_app_id, task_id
                while True:
                    try:
                        client.DescribeCloudRecording(d)
                    except TencentCloudSDKException:
                        return time.monotonic() - t0
                    time.sleep(0.05)

            for name, task_id in (
                ("per-user, MP4 + HLS to S3", single),
                ("mixed 720p30 to the library", mixed),
            ):
                took = await asyncio.to_thread(delete_and_wait, task_id)
                print(f"  {name}: stop -> last file stored in {took:.2f} s")
            objects = s3.list_objects_v2(Bucket="bench").get("KeyCount", 0)
            print(f"  objects in the bucket: {objects}")
            for b in bots:
                b.cancel()
            await asyncio.gather(*bots, return_exceptions=True)
    finally:
        moto.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="media seconds per pipeline in part A")
    ap.add_argument("--users", type=int, default=6, help="publishers in part B")
    ap.add_argument("--window", type=float, default=8.0, help="measurement window in part B (s)")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--skip-pipeline", action="store_true", help="only part B")
    ap.add_argument("--hard", action="store_true", help="camera-like (noisy, moving) video in part A")
    ap.add_argument("--skip-mixed", action="store_true", help="skip part C")
    ap.add_argument("--skip-product", action="store_true", help="skip part D")
    args = ap.parse_args(argv)
    global HARD
    HARD = args.hard
    print(
        f"machine: {os.cpu_count()} CPUs, PyAV {av.__version__}, FFmpeg {av.library_versions['libavcodec']}"
    )
    if not args.skip_pipeline:
        part_a(args.seconds)
        part_a_parallel(min(args.seconds, 10.0), os.cpu_count() or 1)
    if not args.skip_e2e:
        asyncio.run(part_b(args.users, args.window))
    if not args.skip_mixed:
        part_c()
    if not args.skip_product:
        asyncio.run(part_d(min(args.users, 4), 10.0))


if __name__ == "__main__":
    main()
