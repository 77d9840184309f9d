"""Synthetic participants (bots) for tests, demos and benchmarks.

Two plain async functions over :class:`roomcast.rtc.client.RoomClient`:

* :func:`publish_bot` publishes the test pattern of :mod:`roomcast.media.testpattern` (per-user
  colour, burnt-in clock, a flash and a beep every second) or a media file, optionally subscribing
  to everybody else too, and runs until ``duration`` elapses, it is stopped (``stop`` event,
  SIGINT/SIGTERM), or the server ends its session (removed, dismissed, replaced, shut down).
* :func:`subscribe_bot` subscribes to every track in the room (current and future) and counts the
  frames it receives per track, without decoding.

Both return a :class:`BotResult` whose ``reason`` says why the bot stopped. Failures before the bot
is in the room (bad token, server unreachable, bad arguments, media that never connects) raise
:class:`BotError` with a ``code`` and the CLI exit code that goes with it.

When the server URL is a loopback address, the client side offers loopback ICE host candidates
(aioice skips 127.0.0.1 otherwise), unless the process already chose its host addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any, Final
from urllib.parse import urlsplit

import websockets
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from roomcast.media.testpattern import SyntheticParticipant, open_file_source
from roomcast.rtc import aiortc_compat as compat
from roomcast.rtc.client import ClientError, RoomClient
from roomcast.rtc.track import TrackKind

__all__ = [
    "DEFAULT_VIDEO",
    "BotError",
    "BotResult",
    "StopReason",
    "TrackCount",
    "VideoSpec",
    "parse_video",
    "publish_bot",
    "subscribe_bot",
]

VideoSpec = tuple[int, int, int]
"""(width, height, fps)."""

DEFAULT_VIDEO: Final[VideoSpec] = (640, 360, 15)
SCREEN_VIDEO: Final[VideoSpec] = (1280, 720, 5)

# Close codes of the signalling protocol (docs/signalling.md).
_CLOSE_REMOVED: Final = 4001
_CLOSE_DISMISSED: Final = 4002
_CLOSE_REPLACED: Final = 4003
_CLOSE_SHUTDOWN: Final = 4004
_CLOSE_UNAUTHORIZED: Final = 4401


class StopReason(enum.StrEnum):
    """Why a bot stopped."""

    DURATION = "duration"  # the requested duration elapsed
    SIGNAL = "signal"  # SIGINT or SIGTERM
    STOPPED = "stopped"  # the caller set the ``stop`` event
    ENDED = "ended"  # the media file ended
    REMOVED = "removed"  # a moderator removed the bot (close 4001)
    DISMISSED = "dismissed"  # the room was dismissed (close 4002)
    REPLACED = "replaced"  # the same user id joined elsewhere (close 4003)
    SERVER_SHUTDOWN = "server_shutdown"  # close 4004
    DISCONNECTED = "disconnected"  # signalling lost for any other reason
    MEDIA_FAILED = "media_failed"  # a peer connection failed after it had connected

    @property
    def exit_code(self) -> int:
        """The CLI exit code: 0 normal end, 3 removed, 4 dismissed, 1 anything else."""
        if self in (StopReason.DURATION, StopReason.SIGNAL, StopReason.STOPPED, StopReason.ENDED):
            return 0
        if self is StopReason.REMOVED:
            return 3
        if self is StopReason.DISMISSED:
            return 4
        return 1


_CLOSE_REASONS: Final = {
    _CLOSE_REMOVED: StopReason.REMOVED,
    _CLOSE_DISMISSED: StopReason.DISMISSED,
    _CLOSE_REPLACED: StopReason.REPLACED,
    _CLOSE_SHUTDOWN: StopReason.SERVER_SHUTDOWN,
}


class BotError(Exception):
    """The bot could not get into the room. ``code``: ``bad_argument``, ``unauthorized``,
    ``unreachable``, ``join_failed`` or ``media_failed``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def exit_code(self) -> int:
        return 2 if self.code in ("bad_argument", "unauthorized") else 1


