"""A Python client for roomcast's WebSocket signalling and WHIP/WHEP.

Used by bots and tests: publish given aiortc tracks, subscribe, and count what
arrives per track.  By default received media is not decoded (packets are
counted), which keeps many clients cheap; pass ``decode=True`` to get frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import platform
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import av
import httpx
import websockets
from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from roomcast.domain.whiteboard import Board

from . import aiortc_compat as compat
from .track import TrackKind

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
"""Joins sent on to the room's node (several nodes): one hop is normal, more means a loop."""


def _ws_url(base_url: str, ws_path: str) -> str:
    ws_base = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return ws_base.rstrip("/") + ws_path


async def _post_offer(endpoint: str, sdp: str, token: str) -> httpx.Response:
    """POST a WHIP/WHEP offer, following ``307`` to the room's node with the same offer and token
    (httpx would drop the Authorization header on a redirect to another origin)."""
    async with httpx.AsyncClient(timeout=15.0) as http:
        for _ in range(MAX_REDIRECTS + 1):
            resp = await http.post(
                endpoint,
                content=sdp,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
            )
            if resp.status_code not in (307, 308):
                return resp
            endpoint = str(resp.url.join(resp.headers["location"]))
    raise ClientError("redirect", "too many redirects between nodes")


class ClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class ReceivedTrack:
    """Counters for one received track (keyed by track id, or by mid for WHEP)."""

    key: str
    kind: str
    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    first_at: float | None = None
    last_at: float | None = None


class CountingTrack(MediaStreamTrack):
    """Passes another track's frames through, counting them (what "capture fps" reads)."""

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = inner.kind
        self.inner = inner
        self.frames = 0

    async def recv(self) -> Any:
        frame = await self.inner.recv()
        self.frames += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self.inner.stop()


STALL_S = 0.6
"""A received video with no frame for this long is stalled (the 600 ms freeze threshold)."""


def _sdk_version() -> str:
    from roomcast import __version__

    return f"roomcast-python/{__version__}"


@dataclass
class _Receiving:
    transceiver: RTCRtpTransceiver
    task: asyncio.Task[None]


