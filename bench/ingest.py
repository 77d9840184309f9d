"""Stream ingest benchmark: CPU of one ingest forwarded as it is and of one transcoded, and the
latency from the ingest's clock to a WebRTC subscriber.

Run: ``.venv/bin/python bench/ingest.py`` (about a minute; ``--help`` for the knobs).

What it does:

* Makes a 720p30 H.264 clip (no B-frames, 1 s GOP, AAC) with PyAV and serves it over HTTP on
  127.0.0.1, the way a CDN serves an MP4.
* Runs the SFU (signalling + forwarding, a static token) in this process with one WebRTC
  subscriber (aiortc, passthrough: it does not decode) and one ingest job publishing the clip:
  first forwarded as it is (``copy``), then re-encoded to the same size (``transcode``, H.264
  ``veryfast``/``zerolatency``).
* CPU: the ingest pipeline thread's own CPU time (``time.thread_time``: demuxing, decoding,
  encoding, pacing) over the clip's duration, in % of one core; and the whole process's (SFU,
  subscriber, pipeline) from ``getrusage``.
* Latency: for each video frame, the time from the moment the ingest's clock makes it due (the
  source's timestamp on the output timeline) to its arrival at the subscriber (same machine, same
  monotonic clock): the SFU and WebRTC hop. A live source adds the pipeline's fixed lead
  (``LIVE_LEAD_S``, printed) on top; a file adds ``LEAD_S``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tests.support.ingest_media import Capture, make_media, media_server

from roomcast.domain.ingest import IngestSpec, VideoEncoding
from roomcast.media import ingest as ingest_media
from roomcast.media.ingest_job import IngestJob
from roomcast.rtc.auth import StaticTokenAuthenticator
from roomcast.rtc.client import RoomClient
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.testing import serve_sfu

APP, ROOM, TOKEN = "bench", "ingest", "t"


class _TimedPipeline(ingest_media.IngestPipeline):
    cpu_s = 0.0

    def run(self) -> ingest_media.Outcome:
        start = time.thread_time()
        try:
            return super().run()
        finally:
            _TimedPipeline.cpu_s = time.thread_time() - start


async def one_run(url: str, mode: str, seconds: float) -> dict[str, Any]:
    sfu = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
    async with serve_sfu(sfu, StaticTokenAuthenticator(TOKEN)) as base:
        viewer = RoomClient(base, app_id=APP, room_id=ROOM, user_id="viewer", token=TOKEN)
        cap = Capture(viewer)
        viewer.received = cap
        await viewer.connect(auto_subscribe=True)
        spec = IngestSpec(url=url, video=VideoEncoding() if mode == "transcode" else None)
        job = IngestJob(sfu, APP, ROOM, "ingest", spec)
        due: dict[int, float] = {}  # video pts -> when the ingest clock made it due (monotonic)
        deliver = job._deliver

        def record(out: ingest_media.OutPacket) -> None:
            if out.media == "video":
                assert job.pipeline is not None
                due[out.pts] = job.pipeline._t0 + out.due
            deliver(out)

        job._deliver = record  # type: ignore[method-assign]
        ingest_media.IngestPipeline = _TimedPipeline  # type: ignore[misc]
        import roomcast.media.ingest_job as job_module

        job_module.IngestPipeline = _TimedPipeline  # type: ignore[misc]
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        end = await job.run()
        wall = time.monotonic() - t0
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.sleep(0.5)
        await viewer.close()
        await cap.close()
        await sfu.close()
    got = [(int(r.packet.pts or 0), r.arrival) for r in cap.packets.get("ingest/camera", [])]
    lat = sorted((arrival - due[pts]) * 1000 for pts, arrival in _matched(got, due))
    proc_cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    stats = job.pipeline.stats if job.pipeline else None
    return {
        "mode": mode,
        "end": end.reason,
        "wall_s": wall,
        "pipeline_cpu_pct": 100 * _TimedPipeline.cpu_s / seconds,
        "process_cpu_pct": 100 * proc_cpu / wall,
        "frames_sent": len(due),
        "frames_received": len(got),
        "frames_matched": len(lat),
        "latency_ms_p50": statistics.median(lat) if lat else float("nan"),
        "latency_ms_p95": lat[int(0.95 * (len(lat) - 1))] if lat else float("nan"),
        "latency_ms_max": lat[-1] if lat else float("nan"),
        "video_mode": stats.video_mode if stats else None,
    }


def _matched(got: list[tuple[int, float]], due: dict[int, float]) -> list[tuple[int, float]]:
    """Received (pts, arrival) with their pts on the sender's scale. The subscriber's pts are
    rebased by a constant: the one that maps the most received frames onto sent ones."""
    if not got:
        return []
    sent = sorted(due)
    best: list[tuple[int, float]] = []
    for first in sent[:90]:
        shift = first - got[0][0]
        hits = [(pts + shift, a) for pts, a in got if pts + shift in due]
        if len(hits) > len(best):
            best = hits
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="clip length")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--kbps", type=int, default=2500, help="the clip's video bitrate")
    args = ap.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        print(
            f"making a {args.size}@{args.fps} H.264 clip of {args.seconds} s, {args.kbps} kbit/s ...",
            flush=True,
        )
        make_media(
            d / "clip.mp4",
            args.seconds,
            size=(width, height),
            fps=args.fps,
            texture=True,
            bitrate_kbps=args.kbps,
        )
        with media_server(d) as base:
            results = [
                asyncio.run(one_run(f"{base}/clip.mp4", mode, args.seconds)) for mode in ("copy", "transcode")
            ]
    print(f"\ningest of one {args.size}@{args.fps} H.264 stream, {args.seconds} s, on {_cpu()}")
    head = ("mode", "process CPU", "loop thread", "frames", "latency p50/p95/max (ms)")
    print(f"{head[0]:<10} {head[1]:>12} {head[2]:>12} {head[3]:>10} {head[4]:>26}")
    for r in results:
        frames = f"{r['frames_received']}/{r['frames_sent']}"
        lat = f"{r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f} / {r['latency_ms_max']:.1f}"
        cpu, loop = r["process_cpu_pct"], r["pipeline_cpu_pct"]
        print(f"{r['mode']:<10} {cpu:>11.1f}% {loop:>11.1f}% {frames:>10} {lat:>26}")
    extra = results[1]["process_cpu_pct"] - results[0]["process_cpu_pct"]
    print(f"\ntranscoding costs {extra:.1f} % of a core more than forwarding (process CPU: SFU, subscriber,")
    print("ingest; 'loop thread' is the pipeline's own thread without FFmpeg's codec threads).")
    lead, live = ingest_media.LEAD_S * 1000, ingest_media.LIVE_LEAD_S * 1000
    print("latency = due on the ingest clock -> arrival at the WebRTC subscriber; sources add the")
    print(f"pipeline lead: {lead:.0f} ms for files, {live:.0f} ms for live streams (jitter absorption).")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores (shared)"
    except OSError:
        pass
    return "this machine"


if __name__ == "__main__":
    main()