@dataclass
class TrackCount:
    """What one bot received of one track."""

    track_id: str
    kind: str
    frames: int
    keyframes: int
    bytes: int
    seconds: float
    """Time between the first and the last frame."""

    @property
    def fps(self) -> float:
        return (self.frames - 1) / self.seconds if self.frames > 1 and self.seconds > 0 else 0.0


@dataclass
class BotResult:
    user_id: str
    room_id: str
    reason: StopReason
    detail: str = ""
    seconds: float = 0.0
    """How long the bot was in the room."""
    published: list[str] = field(default_factory=list)
    """Track ids the server confirmed as published."""
    received: dict[str, TrackCount] = field(default_factory=dict)
    keyframe_requests: dict[str, int] = field(default_factory=dict)
    """PLI/FIR received per published kind."""
    close_code: int | None = None

    @property
    def exit_code(self) -> int:
        return self.reason.exit_code

    def frames(self, track_id: str) -> int:
        tc = self.received.get(track_id)
        return tc.frames if tc else 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reason"] = self.reason.value
        d["exit_code"] = self.exit_code
        for tid, tc in self.received.items():
            d["received"][tid]["fps"] = round(tc.fps, 2)
            d["received"][tid]["seconds"] = round(tc.seconds, 3)
        d["seconds"] = round(self.seconds, 3)
        return d

    def describe(self) -> str:
        """A one-line, human explanation of why the bot stopped."""
        messages = {
            StopReason.DURATION: "the duration elapsed",
            StopReason.SIGNAL: "stopped by a signal",
            StopReason.STOPPED: "stopped",
            StopReason.ENDED: "the media file ended",
            StopReason.REMOVED: "removed from the room",
            StopReason.DISMISSED: "the room was dismissed",
            StopReason.REPLACED: "the same user joined elsewhere",
            StopReason.SERVER_SHUTDOWN: "the server shut down",
            StopReason.DISCONNECTED: "the connection to the server was lost",
            StopReason.MEDIA_FAILED: "the media connection failed",
        }
        text = f"bot {self.user_id} in room {self.room_id}: {messages[self.reason]}"
        return f"{text} ({self.detail})" if self.detail and self.detail != self.reason.value else text


# --------------------------------------------------------------------------------------- helpers

_VIDEO_RE: Final = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*(?:@\s*(\d+))?\s*$")


def parse_video(text: str) -> VideoSpec:
    """``"640x360@15"`` (or ``"640x360"``, 15 fps) to ``(640, 360, 15)``; raises :class:`BotError`."""
    m = _VIDEO_RE.match(text)
    if m is None:
        raise BotError("bad_argument", f"video must look like WIDTHxHEIGHT@FPS, not {text!r}")
    spec = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 15))
    _check_video(spec)
    return spec


def _check_video(spec: VideoSpec) -> None:
    w, h, fps = spec
    if not (16 <= w <= 3840 and 16 <= h <= 2160 and w % 2 == 0 and h % 2 == 0):
        raise BotError("bad_argument", f"video size {w}x{h}: width and height must be even, 16..3840x2160")
    if not 1 <= fps <= 60:
        raise BotError("bad_argument", f"video frame rate {fps}: must be 1..60")