class MediaCounter:
    """Reads every remote track of a peer connection and counts frames under a key."""

    def __init__(self, key_for: Callable[[RTCRtpTransceiver], str | None], decode: bool) -> None:
        self.tracks: dict[str, ReceivedTrack] = {}
        self._key_for = key_for
        self._decode = decode
        self._receiving: list[_Receiving] = []
        self._changed = asyncio.Event()
        self.taps: dict[str, list[Any]] = {}
        """Keys to keep the received frames or packets of (set ``taps[key] = []`` to start)."""

    def attach(self, pc: RTCPeerConnection) -> None:
        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            tr = next((t for t in pc.getTransceivers() if t.receiver.track is track), None)
            if tr is None:
                return
            if not self._decode:
                compat.enable_passthrough(tr.receiver)
            task = asyncio.ensure_future(self._read(tr, track))
            self._receiving.append(_Receiving(tr, task))

    async def _read(self, tr: RTCRtpTransceiver, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                key = self._key_for(tr)
                if key is None:
                    continue
                rt = self.tracks.get(key)
                if rt is None:
                    rt = self.tracks[key] = ReceivedTrack(key=key, kind=tr.kind)
                now = time.monotonic()
                rt.frames += 1
                if rt.first_at is None:
                    rt.first_at = now
                rt.last_at = now
                tap = self.taps.get(key)
                if tap is not None:
                    tap.append(frame)
                if isinstance(frame, av.Packet):
                    rt.keyframes += int(bool(frame.is_keyframe))
                    rt.bytes += int(frame.size)
                self._changed.set()

    def frames(self, key: str) -> int:
        rt = self.tracks.get(key)
        return rt.frames if rt else 0

    async def wait_frames(self, key: str, count: int, time_limit: float = 10.0) -> int:
        """Wait until ``count`` more frames than now arrived for ``key``; return the total."""
        target = self.frames(key) + count
        deadline = time.monotonic() + time_limit
        while self.frames(key) < target:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{key}: {self.frames(key)} frames, wanted {target}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return self.frames(key)

    def receiver_for(self, key: str) -> Any:
        for r in self._receiving:
            if self._key_for(r.transceiver) == key:
                return r.transceiver.receiver
        return None

    async def close(self) -> None:
        for r in self._receiving:
            r.task.cancel()
        await asyncio.gather(*(r.task for r in self._receiving), return_exceptions=True)


async def _publishing_pc(
    tracks: dict[TrackKind, MediaStreamTrack], video_codecs: Sequence[str]
) -> tuple[RTCPeerConnection, dict[str, TrackKind], dict[TrackKind, RTCRtpTransceiver]]:
    pc = RTCPeerConnection(compat.rtc_configuration())
    by_kind: dict[TrackKind, RTCRtpTransceiver] = {}
    for kind, track in tracks.items():
        tr = pc.addTransceiver(track, direction="sendonly")
        compat.prefer_codecs(tr, list(video_codecs) if kind.media == "video" else list(compat.AUDIO_CODECS))
        by_kind[kind] = tr
    await pc.setLocalDescription(await pc.createOffer())
    kinds_by_mid = {tr.mid: kind for kind, tr in by_kind.items() if tr.mid is not None}
    return pc, kinds_by_mid, by_kind


class RoomClient:
    """One participant over the WebSocket protocol (see docs/signalling.md)."""

    def __init__(
        self,
        base_url: str,
        *,
        app_id: str,
        room_id: str,
        user_id: str,
        token: str,
        ws_path: str = "/rtc/ws",
        decode: bool = False,
        telemetry_interval: float | None = 5.0,
    ) -> None:
        self.ws_path = ws_path
        self.url = _ws_url(base_url, ws_path)
        self._entry_url = self.url
        self._auto_subscribe = False
        self.app_id = app_id
        self.room_id = room_id
        self.user_id = user_id
        self.token = token
        self.session_id: str | None = None
        self.node_id = ""
        """The node that redirected this client last (empty: the node it was given)."""
        self.room: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.mapping: dict[str, str] = {}  # mid -> track id on the receiving connection
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.keyframe_requests: dict[TrackKind, int] = {}
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self.received = MediaCounter(lambda tr: self.mapping.get(tr.mid or ""), decode)
        self._ws: Any = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._event_changed = asyncio.Event()
        self._published: dict[TrackKind, MediaStreamTrack] = {}
        self._pub_transceivers: dict[TrackKind, RTCRtpTransceiver] = {}
        self.board = Board()
        """The room's whiteboard as this client knows it (after :meth:`sync_board`, kept live)."""
        self._wb_waiting: dict[int, dict[str, Any]] = {}
        self._wb_synced = False
        self.drafts: dict[str, dict[str, Any]] = {}
        """Shapes others are drawing now, by user (until their operation arrives)."""
        self.telemetry_interval = telemetry_interval
        self.telemetry_sent = 0
        self._telemetry: asyncio.Task[None] | None = None
        self._client_events: list[dict[str, Any]] = []

    # ----------------------------------------------------------- plumbing

    async def _send(self, msg: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(msg))

    async def request(self, msg: dict[str, Any], time_limit: float = 15.0) -> dict[str, Any]:
        rid = next(self._ids)
        msg = {**msg, "id": rid}
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._send(msg)
            reply = await asyncio.wait_for(fut, time_limit)
        finally:
            self._pending.pop(rid, None)
        if reply.get("type") == "error":
            raise ClientError(str(reply.get("code")), str(reply.get("message")))
        return reply

    async def _read_loop(self) -> None:
        try:
            async for text in self._ws:
                msg = json.loads(text)
                rid = msg.get("id")
                if rid is not None and rid in self._pending:
                    fut = self._pending[rid]
                    if not fut.done():
                        fut.set_result(msg)
                    continue
                await self._on_message(msg)
        except websockets.ConnectionClosed:
            pass
        except Exception:
            log.exception("client %s: reader failed", self.user_id)
        finally:
            ws = self._ws
            if ws is not None:
                self.close_code = ws.close_code
                self.close_reason = ws.close_reason
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ClientError("closed", "connection closed"))
            self.closed.set()
            self._event_changed.set()

    async def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "offer":
            await self._answer_offer(msg)
            return
        if kind == "subscriptions":
            self.mapping = dict(msg.get("mapping") or {})
        if kind == "wb_op" and isinstance(msg.get("op"), dict):
            self._wb_receive([msg["op"]])
        if kind == "wb_draft" and isinstance(msg.get("op"), dict) and msg.get("user_id") != self.user_id:
            self.drafts[str(msg.get("user_id"))] = msg["op"]
        self.events.append(msg)
        self._event_changed.set()

    async def _answer_offer(self, msg: dict[str, Any]) -> None:
        if self.sub_pc is None:
            self.sub_pc = RTCPeerConnection(compat.rtc_configuration())
            self.received.attach(self.sub_pc)
            self._watch_transport(self.sub_pc)
        self.mapping = dict(msg.get("mapping") or {})
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        await self.sub_pc.setLocalDescription(await self.sub_pc.createAnswer())
        # Not awaited through request(): the reader must keep running.
        rid = next(self._ids)
        await self._send({"type": "answer", "id": rid, "sdp": self.sub_pc.localDescription.sdp})

    # ---------------------------------------------------------- telemetry

    def _watch_transport(self, pc: RTCPeerConnection) -> None:
        @pc.on("connectionstatechange")
        def _changed() -> None:
            state = pc.connectionState
            if state in ("connected", "failed", "disconnected"):
                up = "up" if state == "connected" else "down"
                self._client_events.append({"at": time.time(), "name": "transport", "value": up})

    async def _telemetry_loop(self, interval: float) -> None:
        """Every ``interval`` s: what this client measured since the last report (docs/signalling.md)."""
        device = {
            "device_type": "pc",
            "os": f"{platform.system()} {platform.release()}"[:64],
            "sdk_version": _sdk_version(),
        }
        last_at, last_cpu = time.monotonic(), time.process_time()
        sent: dict[TrackKind, int] = {}
        received: dict[str, int] = {}
        with contextlib.suppress(asyncio.CancelledError):
            while not self.closed.is_set():
                await asyncio.sleep(interval)
                now, cpu = time.monotonic(), time.process_time()
                span = max(now - last_at, 1e-3)
                wall = time.time()
                up: dict[str, Any] = {"at": wall, "app_cpu": round(100 * (cpu - last_cpu) / span, 1)}
                for kind, track in self._published.items():
                    if isinstance(track, CountingTrack) and kind is not TrackKind.AUDIO:
                        fps = (track.frames - sent.get(kind, track.frames)) / span if kind in sent else None
                        sent[kind] = track.frames
                        if kind is TrackKind.CAMERA and fps is not None:
                            up["capture_fps"] = up["send_fps"] = round(fps, 2)
                samples = [up]
                for key, rt in list(self.received.tracks.items()):
                    if rt.kind != "video" or "/" not in key:
                        continue
                    peer, kind_name = key.split("/", 1)
                    if kind_name != "camera":
                        continue
                    before = received.get(key)
                    received[key] = rt.frames
                    if before is None:
                        continue
                    stalled = rt.last_at is None or now - rt.last_at > STALL_S
                    stall_ms = min(span, now - (rt.last_at or now - span)) * 1000 if stalled else 0.0
                    samples.append(
                        {
                            "at": wall,
                            "peer": peer,
                            "decode_fps": round((rt.frames - before) / span, 2),
                            "video_stall_ms": round(stall_ms),
                        }
                    )
                events, self._client_events = self._client_events, []
                msg = {"type": "telemetry", "device": device, "samples": samples, "events": events}
                try:
                    await self._send(msg)
                except Exception:
                    return  # the connection is gone; so is the call
                self.telemetry_sent += 1
                last_at, last_cpu = now, cpu

    # ------------------------------------------------------------- public

    async def connect(
        self, *, auto_subscribe: bool = False, time_limit: float = 10.0, retry_s: float = 0.0
    ) -> dict[str, Any]:
        """Join. A ``redirect`` answer (the room is served by another node) is followed, up to
        :data:`MAX_REDIRECTS` times. For ``retry_s`` seconds, a node that cannot be reached or
        cannot place the room now (``routing_unavailable``) is tried again, as after a node died."""
        deadline = asyncio.get_running_loop().time() + retry_s
        entry = self.url
        self._auto_subscribe = auto_subscribe
        hops = 0
        while True:
            try:
                reply = await self._join_once(auto_subscribe, time_limit)
            except (OSError, TimeoutError, websockets.InvalidHandshake, ClientError) as exc:
                await self._drop_connection()
                transient = not isinstance(exc, ClientError) or exc.code in ("routing_unavailable", "closed")
                if not transient or asyncio.get_running_loop().time() >= deadline:
                    raise
                await asyncio.sleep(0.5)
                self.url, hops = entry, 0  # the room's node may be gone: ask the first node again
                continue
            if reply.get("type") != "redirect":
                break
            await self._drop_connection()
            hops += 1
            if hops > MAX_REDIRECTS:
                raise ClientError("redirect", "too many redirects between nodes")
            self.url = str(reply["url"])
            self.node_id = str(reply.get("node_id") or "")
        self.session_id = reply.get("session_id")
        self.room = dict(reply.get("room") or {})
        self._client_events.append({"at": time.time(), "name": "signalling", "value": "up"})
        if self.telemetry_interval and (self._telemetry is None or self._telemetry.done()):
            self._telemetry = asyncio.create_task(self._telemetry_loop(self.telemetry_interval))
        return reply

    async def rejoin(
        self,
        tracks: dict[TrackKind, MediaStreamTrack] | None = None,
        *,
        base_url: str | None = None,
        retry_s: float = 30.0,
        time_limit: float = 10.0,
    ) -> dict[str, Any]:
        """Join again after the session ended (its node died: close 1006; or the room moved to
        another node: 4004), subscribing as before and publishing ``tracks`` (new ones: aiortc
        ends a track when its connection closes). Goes through ``base_url`` (another node) or the
        node first given; the room is placed on a live node once the dead one's lease has run
        out, so joins are retried for ``retry_s`` seconds."""
        await self._drop_connection()
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()
        self.pub_pc = self.sub_pc = None
        self._pub_transceivers = {}
        self._published = {}
        self.mapping = {}
        self.url = _ws_url(base_url, self.ws_path) if base_url else self._entry_url
        reply = await self.connect(
            auto_subscribe=self._auto_subscribe, time_limit=time_limit, retry_s=retry_s
        )
        if tracks:
            await self.publish(tracks)
        return reply

    async def _join_once(self, auto_subscribe: bool, time_limit: float) -> dict[str, Any]:
        self.closed.clear()
        self._ws = await websockets.connect(self.url, open_timeout=time_limit)
        self._reader = asyncio.create_task(self._read_loop())
        return await self.request(
            {
                "type": "join",
                "app_id": self.app_id,
                "room_id": self.room_id,
                "user_id": self.user_id,
                "token": self.token,
                "auto_subscribe": auto_subscribe,
            },
            time_limit,
        )

    async def _drop_connection(self) -> None:
        ws, reader = self._ws, self._reader
        self._ws, self._reader = None, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader

    async def publish(
        self,
        tracks: dict[TrackKind, MediaStreamTrack],
        *,
        video_codecs: Sequence[str] = compat.DEFAULT_VIDEO_CODECS,
    ) -> list[str]:
        """Publish tracks (first call creates the connection; later calls renegotiate)."""
        tracks = {k: t if isinstance(t, CountingTrack) else CountingTrack(t) for k, t in tracks.items()}
        if self.pub_pc is None:
            self._published = dict(tracks)
            pc, kinds_by_mid, by_kind = await _publishing_pc(self._published, video_codecs)
            self.pub_pc = pc
            self._watch_transport(pc)
            msg_type = "publish"
        else:
            pc = self.pub_pc
            by_kind = {}
            for kind, track in tracks.items():
                tr = pc.addTransceiver(track, direction="sendonly")
                compat.prefer_codecs(tr, list(video_codecs) if kind.media == "video" else ["audio/opus"])
                by_kind[kind] = tr
            self._published.update(tracks)
            await pc.setLocalDescription(await pc.createOffer())
            kinds_by_mid = {tr.mid: k for k, tr in {**self._pub_transceivers, **by_kind}.items() if tr.mid}
            msg_type = "renegotiate"
        for kind, tr in by_kind.items():
            self._pub_transceivers[kind] = tr
            compat.on_keyframe_request(tr.sender, functools.partial(self._count_pli, kind))
        reply = await self.request(
            {
                "type": msg_type,
                "sdp": pc.localDescription.sdp,
                "tracks": {m: k.value for m, k in kinds_by_mid.items()},
            }
        )
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        return list(reply.get("tracks") or [])

    def _count_pli(self, kind: TrackKind) -> None:
        self.keyframe_requests[kind] = self.keyframe_requests.get(kind, 0) + 1

    async def unpublish(self, kind: TrackKind) -> None:
        await self.request({"type": "unpublish", "kind": kind.value})

    async def subscribe(self, tracks: Sequence[str] = (), *, all_tracks: bool = False) -> None:
        await self.request({"type": "subscribe", "tracks": list(tracks), "all": all_tracks})

    async def unsubscribe(self, tracks: Sequence[str] = (), *, all_tracks: bool = False) -> None:
        await self.request({"type": "unsubscribe", "tracks": list(tracks), "all": all_tracks})

    async def mute(self, kind: TrackKind, muted: bool = True) -> None:
        await self.request({"type": "mute", "kind": kind.value, "muted": muted})

    async def send_custom(self, cmd_id: int, data: str, *, to: Sequence[str] | None = None) -> int:
        """Send a custom message to the room's other participants (or ``to``); returns how many
        received it."""
        msg: dict[str, Any] = {"type": "custom_message", "cmd_id": cmd_id, "data": data}
        if to is not None:
            msg["to"] = list(to)
        reply = await self.request(msg)
        return int(reply.get("delivered", 0))

    def custom_messages(self, cmd_id: int | None = None) -> list[dict[str, Any]]:
        """Custom messages received so far (``sender``, ``cmd_id``, ``data``), oldest first."""
        return [
            m
            for m in self.events
            if m.get("type") == "custom_message" and (cmd_id is None or m.get("cmd_id") == cmd_id)
        ]

    async def request_keyframe(self, track_id: str) -> bool:
        """Send a PLI for a received track, as a browser does after loss."""
        receiver = self.received.receiver_for(track_id)
        return bool(receiver is not None and await compat.send_pli(receiver))

    async def wait_frames(self, track_id: str, count: int = 1, time_limit: float = 10.0) -> int:
        return await self.received.wait_frames(track_id, count, time_limit)

    async def wait_event(
        self, type_: str, predicate: Callable[[dict[str, Any]], bool] | None = None, time_limit: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + time_limit
        seen = 0
        while True:
            for msg in self.events[seen:]:
                if msg.get("type") == type_ and (predicate is None or predicate(msg)):
                    return msg
            seen = len(self.events)
            if self.closed.is_set():
                raise ClientError("closed", f"connection closed while waiting for {type_}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {type_} event")
            self._event_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event_changed.wait(), left)

    # --------------------------------------------------------- whiteboard

    def _wb_receive(self, ops: list[dict[str, Any]]) -> None:
        """Apply operations in ``seq`` order; one that arrives early waits for those before it."""
        done = {op.get("op_id") for op in ops}
        for user, draft in list(self.drafts.items()):
            if draft.get("op_id") in done:
                del self.drafts[user]
        for op in ops:
            seq = int(op["seq"])
            if seq > self.board.seq:
                self._wb_waiting[seq] = op
        while self.board.seq + 1 in self._wb_waiting:
            self.board.apply(self._wb_waiting.pop(self.board.seq + 1))

    async def sync_board(self) -> Board:
        """Fetch what the board holds beyond what this client has seen (a late joiner's board)."""
        while True:
            reply = await self.request({"type": "wb_sync", "since": self.board.seq})
            self._wb_receive(list(reply.get("ops") or []))
            if not reply.get("more"):
                self._wb_synced = True
                return self.board

    async def draw(self, kind: str, *, op_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """Send one whiteboard operation (docs/whiteboard.md); returns the server's ``wb_ack``.

        Shapes go to the current page unless ``page`` is given. Sending the same ``op_id`` again
        is harmless (the ack says ``duplicate``). After :meth:`sync_board`, this returns once the
        client's own board shows the operation."""
        op: dict[str, Any] = {"op_id": op_id or uuid.uuid4().hex, "kind": kind, **fields}
        if "page" not in op and kind not in ("undo", "redo"):
            op["page"] = self.board.current
        ack = await self.request({"type": "wb_op", "op": op})
        if self._wb_synced:
            await self.wait_board(int(ack["seq"]))  # draw, then see it: later shapes follow pages
        return ack

    async def draft(self, kind: str, *, op_id: str, **fields: Any) -> None:
        """Show the room a shape still being drawn (not stored; the operation with the same
        ``op_id``, sent with :meth:`draw`, ends it)."""
        op: dict[str, Any] = {"op_id": op_id, "kind": kind, "page": self.board.current, **fields}
        await self._send({"type": "wb_draft", "op": op})

    async def wait_board(self, seq: int, time_limit: float = 10.0) -> Board:
        """Wait until the board has applied every operation up to ``seq``."""
        if self.board.seq < seq:
            await self.wait_event("wb_op", lambda m: self.board.seq >= seq, time_limit)
        return self.board

    async def leave(self) -> None:
        if self._ws is not None and not self.closed.is_set():
            with contextlib.suppress(Exception):
                await self._send({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        if self._telemetry is not None:
            self._telemetry.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._telemetry
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2.0)
        await self.received.close()
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()
        for track in self._published.values():
            track.stop()

    async def __aenter__(self) -> RoomClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@dataclass
class WhipPublisher:
    """Publish tracks with WHIP: ``await WhipPublisher.start(url, token, tracks)``."""

    pc: RTCPeerConnection
    resource_url: str
    token: str
    keyframe_requests: dict[TrackKind, int] = field(default_factory=dict)

    @classmethod
    async def start(
        cls,
        endpoint: str,
        token: str,
        tracks: dict[TrackKind, MediaStreamTrack],
        *,
        video_codecs: Sequence[str] = compat.DEFAULT_VIDEO_CODECS,
    ) -> WhipPublisher:
        pc, _, by_kind = await _publishing_pc(tracks, video_codecs)
        kinds = ",".join(k.value for k in tracks)
        sep = "&" if "?" in endpoint else "?"
        resp = await _post_offer(f"{endpoint}{sep}kinds={kinds}", pc.localDescription.sdp, token)
        if resp.status_code != 201:
            await pc.close()
            raise ClientError(str(resp.status_code), resp.text)
        self = cls(pc=pc, resource_url=str(resp.url.join(resp.headers["location"])), token=token)
        for kind, tr in by_kind.items():
            compat.on_keyframe_request(tr.sender, functools.partial(self._count, kind))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=resp.text, type="answer"))
        return self

    def _count(self, kind: TrackKind) -> None:
        self.keyframe_requests[kind] = self.keyframe_requests.get(kind, 0) + 1

    async def stop(self) -> int:
        async with httpx.AsyncClient(timeout=10.0) as http:
            resp = await http.delete(self.resource_url, headers={"Authorization": f"Bearer {self.token}"})
        await self.pc.close()
        return resp.status_code


