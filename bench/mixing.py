"""Mixed-recording benchmark: CPU per 720p30 4-user composite and how many run in real time.

Run: ``.venv/bin/python bench/mixing.py`` (about a minute; ``--help`` for the knobs).

What it does:

* Pre-encodes ``--seconds`` of 4 synthetic users (``media.testpattern``: colour, clock, flash)
  as H.264 (libx264 ultrafast, ``--input-size`` at ``--input-fps``) and Opus 20 ms packets, once.
* A replay source implements the recorder's source interface (``list_tracks`` /
  ``subscribe_track``) and hands out those packets in real time, with arrival times, like the SFU
  does.  No WebRTC and no SFU run in this process, so the figures are the mixer's own cost:
  4 x decode, compositing into the canvas, libx264 at the preset, the audio mix, AAC, MP4 writing
  through ``media.outputs``.
* For each preset it runs 1, 2, ... real :class:`~roomcast.media.mixed.MixedRecorder` instances
  side by side (one process, so all of them share the cores this process may use) for
  ``--seconds`` and measures process CPU (``getrusage``) and frames composed late.  "Real time"
  means no late frames and the right number of frames in every file.

It prints per preset: CPU per recording (% of one core) and the most concurrent recordings that
kept up.  Field reference: LiveKit Egress budgets 4 CPUs per room composite (Chrome-based).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from roomcast.domain.layout import Canvas, Layout, Participant, grid
from roomcast.domain.recording import FileNaming
from roomcast.media.mixed import MixedRecorder, MixedSettings, local_outputs
from roomcast.media.outputs import OutputContext
from roomcast.media.testpattern import PatternAudioTrack, PatternVideoTrack
from roomcast.rtc.track import MediaPacket, TrackInfo, TrackKind

USERS = ("u1", "u2", "u3", "u4")


@dataclass
class Encoded:
    info: TrackInfo
    packets: list[tuple[bytes, int, bool]]  # data, pts (RTP clock), keyframe
    time_base: Fraction
    period: float


def encode_inputs(width: int, height: int, fps: int, seconds: float) -> list[Encoded]:
    out: list[Encoded] = []
    for uid in USERS:
        track = PatternVideoTrack(uid, width=width, height=height, fps=fps, realtime=False)
        enc: Any = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.time_base = Fraction(1, 90_000)
        enc.framerate = Fraction(fps)
        enc.bit_rate = 600_000 if width <= 640 else 1_700_000
        enc.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": f"keyint={fps * 2}"}
        pkts: list[tuple[bytes, int, bool]] = []
        for i in range(round(seconds * fps)):
            for p in enc.encode(track.render(i)):
                pkts.append((bytes(p), int(p.pts), bool(p.is_keyframe)))
        for p in enc.encode(None):
            pkts.append((bytes(p), int(p.pts), bool(p.is_keyframe)))
        info = TrackInfo("bench", "room", uid, TrackKind.CAMERA, "video/H264")
        out.append(Encoded(info, pkts, Fraction(1, 90_000), 1 / fps))
        audio = PatternAudioTrack(uid, realtime=False)
        aenc: Any = av.CodecContext.create("libopus", "w")
        aenc.sample_rate, aenc.layout, aenc.format = 48_000, "mono", "s16"
        aenc.bit_rate = 32_000
        aenc.time_base = Fraction(1, 48_000)
        apkts: list[tuple[bytes, int, bool]] = []
        for i in range(round(seconds * 50)):
            for p in aenc.encode(audio.render(i)):
                apkts.append((bytes(p), int(p.pts), True))
        ainfo = TrackInfo("bench", "room", uid, TrackKind.AUDIO, "audio/opus")
        out.append(Encoded(ainfo, apkts, Fraction(1, 48_000), 0.02))
    return out


class ReplaySubscription:
    def __init__(self, enc: Encoded, start: float) -> None:
        self.enc = enc
        self.start = start
        self.i = 0

    async def recv(self) -> MediaPacket:
        if self.i >= len(self.enc.packets):
            await asyncio.sleep(3600)
        data, pts, key = self.enc.packets[self.i]
        self.i += 1
        due = self.start + pts * float(self.enc.time_base)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pkt = av.Packet(data)
        pkt.pts = pts
        return MediaPacket(pkt, self.enc.info, pts, self.enc.time_base, time.monotonic(), time.time(), key)

    def request_keyframe(self) -> None:
        pass

    def close(self) -> None:
        pass


class ReplaySource:
    def __init__(self, inputs: Sequence[Encoded]) -> None:
        self.inputs = {(e.info.user_id, e.info.kind): e for e in inputs}
        self.start = time.monotonic()

    def list_tracks(self, app_key: str, room_id: str) -> list[TrackInfo]:
        return [e.info for e in self.inputs.values()]

    def subscribe_track(self, app_key: str, room_id: str, user_id: str, kind: TrackKind, **_: Any) -> Any:
        return ReplaySubscription(self.inputs[(user_id, kind)], self.start)


def layout(participants: Sequence[Participant], canvas: Canvas) -> Layout:
    return grid(participants, canvas)


async def run_step(
    inputs: list[Encoded], count: int, preset: str, args: argparse.Namespace, root: Path
) -> tuple[float, int, list[int]]:
    recs: list[MixedRecorder] = []
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    for n in range(count):
        ctx = OutputContext(
            root=root / f"{preset}-{count}-{n}",
            naming=FileNaming("mix"),
            variables={"task_id": "b", "app": "bench", "room_id": "room", "user_id": "mix", "stream": "mix"},
            wall_origin=time.time(),
        )
        settings = MixedSettings(
            canvas=Canvas(args.width, args.height),
            fps=args.fps,
            video_bitrate_kbps=args.bitrate,
            preset=preset,
            encoder_threads=args.threads,
        )
        rec = MixedRecorder(ReplaySource(inputs), "bench", "room", layout, settings, local_outputs(ctx))
        await rec.start()
        recs.append(rec)
    await asyncio.sleep(args.seconds - 0.5)
    late = 0
    frames: list[int] = []
    for rec in recs:
        stats = await rec.stop(drain=False)
        late += stats.late_frames
        frames.append(stats.frames)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return cpu / wall / count, late, frames


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="ultrafast,superfast,veryfast")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=2000, help="kbps")
    ap.add_argument("--threads", type=int, default=1, help="libx264 threads per recording")
    ap.add_argument("--input-size", default="640x360")
    ap.add_argument("--input-fps", type=int, default=15)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--max", type=int, default=6, help="most concurrent recordings to try")
    args = ap.parse_args()
    iw, ih = (int(v) for v in args.input_size.split("x"))
    cores = len(os.sched_getaffinity(0))
    canvas = f"{args.width}x{args.height}@{args.fps}"
    print(f"inputs: 4 x H.264 {iw}x{ih}@{args.input_fps} + Opus; canvas {canvas}")
    print(f"cores available to this process: {cores}")
    inputs = encode_inputs(iw, ih, args.input_fps, args.seconds + 2)
    expected = round((args.seconds - 0.5 - 0.4) * args.fps)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            best = 0
            per_rec: float | None = None
            print(f"\npreset {preset}")
            print("  recordings | CPU per recording (% of a core) | late frames | frames per file")
            for count in range(1, args.max + 1):
                cpu, late, frames = await run_step(inputs, count, preset, args, Path(tmp))
                ok = late == 0 and min(frames) >= expected - 2
                print(f"  {count:10d} | {cpu * 100:31.1f} | {late:11d} | {frames} {'ok' if ok else 'BEHIND'}")
                if count == 1:
                    per_rec = cpu
                if not ok:
                    break
                best = count
            assert per_rec is not None
            print(
                f"  => {per_rec * 100:.0f} % of a core per recording alone; "
                f"{best} kept up in real time on {cores} cores "
                f"(~{cores / per_rec:.1f} by CPU arithmetic)"
            )


if __name__ == "__main__":
    asyncio.run(main())