def _check_common(server_url: str, app: str, room: str, user: str, duration: float | None) -> str:
    parts = urlsplit(server_url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise BotError("bad_argument", f"server URL must be http(s)://host[:port], not {server_url!r}")
    for name, value in (("app", app), ("room", room), ("user", user)):
        if not value:
            raise BotError("bad_argument", f"{name} must not be empty")
    if duration is not None and duration < 0:
        raise BotError("bad_argument", "duration must be >= 0")
    base = server_url
    if parts.scheme in ("ws", "wss"):
        base = ("http" if parts.scheme == "ws" else "https") + server_url[len(parts.scheme) :]
    return base


def is_loopback_url(server_url: str) -> bool:
    host = urlsplit(server_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_ice(server_url: str) -> None:
    """Offer loopback host candidates when talking to a loopback server (unless already chosen)."""
    if is_loopback_url(server_url) and compat.ice_host_addresses() is None:
        host = urlsplit(server_url).hostname or ""
        compat.set_ice_host_addresses(["::1"] if host == "::1" else ["127.0.0.1"])


class _SignalHub:
    """Routes SIGINT/SIGTERM to the stop events of the running bots (any number, any loop).

    The previous handlers are saved when the first bot registers and restored when the last one
    leaves. Only the main thread can install handlers; elsewhere bots just do not see signals.
    """

    SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event, list[bool]]] = {}
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        for loop, event, fired in list(self._stops.values()):
            fired[0] = True
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def watch(self, event: asyncio.Event, enabled: bool) -> Iterator[list[bool]]:
        fired = [False]
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield fired
            return
        key = id(fired)
        with self._lock:
            if not self._stops:
                for sig in self.SIGNALS:
                    self._previous[sig] = signal.getsignal(sig)
                    signal.signal(sig, self._handle)
            self._stops[key] = (asyncio.get_running_loop(), event, fired)
        try:
            yield fired
        finally:
            with self._lock:
                self._stops.pop(key, None)
                if not self._stops:
                    for sig, previous in self._previous.items():
                        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
                    self._previous.clear()


_signals = _SignalHub()


async def _connect(client: RoomClient, *, auto_subscribe: bool, time_limit: float) -> None:
    try:
        await client.connect(auto_subscribe=auto_subscribe, time_limit=time_limit)
    except ClientError as exc:
        if exc.code == "unauthorized" or client.close_code == _CLOSE_UNAUTHORIZED:
            raise BotError("unauthorized", f"the server refused the token: {exc}") from exc
        if exc.code == "permission_denied":
            raise BotError("unauthorized", f"not allowed to join: {exc}") from exc
        raise BotError("join_failed", f"could not join room {client.room_id}: {exc}") from exc
    except websockets.InvalidStatus as exc:
        raise BotError(
            "unreachable",
            f"{client.url} is not a roomcast signalling endpoint (HTTP {exc.response.status_code})",
        ) from exc
    except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        raise BotError(
            "unreachable", f"cannot reach the server at {client.url}: {exc or type(exc).__name__}"
        ) from exc


async def _wait_connected(pc: RTCPeerConnection, what: str, time_limit: float) -> None:
    """Wait until ``pc`` connects (ICE + DTLS); raise :class:`BotError` if it fails or times out."""
    deadline = time.monotonic() + time_limit
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed"):
            raise BotError("media_failed", f"the {what} connection {pc.connectionState}")
        if time.monotonic() > deadline:
            raise BotError("media_failed", f"the {what} connection did not connect in {time_limit:g} s")
        await asyncio.sleep(0.05)


def _counts(client: RoomClient) -> dict[str, TrackCount]:
    out: dict[str, TrackCount] = {}
    for key, rt in sorted(client.received.tracks.items()):
        seconds = (rt.last_at - rt.first_at) if rt.first_at is not None and rt.last_at is not None else 0.0
        out[key] = TrackCount(key, rt.kind, rt.frames, rt.keyframes, rt.bytes, seconds)
    return out


async def _ended(track: MediaStreamTrack) -> None:
    done = asyncio.Event()
    track.on("ended", done.set)
    if track.readyState == "ended":
        return
    await done.wait()


async def _pc_failed(client: RoomClient) -> str:
    """Return when a peer connection that had connected fails."""
    while True:
        for name, pc in (("publishing", client.pub_pc), ("receiving", client.sub_pc)):
            if pc is not None and pc.connectionState == "failed":
                return f"the {name} connection failed"
        await asyncio.sleep(0.25)