@dataclass
class WhepViewer:
    """Watch with WHEP; counters are keyed by media kind and order: "audio0", "video0", "video1"."""

    pc: RTCPeerConnection
    resource_url: str
    token: str
    received: MediaCounter

    @classmethod
    async def start(
        cls, endpoint: str, token: str, *, audio: int = 1, video: int = 1, decode: bool = False
    ) -> WhepViewer:
        pc = RTCPeerConnection(compat.rtc_configuration())
        keys: dict[int, str] = {}
        for media, count in (("audio", audio), ("video", video)):
            for i in range(count):
                tr = pc.addTransceiver(media, direction="recvonly")
                if media == "video":
                    compat.prefer_codecs(tr, compat.DEFAULT_VIDEO_CODECS)
                keys[id(tr)] = f"{media}{i}"
        counter = MediaCounter(lambda tr: keys.get(id(tr)), decode)
        counter.attach(pc)
        await pc.setLocalDescription(await pc.createOffer())
        resp = await _post_offer(endpoint, pc.localDescription.sdp, token)
        if resp.status_code != 201:
            await pc.close()
            raise ClientError(str(resp.status_code), resp.text)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=resp.text, type="answer"))
        return cls(
            pc=pc, resource_url=str(resp.url.join(resp.headers["location"])), token=token, received=counter
        )

    async def stop(self) -> int:
        async with httpx.AsyncClient(timeout=10.0) as http:
            resp = await http.delete(self.resource_url, headers={"Authorization": f"Bearer {self.token}"})
        await self.received.close()
        await self.pc.close()
        return resp.status_code
