"""Pushing encoded media to RTMP servers (CDN ingest points): PyAV muxes FLV, an ``ffmpeg``
client process per connection speaks RTMP (see :meth:`RtmpPush._connection` for why).

:class:`RtmpPush` is one destination: its own thread, its own connection and a bounded queue,
so a slow or failing CDN never stalls the producer or the other destinations.  When its queue is
full packets are dropped (counted) and video resumes at the next keyframe; when the connection
fails it reconnects with exponential backoff and starts again on a keyframe.  Each connection
starts its timestamps at 0.

:class:`RtmpFanout` is the :class:`~roomcast.media.mixed.PacketWriter` a relay hands to its
producer (the mixer, or a single-stream copier): every packet goes to every destination, the
destination list can change while it runs (a new URL connects, a removed one closes) and
``wants_keyframe`` asks the producer for an IDR when a destination waits for one.  ``transform``
may rewrite video packets before they fan out (SEI insertion).
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import av

from roomcast.log import event
from roomcast.media.outputs import (
    VIDEO_TIME_BASE,
    AudioParams,
    EncodedPacket,
    VideoParams,
    annexb_parameter_sets,
)

log = logging.getLogger("roomcast.relay")

QUEUE_PACKETS = 600
"""Packets that may wait for one destination (~10 s of 30 fps video with its audio)."""
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
KEYFRAME_REQUEST_S = 0.5
IO_TIMEOUT_S = 5.0
"""Open and read/write timeout of one connection: a stalled CDN counts as failed after this."""

StateListener = Callable[[str, str, str | None], None]
"""Called as ``(url, state, error)`` from a destination's thread when its state changes."""