async def _run(
    server_url: str,
    app: str,
    room: str,
    user: str,
    token: str,
    *,
    duration: float | None,
    auto_subscribe: bool,
    setup: Callable[[RoomClient], Awaitable[tuple[list[str], list[MediaStreamTrack]]]],
    cleanup: Callable[[], None],
    stop: asyncio.Event | None,
    joined: asyncio.Event | None,
    handle_signals: bool,
    connect_timeout: float,
) -> BotResult:
    base = _check_common(server_url, app, room, user, duration)
    _loopback_ice(base)
    stop_event = stop if stop is not None else asyncio.Event()
    client = RoomClient(base, app_id=app, room_id=room, user_id=user, token=token)
    started = time.monotonic()
    result = BotResult(user_id=user, room_id=room, reason=StopReason.STOPPED)
    try:
        with _signals.watch(stop_event, handle_signals) as fired:
            waiters: list[asyncio.Future[Any]] = []
            try:
                await _connect(client, auto_subscribe=auto_subscribe, time_limit=connect_timeout)
                published, finite = await setup(client)
                result.published = published
                if client.pub_pc is not None:
                    await _wait_connected(client.pub_pc, "publishing", connect_timeout)
                started = time.monotonic()
                if joined is not None:
                    joined.set()
                stop_task = asyncio.ensure_future(stop_event.wait())
                closed_task = asyncio.ensure_future(client.closed.wait())
                failed_task = asyncio.ensure_future(_pc_failed(client))
                waiters = [stop_task, closed_task, failed_task]
                ended_task: asyncio.Future[Any] | None = None
                if finite:
                    ended_task = asyncio.ensure_future(asyncio.gather(*(_ended(t) for t in finite)))
                    waiters.append(ended_task)
                time_task: asyncio.Task[Any] | None = None
                if duration is not None:
                    time_task = asyncio.ensure_future(asyncio.sleep(duration))
                    waiters.append(time_task)
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if closed_task.done():
                    code = client.close_code
                    result.close_code = code
                    result.reason = _CLOSE_REASONS.get(code or 0, StopReason.DISCONNECTED)
                    result.detail = client.close_reason or ""
                    if result.reason is StopReason.DISCONNECTED:
                        result.detail = f"close code {code}" + (f": {result.detail}" if result.detail else "")
                elif stop_task.done():
                    result.reason = StopReason.SIGNAL if fired[0] else StopReason.STOPPED
                elif failed_task.done():
                    result.reason = StopReason.MEDIA_FAILED
                    result.detail = failed_task.result()
                elif ended_task is not None and ended_task.done():
                    result.reason = StopReason.ENDED
                else:
                    result.reason = StopReason.DURATION
            except BotError:
                raise
            except ClientError as exc:
                # The session ended while setting up (e.g. removed during publish).
                if client.closed.is_set() and client.close_code in _CLOSE_REASONS:
                    result.reason = _CLOSE_REASONS[client.close_code or 0]
                    result.close_code = client.close_code
                    result.detail = client.close_reason or ""
                else:
                    raise BotError("join_failed", f"could not set up the bot: {exc}") from exc
            finally:
                for w in waiters:
                    w.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
        result.seconds = time.monotonic() - started
        result.received = _counts(client)
        result.keyframe_requests = {k.value: n for k, n in client.keyframe_requests.items()}
        return result
    finally:
        with contextlib.suppress(Exception):
            await client.leave()
        cleanup()


# ----------------------------------------------------------------------------------- the bots


