"""SFU forwarding benchmark: CPU per forwarded stream and the most streams one core sustains.

Run: ``.venv/bin/python bench/sfu.py`` (a few minutes; ``--help`` for the knobs).

What it does:

* Starts the server in a child process pinned to ONE core with ``os.sched_setaffinity``: the full
  roomcast server (``--server full``, default: tenancy, UserSig join tokens, activity records,
  SQLite in a temporary directory) or the bare SFU (``--server sfu``: signalling + forwarding only,
  a static token). Everything listens on 127.0.0.1.
* This process (pinned to the other cores) runs N publishers and adds subscribers step by step.
  Publishers send PRE-ENCODED packets (H.264 from libx264 and Opus, encoded once before the run and
  replayed in real time through aiortc's encoded-packet path, see spec/stack-measurements.md §2),
  so the sending side stays cheap. Each subscriber subscribes to every publisher; one "forwarded
  stream" is one publisher's video + its Opus audio delivered to one subscriber (as in §2), so a
  step forwards N x M streams.
* Subscribers count RTP packets and frames (video: marker bit; audio: packets) in a patched
  ``RTCRtpReceiver._handle_rtp_packet`` (``--receiver light``, default) so the client side, which
  shares this box, costs less than the SFU; ``--receiver aiortc`` uses the normal client path
  (jitter buffer, depayloading, a thread per receiver) instead.
* Per step: warm-up, then a measuring window. SFU CPU is the ``utime + stime`` delta of the child
  from ``/proc/<pid>/stat`` (all threads); fps is per (subscriber, publisher) video track.
* The search goes upward until the minimum fps drops below 95 % of the target (or the SFU's core
  is saturated, or the time budget ends), then bisects once between the last good and the first
  bad step.
* Client sockets get 4 MiB receive buffers; datagrams the kernel still drops on the client side
  mark the step "client-limited" (the loss is then not the SFU's).
* The box may be shared: each step also reports how much of the SFU's core other processes used
  (``/proc/stat`` minus the SFU's own time) and the UDP datagrams the kernel dropped on the SFU's
  and the clients' sockets. A lossy step on a contended core (> 10 % used by others) is measured
  again (``--retries``); results that stay contended are flagged as pessimistic.

It prints, per profile (360p15 and 720p30 by default), a table and: CPU per forwarded stream (% of
a core, as the average at the largest sustained step and as the slope of a fit), microseconds per
forwarded RTP packet, and the most forwarded streams one core sustains without frame loss. Compare
with Janus (§7): 0.19-0.27 % of a core per forwarded VP8 360p15 stream, 29-42 us per RTP packet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fractions
import json
import math
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)
STATIC_TOKEN = "bench-token"
CONTENDED_PCT = 10.0


# ================================================================================ server child


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent dies, so a crashed benchmark leaves no server behind."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def serve_child(mode: str, port: int, core: int, data_dir: str) -> int:
    os.sched_setaffinity(0, {core})
    _die_with_parent()
    from roomcast.log import setup_logging

    setup_logging("warning", "text")
    if mode == "full":
        from roomcast.config import Settings
        from roomcast.runtime import Runtime
        from roomcast.server import run

        settings = Settings(
            data_dir=Path(data_dir),
            host="127.0.0.1",
            port=port,
            ice_host_addresses=["127.0.0.1"],
            max_participants_per_room=1000,
            log_level="warning",
            log_format="text",
        )

        async def prepare() -> dict[str, Any]:
            rt = await Runtime.open(settings)
            try:
                created = await rt.bootstrap()
            finally:
                await rt.close()
            assert created is not None
            _, app = created
            return {"app": str(app.sdk_app_id), "sdk_app_id": app.sdk_app_id, "key": app.app_key}

        info = asyncio.run(prepare())
        print(json.dumps(info), flush=True)
        run(settings)
        return 0

    import uvicorn

    from roomcast.rtc.auth import StaticTokenAuthenticator
    from roomcast.rtc.room import RoomManager, SfuConfig
    from roomcast.rtc.testing import build_app

    manager = RoomManager(SfuConfig(max_participants_per_room=1000, ice_host_addresses=("127.0.0.1",)))
    app = build_app(manager, StaticTokenAuthenticator(STATIC_TOKEN))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.on_event("startup")
    async def _start() -> None:
        await manager.start()

    @app.on_event("shutdown")
    async def _stop() -> None:
        await manager.close()

    print(json.dumps({"app": "bench", "sdk_app_id": None, "key": None}), flush=True)
    uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    ).run()
    return 0


class ServerProcess:
    def __init__(self, mode: str, core: int) -> None:
        self.mode = mode
        self.core = core
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="roomcast-bench-")
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, __file__, "--_serve", self.mode, "--_port", str(self.port)),
                *("--_core", str(self.core), "--_data", self._tmp.name),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the server process did not start")
        self.info = json.loads(line)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server process did not become healthy")
            time.sleep(0.1)

    def token(self, user: str) -> str:
        if self.info.get("key") is None:
            return STATIC_TOKEN
        from roomcast.rtc.usersig import gen_usersig

        return gen_usersig(int(self.info["sdk_app_id"]), str(self.info["key"]), user, 3600)

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._tmp.cleanup()


def core_busy_seconds(core: int) -> float:
    """Busy time of one CPU core (everything but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def udp_drops(pid: int) -> int:
    """Datagrams dropped (receive buffer full) on the UDP sockets ``pid`` holds now."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh)
            for line in fh:
                cols = line.split()
                if cols[9] in inodes:
                    total += int(cols[12])
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ============================================================================== encoded media


@dataclass
class Encoded:
    """A loop of encoded packets replayed in real time (pts keeps growing across loops)."""

    kind: str
    packets: list[bytes]
    rate: int  # packets (frames) per second
    step: int  # pts units per packet
    time_base: fractions.Fraction
    kbps: float


def encode_video(width: int, height: int, fps: int, seconds: float, kbps: int) -> Encoded:
    """Encode ``seconds`` of a panning, noisy texture with a moving box as H.264 (baseline, an IDR
    at the loop start and every second, SPS/PPS repeated so late subscribers can start)."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (height // 8 + 1, width // 4 + 1), dtype=np.uint8)
    tex = av.VideoFrame.from_ndarray(small, format="gray").reformat(
        width=2 * width, height=height + 8, interpolation="BICUBIC"
    )
    texture = tex.to_ndarray().astype(np.int16)
    n = round(seconds * fps)
    keyint = fps
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height = width, height
    enc.pix_fmt = "yuv420p"
    enc.time_base = fractions.Fraction(1, fps)
    enc.framerate = fractions.Fraction(fps, 1)
    enc.bit_rate = kbps * 1000
    enc.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "profile": "baseline",
        "x264-params": (
            f"keyint={keyint}:min-keyint={keyint}:scenecut=0:repeat-headers=1:bframes=0:"
            f"vbv-maxrate={kbps}:vbv-bufsize={kbps}:threads=1"
        ),
    }
    packets: list[bytes] = []
    box = max(16, height // 6)
    for i in range(n):
        x = (i * 4) % width
        y = texture[4 : 4 + height, x : x + width].copy()
        y += rng.normal(0, 2, y.shape).astype(np.int16)
        bx = int((width - box) * (0.5 + 0.5 * math.sin(2 * math.pi * i / n)))
        y[height // 3 : height // 3 + box, bx : bx + box] = 235
        yuv = np.empty((height * 3 // 2, width), np.uint8)
        yuv[:height] = np.clip(y, 16, 235).astype(np.uint8)
        yuv[height:] = 128
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = i
        frame.pict_type = av.video.frame.PictureType.I if i == 0 else av.video.frame.PictureType.NONE
        packets.extend(bytes(p) for p in enc.encode(frame))
    packets.extend(bytes(p) for p in enc.encode(None))
    total = sum(len(p) for p in packets)
    return Encoded("video", packets, fps, 90000 // fps, VIDEO_TB, total * 8 / 1000 / seconds)


def encode_audio(seconds: float = 1.0) -> Encoded:
    """Opus 20 ms packets of a 440 Hz tone (mono, 48 kHz)."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = 48000
    n = round(seconds * 50)
    packets: list[bytes] = []
    t = np.arange(960) / 48000
    for i in range(n):
        pcm = (np.sin(2 * math.pi * 440 * (t + i * 0.02)) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i * 960
        packets.extend(bytes(p) for p in enc.encode(frame))
    packets.extend(bytes(p) for p in enc.encode(None))
    total = sum(len(p) for p in packets)
    return Encoded("audio", packets, 50, 960, AUDIO_TB, total * 8 / 1000 / seconds)


class ReplayTrack(MediaStreamTrack):
    """Replays an :class:`Encoded` loop in real time as ``av.Packet`` objects (aiortc packs them)."""

    def __init__(self, media: Encoded) -> None:
        super().__init__()
        self.kind = media.kind
        self._media = media
        self._start: float | None = None
        self._i = 0

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        m = self._media
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._i / m.rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pkt = av.Packet(m.packets[self._i % len(m.packets)])
        pkt.pts = self._i * m.step
        pkt.time_base = m.time_base
        self._i += 1
        return pkt


# ============================================================================ counting receiver


class RecvCounts:
    __slots__ = ("bytes", "frames", "packets", "rtx")

    def __init__(self) -> None:
        self.packets = 0
        self.frames = 0
        self.bytes = 0
        self.rtx = 0


async def _counting_handle_rtp_packet(self: Any, packet: Any, arrival_time_ms: int) -> None:
    counts: RecvCounts | None = self.__dict__.get("_bench_counts")
    if counts is None:
        counts = self._bench_counts = RecvCounts()
    codec = self._RTCRtpReceiver__codecs.get(packet.payload_type)
    if codec is None:
        return
    if codec.name.lower() == "rtx":
        counts.rtx += 1
        return
    counts.packets += 1
    counts.bytes += len(packet.payload)
    if packet.marker or codec.mimeType.lower().startswith("audio/"):
        counts.frames += 1


CLIENT_RCVBUF = 4 * 1024 * 1024


def enlarge_receive_buffers(pc: Any) -> None:
    """Give a client connection's UDP sockets a 4 MiB receive buffer (capped by net.core.rmem_max).

    Hundreds of subscribers share one client process here, so its event loop can fall behind
    for a moment; real subscribers have a machine each. This keeps such hiccups from turning into
    kernel drops that would be blamed on the SFU. The SFU's own sockets are left as they are."""
    for tr in pc.getTransceivers():
        dtls = tr.receiver.transport
        if dtls is None:
            continue
        for proto in getattr(dtls.transport._connection, "_protocols", []):
            sock = proto.transport.get_extra_info("socket") if proto.transport else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)


def install_light_receivers() -> None:
    """Count RTP instead of depayloading, buffering and handing frames to a thread (this process
    only receives as a subscriber, so the patch is process-wide)."""
    RTCRtpReceiver._handle_rtp_packet = _counting_handle_rtp_packet  # type: ignore[method-assign]


# ================================================================================ orchestration


@dataclass
class Profile:
    name: str
    width: int
    height: int
    fps: int
    kbps: int


PROFILES = {
    "360p15": Profile("360p15", 640, 360, 15, 550),
    "720p30": Profile("720p30", 1280, 720, 30, 1600),
}


@dataclass
class Step:
    subscribers: int
    streams: int
    sfu_cpu: float  # % of one core
    client_cpu: float  # % of one core (this process, all threads)
    min_fps: float
    median_fps: float
    min_audio_fps: float
    pkts_per_s: float
    mbps: float
    rss_mib: float
    other_on_core: float  # % of the SFU's core used by anything else (other processes, interrupts)
    sfu_udp_drops: int  # datagrams dropped by the kernel (receive buffer full) during the window
    client_udp_drops: int
    stalled: int  # subscribers that received no video at all in the window
    stalled_states: str  # their receiving connection states, e.g. "connected:3 failed:1"
    ok: bool
    client_limited: bool

    @property
    def contended(self) -> bool:
        """Something else used the SFU's core noticeably: a loss may not be the SFU's limit."""
        return self.other_on_core > CONTENDED_PCT

    @property
    def cpu_per_stream(self) -> float:
        return self.sfu_cpu / self.streams if self.streams else 0.0

    @property
    def us_per_packet(self) -> float:
        return self.sfu_cpu / 100 / self.pkts_per_s * 1e6 if self.pkts_per_s else 0.0


@dataclass
class ProfileResult:
    profile: Profile
    publishers: int
    video_kbps: float
    audio_kbps: float
    steps: list[Step] = field(default_factory=list)
    stopped_because: str = ""


class Subscriber:
    def __init__(self, client: Any) -> None:
        self.client = client

    def counters(self, light: bool) -> dict[str, tuple[int, int, int]]:
        """track id -> (frames, packets, bytes)."""
        out: dict[str, tuple[int, int, int]] = {}
        c = self.client
        if light:
            if c.sub_pc is None:
                return out
            for tr in c.sub_pc.getTransceivers():
                key = c.mapping.get(tr.mid or "")
                counts = tr.receiver.__dict__.get("_bench_counts")
                if key and counts is not None:
                    out[key] = (counts.frames, counts.packets, counts.bytes)
            return out
        for key, rt in c.received.tracks.items():
            out[key] = (rt.frames, rt.frames, rt.bytes)
        return out


class Bench:
    def __init__(self, args: argparse.Namespace, server: ServerProcess, profile: Profile) -> None:
        self.args = args
        self.server = server
        self.profile = profile
        self.publishers: list[Any] = []
        self.subscribers: list[Subscriber] = []
        self.light = args.receiver == "light"
        self._n = 0

    def _client(self, user: str) -> Any:
        from roomcast.rtc.client import RoomClient

        return RoomClient(
            self.server.url,
            app_id=str(self.server.info["app"]),
            room_id="bench",
            user_id=user,
            token=self.server.token(user),
        )

    async def start_publishers(self, video: Encoded, audio: Encoded | None) -> None:
        from roomcast.rtc.track import TrackKind

        for i in range(self.args.publishers):
            c = self._client(f"pub{i + 1}")
            await c.connect()
            tracks: dict[Any, MediaStreamTrack] = {TrackKind.CAMERA: ReplayTrack(video)}
            if audio is not None:
                tracks[TrackKind.AUDIO] = ReplayTrack(audio)
            await c.publish(tracks)
            self.publishers.append(c)

    def _video_keys(self) -> list[str]:
        return [f"pub{i + 1}/camera" for i in range(self.args.publishers)]

    async def _add_one(self) -> Subscriber:
        self._n += 1
        c = self._client(f"sub{self._n}")
        await c.connect(auto_subscribe=True)
        return Subscriber(c)

    async def set_subscribers(self, m: int) -> None:
        # subscribers whose connection died in an overloaded step are replaced by fresh ones
        alive: list[Subscriber] = []
        for sub in self.subscribers:
            pc = sub.client.sub_pc
            if sub.client.closed.is_set() or pc is None or pc.connectionState in ("failed", "closed"):
                await sub.client.close()
            else:
                alive.append(sub)
        self.subscribers = alive
        while len(self.subscribers) > m:
            sub = self.subscribers.pop()
            await sub.client.leave()
        new: list[Subscriber] = []
        while len(self.subscribers) < m:
            batch = min(10, m - len(self.subscribers))
            added = await asyncio.gather(*(self._add_one() for _ in range(batch)))
            self.subscribers.extend(added)  # listed at once, so close() reaches them
            new.extend(added)
        deadline = time.monotonic() + 30
        keys = self._video_keys()
        for sub in new:
            while not all(sub.counters(self.light).get(k, (0, 0, 0))[0] > 0 for k in keys):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{sub.client.user_id} got no video within 30 s")
                await asyncio.sleep(0.1)
            enlarge_receive_buffers(sub.client.sub_pc)

    def _snapshot(
        self,
    ) -> tuple[float, float, float, list[dict[str, tuple[int, int, int]]], int, int, float]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        assert self.server.proc is not None
        return (
            time.monotonic(),
            self.server.cpu_seconds(),
            ru.ru_utime + ru.ru_stime,
            [s.counters(self.light) for s in self.subscribers],
            udp_drops(self.server.proc.pid),
            udp_drops(os.getpid()),
            core_busy_seconds(self.server.core),
        )

    async def measure(self) -> Step:
        await asyncio.sleep(self.args.warmup)
        t0, s0, c0, k0, sd0, cd0, busy0 = self._snapshot()
        await asyncio.sleep(self.args.window)
        t1, s1, c1, k1, sd1, cd1, busy1 = self._snapshot()
        dt = t1 - t0
        vfps: list[float] = []
        afps: list[float] = []
        pkts = 0
        nbytes = 0
        stalled: dict[str, int] = {}
        for sub, before, after in zip(self.subscribers, k0, k1, strict=True):
            sub_fps = []
            for key in self._video_keys():
                sub_fps.append((after.get(key, (0, 0, 0))[0] - before.get(key, (0, 0, 0))[0]) / dt)
                akey = key.replace("/camera", "/audio")
                if not self.args.no_audio:
                    afps.append((after.get(akey, (0, 0, 0))[0] - before.get(akey, (0, 0, 0))[0]) / dt)
            vfps.extend(sub_fps)
            if min(sub_fps) == 0:
                pc = sub.client.sub_pc
                state = "closed-ws" if sub.client.closed.is_set() else (pc.connectionState if pc else "none")
                stalled[state] = stalled.get(state, 0) + 1
            for key, (_, p1, b1) in after.items():
                _, p0, b0 = before.get(key, (0, 0, 0))
                pkts += p1 - p0
                nbytes += b1 - b0
        target = self.profile.fps
        min_fps = min(vfps) if vfps else 0.0
        min_afps = min(afps) if afps else 50.0
        sfu_cpu = (s1 - s0) / dt * 100
        client_cpu = (c1 - c0) / dt * 100
        client_cores = len(os.sched_getaffinity(0))
        return Step(
            subscribers=len(self.subscribers),
            streams=len(self.subscribers) * self.args.publishers,
            sfu_cpu=sfu_cpu,
            client_cpu=client_cpu,
            min_fps=min_fps,
            median_fps=statistics.median(vfps) if vfps else 0.0,
            min_audio_fps=min_afps,
            pkts_per_s=pkts / dt,
            mbps=nbytes * 8 / dt / 1e6,
            rss_mib=self.server.rss_mib(),
            stalled=sum(stalled.values()),
            stalled_states=" ".join(f"{k}:{v}" for k, v in sorted(stalled.items())),
            other_on_core=max(0.0, (busy1 - busy0) / dt * 100 - sfu_cpu),
            sfu_udp_drops=sd1 - sd0,
            client_udp_drops=cd1 - cd0,
            ok=min_fps >= 0.95 * target and min_afps >= 0.95 * 50,
            client_limited=client_cpu >= 90 * client_cores or cd1 - cd0 > 0,
        )

    async def close(self) -> None:
        await asyncio.gather(
            *(s.client.close() for s in self.subscribers), *(p.close() for p in self.publishers)
        )


def _schedule(publishers: int, start: int, limit: int) -> list[int]:
    """Subscriber counts to try: forwarded streams roughly x1.5 each step."""
    out: list[int] = []
    streams = max(start, publishers)
    while streams <= limit:
        m = max(1, math.ceil(streams / publishers))
        if not out or m > out[-1]:
            out.append(m)
        streams = max(streams + publishers, round(streams * 1.5))
    return out


def _print_header() -> None:
    print(
        "  subs streams |  SFU %  %/strm us/pkt | fps min   med audio | pkt/s  Mbit/s | clients % |"
        " other % | RSS MiB | UDP drops sfu/cli",
        flush=True,
    )


def _print_step(s: Step) -> None:
    flags = (
        ("ok" if s.ok else "LOSS")
        + (" client-limited" if s.client_limited else "")
        + (" CONTENDED" if s.contended else "")
    )
    print(
        f"  {s.subscribers:4} {s.streams:7} | "
        f"{s.sfu_cpu:6.1f} {s.cpu_per_stream:6.3f} {s.us_per_packet:6.1f} | "
        f"{s.min_fps:7.1f} {s.median_fps:5.1f} {s.min_audio_fps:5.1f} | {s.pkts_per_s:5.0f} {s.mbps:7.1f} | "
        f"{s.client_cpu:9.1f} | {s.other_on_core:7.1f} | {s.rss_mib:7.0f} | "
        f"{s.sfu_udp_drops:>6}/{s.client_udp_drops:<6} {flags}"
        + (f" stalled subscribers: {s.stalled} ({s.stalled_states})" if s.stalled else ""),
        flush=True,
    )


async def run_profile(args: argparse.Namespace, profile: Profile) -> ProfileResult:
    t_enc = time.monotonic()
    video = encode_video(profile.width, profile.height, profile.fps, args.loop_seconds, profile.kbps)
    audio = None if args.no_audio else encode_audio()
    print(
        f"\n== {profile.name}: {args.publishers} publisher(s), H.264 {profile.width}x{profile.height}"
        f"@{profile.fps} {video.kbps:.0f} kbit/s"
        + ("" if audio is None else f" + Opus {audio.kbps:.0f} kbit/s")
        + f" (encoded in {time.monotonic() - t_enc:.1f} s), server={args.server}, receiver={args.receiver}",
        flush=True,
    )
    result = ProfileResult(profile, args.publishers, video.kbps, audio.kbps if audio else 0.0)
    server = ServerProcess(args.server, args.core)
    server.start()
    _print_header()
    bench = Bench(args, server, profile)
    deadline = time.monotonic() + args.budget
    try:
        await bench.start_publishers(video, audio)
        plan = _schedule(args.publishers, args.start, args.max_streams)
        good: Step | None = None
        bad: Step | None = None
        for m in plan:
            if time.monotonic() + args.warmup + args.window + 5 > deadline:
                result.stopped_because = "time budget"
                break
            await bench.set_subscribers(m)
            step = await bench.measure()
            _print_step(step)
            for _ in range(args.retries):
                if step.ok or not step.contended:
                    break
                print("  (another process used the SFU's core: measuring again)", flush=True)
                step = await bench.measure()
                _print_step(step)
            result.steps.append(step)
            if step.ok:
                good = step
            else:
                bad = step
                result.stopped_because = "frame loss" + (" (core contended)" if step.contended else "")
                break
            if step.sfu_cpu >= 97:
                result.stopped_because = "SFU core saturated"
                break
        else:
            result.stopped_because = "--max-streams reached"
        # bisect between the last good and the first bad step while time allows
        for _ in range(args.refine):
            if good is None or bad is None or bad.subscribers - good.subscribers <= 1:
                break
            if time.monotonic() + args.warmup + args.window + 5 > deadline:
                break
            m = (good.subscribers + bad.subscribers) // 2
            await bench.set_subscribers(m)
            step = await bench.measure()
            _print_step(step)
            for _ in range(args.retries):
                if step.ok or not step.contended:
                    break
                print("  (another process used the SFU's core: measuring again)", flush=True)
                step = await bench.measure()
                _print_step(step)
            result.steps.append(step)
            if step.ok:
                good = step
            else:
                bad = step
    finally:
        await bench.close()
        server.stop()
    return result


def summarize(r: ProfileResult) -> dict[str, Any]:
    ok = [s for s in r.steps if s.ok]
    best = max(ok, key=lambda s: s.streams) if ok else None
    slope = intercept = None
    if len(ok) >= 2:
        xs = [float(s.streams) for s in ok]
        ys = [s.sfu_cpu for s in ok]
        k, b = np.polyfit(xs, ys, 1)
        slope, intercept = float(k), float(b)
    pkts_per_stream = statistics.mean(s.pkts_per_s / s.streams for s in ok) if ok else 0.0
    marginal_us = slope / 100 / pkts_per_stream * 1e6 if slope is not None and pkts_per_stream else None
    capacity = None
    if slope:
        assert intercept is not None
        capacity = int((95 - intercept) / slope)
    failed = [s for s in r.steps if not s.ok]
    limited = any(s.client_limited for s in r.steps)
    contended = any(s.contended for s in r.steps)
    return {
        "profile": r.profile.name,
        "publishers": r.publishers,
        "video_kbps": round(r.video_kbps),
        "audio_kbps": round(r.audio_kbps),
        "max_sustained_streams": best.streams if best else 0,
        "first_loss_streams": min(s.streams for s in failed) if failed else None,
        "sfu_cpu_at_max": round(best.sfu_cpu, 1) if best else None,
        "cpu_per_stream_at_max": round(best.cpu_per_stream, 3) if best else None,
        "us_per_packet_at_max": round(best.us_per_packet, 1) if best else None,
        "cpu_per_stream_slope": round(slope, 3) if slope is not None else None,
        "cpu_fixed": round(intercept, 1) if intercept is not None else None,
        "packets_per_stream_per_s": round(pkts_per_stream, 1),
        "marginal_us_per_packet": round(marginal_us, 1) if marginal_us is not None else None,
        "streams_per_core_extrapolated": capacity,
        "stopped_because": r.stopped_because,
        "client_limited": limited,
        "contended": contended,
        "steps": [{**s.__dict__} for s in r.steps],
    }


def _print_summary(s: dict[str, Any]) -> None:
    print(f"-- {s['profile']} summary")
    print(
        f"   most forwarded streams without frame loss: {s['max_sustained_streams']}"
        f" (first loss at {s['first_loss_streams']}; stopped: {s['stopped_because']})"
        + (" [client side saturated: the SFU figure is a lower bound]" if s["client_limited"] else "")
        + (" [other processes used the SFU's core: figures are pessimistic]" if s["contended"] else "")
    )
    print(
        f"   CPU per forwarded stream: {s['cpu_per_stream_at_max']} % of a core at the maximum"
        f" (SFU at {s['sfu_cpu_at_max']} %), slope {s['cpu_per_stream_slope']} %/stream"
        f" + {s['cpu_fixed']} % fixed"
    )
    print(
        f"   per forwarded RTP packet: {s['us_per_packet_at_max']} us at the maximum (all SFU CPU),"
        f" {s['marginal_us_per_packet']} us marginal ({s['packets_per_stream_per_s']} packets/s per stream)"
    )
    if s["streams_per_core_extrapolated"]:
        print(f"   linear extrapolation to 95 % of the core: ~{s['streams_per_core_extrapolated']} streams")
    print("   Janus 1.1.2 reference (spec §7, VP8 360p15 video only): 0.19-0.27 %/stream, 29-42 us/packet")


async def bench_main(args: argparse.Namespace) -> list[dict[str, Any]]:
    from roomcast.rtc import aiortc_compat as compat

    compat.set_ice_host_addresses(["127.0.0.1"])
    if args.receiver == "light":
        install_light_receivers()
    summaries = []
    for name in args.profiles:
        r = await run_profile(args, PROFILES[name])
        s = summarize(r)
        _print_summary(s)
        summaries.append(s)
    return summaries


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--profiles", nargs="+", choices=sorted(PROFILES), default=["360p15", "720p30"])
    p.add_argument("--publishers", "-n", type=int, default=1, help="publishers (N)")
    p.add_argument("--start", type=int, default=8, help="forwarded streams at the first step")
    p.add_argument("--max-streams", type=int, default=400, help="stop the search here")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds after each step's joins")
    p.add_argument("--window", type=float, default=5.0, help="measuring window, seconds")
    p.add_argument("--budget", type=float, default=150.0, help="seconds per profile at most")
    p.add_argument("--refine", type=int, default=1, help="bisection steps after the first loss")
    p.add_argument("--retries", type=int, default=2, help="re-measure a lossy step on a busy core")
    p.add_argument("--loop-seconds", type=float, default=4.0, help="length of the replayed loop")
    p.add_argument("--no-audio", action="store_true", help="video only (as in the Janus figure)")
    p.add_argument("--server", choices=["full", "sfu"], default="full", help="roomcast server or bare SFU")
    p.add_argument("--receiver", choices=["light", "aiortc"], default="light")
    p.add_argument("--core", type=int, default=0, help="CPU core for the server")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--_serve", help=argparse.SUPPRESS)
    p.add_argument("--_port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--_core", type=int, help=argparse.SUPPRESS)
    p.add_argument("--_data", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args._serve:
        return serve_child(args._serve, args._port, args._core, args._data)
    cores = os.sched_getaffinity(0)
    if args.core not in cores:
        print(f"core {args.core} is not available (have {sorted(cores)})", file=sys.stderr)
        return 2
    others = cores - {args.core}
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    if float(load) > 0.5:
        print(f"note: load average {load} before the start; other processes may disturb the figures")
    if others:
        os.sched_setaffinity(0, others)
    else:
        print("warning: one core only; clients share the SFU's core", file=sys.stderr)
    print(
        f"roomcast SFU benchmark: server on core {args.core},"
        f" clients on cores {sorted(others) or [args.core]}",
        flush=True,
    )
    started = time.monotonic()
    summaries = asyncio.run(bench_main(args))
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