class PushState:
    """A destination's state; ``connected`` means its RTMP client runs and takes packets (a
    client that cannot reach the CDN ends within the I/O timeout: ``reconnecting``)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


def redact(url: str) -> str:
    """The URL without its query string (stream keys and signatures stay out of logs)."""
    return url.split("?", 1)[0]


@dataclass(slots=True)
class PushStats:
    sent: int = 0
    dropped: int = 0
    connects: int = 0
    failures: int = 0
    bytes: int = 0


class RtmpPush:
    """One RTMP destination fed from a bounded queue by its own thread."""

    def __init__(
        self,
        url: str,
        video: VideoParams | None,
        audio: AudioParams | None,
        *,
        queue_packets: int = QUEUE_PACKETS,
        backoff: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
        io_timeout: float = IO_TIMEOUT_S,
        on_state: StateListener | None = None,
        url_check: Callable[[str], str | None] | None = None,
    ) -> None:
        self.url = url
        self._url_check = url_check
        self.video = video
        self.audio = audio
        self.stats = PushStats()
        self.state = PushState.CONNECTING
        self.error: str | None = None
        self._queue: queue.Queue[EncodedPacket | None] = queue.Queue(queue_packets)
        self._backoff = backoff
        self._timeout = io_timeout
        self._on_state = on_state
        self._closing = threading.Event()
        self._need_key = True
        self._key_asked = 0.0
        self._thread = threading.Thread(target=self._run, name=f"rtmp {redact(url)[-40:]}", daemon=True)
        self._thread.start()

    # -- producer side ---------------------------------------------------------------------
    @property
    def wants_keyframe(self) -> bool:
        """Video waits for a keyframe (a new connection, or packets were dropped); asked at most
        every :data:`KEYFRAME_REQUEST_S` (the producer forces an IDR or sends a PLI)."""
        if self.video is None or not self._need_key or self.state == PushState.RECONNECTING:
            return False
        now = time.monotonic()
        if now - self._key_asked < KEYFRAME_REQUEST_S:
            return False
        self._key_asked = now
        return True

    def put(self, pkt: EncodedPacket) -> None:
        if self._closing.is_set():
            return
        try:
            self._queue.put_nowait(pkt)
        except queue.Full:
            self.stats.dropped += 1
            self._need_key = True  # the decoder's reference chain is broken from here on

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``), then disconnect."""
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    # -- the destination's thread -------------------------------------------------------------
    def _set_state(self, state: str, error: str | None = None) -> None:
        if state == self.state and error == self.error:
            return
        self.state, self.error = state, error
        event(log, "relay.push_state", url=redact(self.url), state=state, error=error)
        if self._on_state is not None:
            try:
                self._on_state(self.url, state, error)
            except Exception:
                log.exception("relay.push_state_listener_failed")

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._closing.is_set():
            started = time.monotonic()
            try:
                finished = self._connection()
            except Exception as exc:
                self.stats.failures += 1
                self._need_key = True
                self._set_state(PushState.RECONNECTING, f"{type(exc).__name__}: {exc}")
                if time.monotonic() - started > 4 * delay:
                    delay = self._backoff[0]  # it worked for a while: start the backoff again
                if self._closing.wait(delay):
                    break
                delay = min(self._backoff[1], delay * 2)
                continue
            if finished:
                break
        self._set_state(PushState.CLOSED, self.error)

    def _first_packet(self) -> EncodedPacket | None:
        """The packet a new connection starts with: a video keyframe (or any audio packet
        for audio-only); None when closing."""
        while True:
            pkt = self._queue.get()
            if pkt is None:
                return None
            if self.video is None or (pkt.kind == "video" and pkt.keyframe):
                return pkt

    def _connection(self) -> bool:
        """One connection's life; returns True when the push was closed normally.

        The RTMP client is an ``ffmpeg`` process per connection fed with FLV through a pipe: its
        network calls can block for as long as the CDN stalls, and inside this process such a
        call would hold the interpreter lock (PyAV does not release it while writing a header or
        a packet), freezing every thread.  Blocked on the pipe, this thread holds nothing; the
        process ends by itself after ``io_timeout`` without progress (``-rw_timeout``)."""
        self._need_key = True
        self._set_state(PushState.CONNECTING, self.error)
        first = self._first_packet()
        if first is None:
            return True
        refusal = self._url_check(self.url) if self._url_check is not None else None
        if refusal is not None:
            raise PermissionError(f"the URL is refused: {refusal}")
        proc = subprocess.Popen(
            _client_command(self.url, self._timeout),
            stdin=subprocess.PIPE,
            bufsize=0,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None
        container: Any = None
        try:
            container = av.open(
                _PipeSink(proc.stdin),
                "w",
                format="flv",
                options={"flvflags": "no_duration_filesize", "flush_packets": "1"},
                buffer_size=4096,
            )
            streams: dict[str, Any] = {}
            if self.video is not None:
                streams["video"] = _video_stream(container, self.video, first.data)
            if self.audio is not None:
                streams["audio"] = _audio_stream(container, self.audio)
            self.stats.connects += 1
            self._set_state(PushState.CONNECTED)
            self._need_key = False
            origin: dict[str, float] = {}
            pkt: EncodedPacket | None = first
            while pkt is not None:
                if pkt.kind in streams and not (pkt.kind == "video" and self._need_key and not pkt.keyframe):
                    if pkt.kind == "video" and pkt.keyframe:
                        self._need_key = False
                    self._mux(container, streams[pkt.kind], pkt, origin)
                    if proc.poll() is not None:
                        raise ConnectionError(_client_error(proc))
                pkt = self._queue.get()
            return True
        except (BrokenPipeError, ValueError, av.error.FFmpegError) as exc:
            if proc.poll() is not None or _wait(proc, 0.5):
                raise ConnectionError(_client_error(proc)) from None
            raise ConnectionError(str(exc)) from None
        finally:
            with contextlib.suppress(Exception):
                if container is not None:
                    container.close()
            with contextlib.suppress(Exception):
                proc.stdin.close()
            if not _wait(proc, self._timeout):
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()

    def _mux(self, container: Any, stream: Any, pkt: EncodedPacket, origin: dict[str, float]) -> None:
        tb = (
            VIDEO_TIME_BASE
            if pkt.kind == "video"
            else Fraction(1, self.audio.sample_rate if self.audio else 1)
        )
        seconds = float(pkt.pts * tb)
        start = origin.setdefault("t", seconds)
        if seconds < start:
            return  # older than the connection (audio queued before its first keyframe)
        out = av.Packet(pkt.data)
        out.pts = out.dts = round((seconds - start) / tb)
        out.time_base = tb
        if pkt.duration:
            out.duration = pkt.duration
        out.is_keyframe = pkt.keyframe
        out.stream = stream
        container.mux(out)
        self.stats.sent += 1
        self.stats.bytes += len(pkt.data)


class _PipeSink:
    """A write-only file object on the client's stdin (PyAV muxes FLV into it)."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe

    def write(self, data: bytes) -> int:
        self._pipe.write(data)
        return len(data)

    def flush(self) -> None:
        self._pipe.flush()

    def seekable(self) -> bool:
        return False


def ffmpeg_binary() -> str:
    return shutil.which("ffmpeg") or "ffmpeg"


def _client_command(url: str, timeout: float) -> list[str]:
    return [
        ffmpeg_binary(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-fflags",
        "nobuffer",
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-f",
        "flv",
        "-i",
        "pipe:0",
        "-map",
        "0",
        "-c",
        "copy",
        "-rw_timeout",
        str(int(timeout * 1_000_000)),
        "-flvflags",
        "no_duration_filesize",
        "-f",
        "flv",
        url,
    ]


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _client_error(proc: subprocess.Popen[bytes]) -> str:
    """The RTMP client's last error line (the URL's query left out)."""
    text = ""
    if proc.stderr is not None:
        with contextlib.suppress(Exception):
            text = proc.stderr.read(4096).decode(errors="replace")
    lines = [redact(line.strip()) for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else f"the RTMP client ended (exit code {proc.returncode})"


def _video_stream(container: Any, params: VideoParams, keyframe: bytes) -> Any:
    if params.codec != "h264":
        raise ValueError("RTMP carries H.264 video only")
    with av.open(io.BytesIO(keyframe), format="h264") as tpl:
        stream = container.add_stream_from_template(tpl.streams.video[0])
    extradata = params.extradata or annexb_parameter_sets(keyframe)
    if extradata is not None:
        stream.codec_context.extradata = extradata
    stream.time_base = VIDEO_TIME_BASE
    return stream


def _audio_stream(container: Any, params: AudioParams) -> Any:
    if params.codec != "aac":
        raise ValueError("RTMP carries AAC audio only")
    # The (unused) encoder PyAV opens writes the same AudioSpecificConfig as ours.
    stream = container.add_stream("aac", rate=params.sample_rate)
    stream.layout = "mono" if params.channels == 1 else "stereo"
    stream.bit_rate = params.bitrate
    stream.format = "fltp"
    stream.time_base = Fraction(1, params.sample_rate)
    return stream


class RtmpFanout:
    """A packet writer that sends every packet to each of its RTMP destinations."""

    def __init__(
        self,
        urls: Iterable[str],
        video: VideoParams | None,
        audio: AudioParams | None,
        *,
        on_state: StateListener | None = None,
        transform: Callable[[EncodedPacket], EncodedPacket] | None = None,
        **push_options: Any,
    ) -> None:
        self.video = video
        self.audio = audio
        self.transform = transform
        self._on_state = on_state
        self._options = push_options
        self._lock = threading.Lock()
        self.pushes: dict[str, RtmpPush] = {}
        self.extra: dict[str, Any] = {}
        """Other destinations (``put``, ``wants_keyframe``), e.g. feedback publishers."""
        self.set_urls(urls)

    def set_urls(self, urls: Iterable[str]) -> None:
        """Connect new destinations and close those no longer listed (the others go on)."""
        wanted = list(dict.fromkeys(urls))
        with self._lock:
            gone = [p for u, p in self.pushes.items() if u not in wanted]
            for url in wanted:
                if url not in self.pushes:
                    self.pushes[url] = RtmpPush(
                        url, self.video, self.audio, on_state=self._on_state, **self._options
                    )
            self.pushes = {u: self.pushes[u] for u in wanted}
        for p in gone:
            threading.Thread(target=p.close, name="rtmp-close", daemon=True).start()

    @property
    def wants_keyframe(self) -> bool:
        wanted = [d.wants_keyframe for d in [*self.pushes.values(), *self.extra.values()]]
        return any(wanted)

    def write(self, packet: EncodedPacket) -> list[Any]:
        if packet.kind == "video" and self.transform is not None:
            packet = self.transform(packet)
        for d in [*self.pushes.values(), *self.extra.values()]:
            d.put(packet)
        return []

    def close(self) -> list[Any]:
        with self._lock:
            pushes = list(self.pushes.values())
        threads = [threading.Thread(target=p.close, daemon=True) for p in pushes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return []

    def states(self) -> dict[str, str]:
        return {u: p.state for u, p in list(self.pushes.items())}