async def publish_bot(
    server_url: str,
    app: str,
    room: str,
    user: str,
    token: str,
    *,
    duration: float | None = None,
    video: VideoSpec | None = DEFAULT_VIDEO,
    audio: bool = True,
    screen: bool = False,
    file: str | None = None,
    loop_file: bool = False,
    subscribe: bool = False,
    video_codecs: Sequence[str] = compat.DEFAULT_VIDEO_CODECS,
    stop: asyncio.Event | None = None,
    joined: asyncio.Event | None = None,
    handle_signals: bool = True,
    connect_timeout: float = 15.0,
) -> BotResult:
    """Join ``room`` as ``user`` and publish until ``duration`` (seconds; ``None``: until stopped).

    Publishes the test pattern of ``user``: ``video`` = (width, height, fps) camera or ``None``,
    ``audio`` microphone, and with ``screen`` a 1280x720@5 screen share. With ``file``, the camera
    and microphone come from a media file instead (re-encoded; ``loop_file`` repeats it, otherwise
    the bot stops with ``ended`` when it finishes). ``subscribe`` also receives every other track
    in the room and counts its frames. ``stop`` stops the bot when set; ``joined`` is set once the
    publishing connection is up. SIGINT/SIGTERM stop it too unless ``handle_signals`` is False.
    """
    _check_common(server_url, app, room, user, duration)
    if video is not None:
        _check_video(video)
    player: Any = None
    participant: SyntheticParticipant | None = None
    tracks: dict[TrackKind, MediaStreamTrack] = {}
    finite: list[MediaStreamTrack] = []
    if file is not None:
        try:
            player = open_file_source(file, loop=loop_file)
        except Exception as exc:
            raise BotError("bad_argument", f"cannot open media file {file!r}: {exc}") from exc
        if audio and player.audio is not None:
            tracks[TrackKind.AUDIO] = player.audio
        if video is not None and player.video is not None:
            tracks[TrackKind.CAMERA] = player.video
        if not loop_file:
            finite = list(tracks.values())
    w, h, fps = video if video is not None else DEFAULT_VIDEO
    if file is None or screen:
        participant = SyntheticParticipant(user, width=w, height=h, fps=fps)
        if file is None:
            if audio:
                tracks[TrackKind.AUDIO] = participant.audio
            if video is not None:
                tracks[TrackKind.CAMERA] = participant.video
        if screen:
            sw, sh, sfps = SCREEN_VIDEO
            tracks[TrackKind.SCREEN] = participant.screen_track(width=sw, height=sh, fps=sfps)
    if not tracks:
        if player is not None:
            _stop_player(player)
        raise BotError("bad_argument", "nothing to publish (no video, no audio, no screen)")

    async def setup(client: RoomClient) -> tuple[list[str], list[MediaStreamTrack]]:
        published = await client.publish(tracks, video_codecs=video_codecs)
        return published, finite

    def cleanup() -> None:
        if participant is not None:
            participant.stop()
        if player is not None:
            _stop_player(player)

    return await _run(
        server_url,
        app,
        room,
        user,
        token,
        duration=duration,
        auto_subscribe=subscribe,
        setup=setup,
        cleanup=cleanup,
        stop=stop,
        joined=joined,
        handle_signals=handle_signals,
        connect_timeout=connect_timeout,
    )


def _stop_player(player: Any) -> None:
    for track in (player.audio, player.video):
        if track is not None:
            track.stop()


async def subscribe_bot(
    server_url: str,
    app: str,
    room: str,
    user: str,
    token: str,
    *,
    duration: float | None,
    stop: asyncio.Event | None = None,
    joined: asyncio.Event | None = None,
    handle_signals: bool = True,
    connect_timeout: float = 15.0,
) -> BotResult:
    """Join ``room`` as ``user``, subscribe to every track (current and future) and count frames
    per track id until ``duration`` elapses (``None``: until stopped or removed). Nothing is
    decoded. ``joined`` is set once the bot is in the room."""

    async def setup(client: RoomClient) -> tuple[list[str], list[MediaStreamTrack]]:
        return [], []

    return await _run(
        server_url,
        app,
        room,
        user,
        token,
        duration=duration,
        auto_subscribe=True,
        setup=setup,
        cleanup=lambda: None,
        stop=stop,
        joined=joined,
        handle_signals=handle_signals,
        connect_timeout=connect_timeout,
    )
