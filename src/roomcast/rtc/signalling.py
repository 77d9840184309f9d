"""WebSocket signalling for full clients.  The protocol is documented in docs/signalling.md."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from typing import Any, Protocol

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from .auth import Authenticator, Permission
from .errors import AuthError, RtcError
from .events import (
    EVENT_TYPES,
    ClientReport,
    JoinRefused,
    LeaveReason,
    ParticipantLeft,
    RoomDismissed,
    RoomEvent,
    TrackStats,
    WhiteboardDraft,
    WhiteboardOp,
    event_to_dict,
)
from .participant import Participant
from .room import RoomManager, check_custom
from .routing import RoomElsewhere, redirect_message
from .telemetry import TelemetryError, parse_report
from .track import TrackKind

log = logging.getLogger(__name__)

# WebSocket close codes (4000-4999 are application-defined).
CLOSE_LEFT = 4000
CLOSE_REMOVED = 4001
CLOSE_DISMISSED = 4002
CLOSE_REPLACED = 4003
CLOSE_SHUTDOWN = 4004
CLOSE_REDIRECT = 4307  # the room is served by another node: the "redirect" message names it
CLOSE_UNAUTHORIZED = 4401
CLOSE_PROTOCOL = 4400

_CLOSE_FOR_REASON = {
    LeaveReason.REMOVED: CLOSE_REMOVED,
    LeaveReason.DISMISSED: CLOSE_DISMISSED,
    LeaveReason.REPLACED: CLOSE_REPLACED,
    LeaveReason.SERVER_SHUTDOWN: CLOSE_SHUTDOWN,
}

# Events forwarded to clients; per-track stats stay server-side.
_HIDDEN_EVENT_TYPES: tuple[type[RoomEvent], ...] = (TrackStats, ClientReport, JoinRefused)
_CLIENT_EVENT_TYPES = tuple(t for t in EVENT_TYPES if not issubclass(t, _HIDDEN_EVENT_TYPES))


class ProtocolError(RtcError):
    code = "bad_request"


class WhiteboardRefused(RtcError):
    code = "invalid_op"


class DrawDenied(RtcError):
    code = "permission_denied"


class WhiteboardBusy(RtcError):
    code = "rate_limited"


class WhiteboardStore(Protocol):
    """Where boards live (``roomcast.services.whiteboard`` behind the server's runtime).

    ``apply`` raises ``ValueError`` (its message for the client) for an operation it refuses."""

    async def apply(
        self, app_key: str, room_id: str, user_id: str, op: Any
    ) -> tuple[dict[str, Any], bool]: ...

    async def ops(self, app_key: str, room_id: str, since: int, limit: int) -> list[dict[str, Any]]: ...

    def draft(self, op: Any) -> dict[str, Any]:
        """A shape being drawn, checked (``ValueError`` when malformed); nothing is stored."""
        ...


WB_SYNC_LIMIT = 5000
WB_RATE_PER_S = 20.0
WB_BURST = 60.0


def create_signalling_router(
    manager: RoomManager,
    authenticator: Authenticator,
    *,
    path: str = "/rtc/ws",
    whiteboard: WhiteboardStore | None = None,
) -> APIRouter:
    """An APIRouter with one WebSocket endpoint speaking the roomcast signalling protocol."""
    router = APIRouter()

    @router.websocket(path)
    async def signalling(ws: WebSocket) -> None:
        await ws.accept()
        session = _Session(ws, manager, authenticator, whiteboard)
        await session.run()

    return router


class _Session:
    def __init__(
        self,
        ws: WebSocket,
        manager: RoomManager,
        authenticator: Authenticator,
        whiteboard: WhiteboardStore | None = None,
    ) -> None:
        self.ws = ws
        self._connected_at = time.time()
        self.manager = manager
        self.auth = authenticator
        self.whiteboard = whiteboard
        self._wb_tokens = WB_BURST
        self._wb_refill = time.monotonic()
        self._draft_tokens = WB_BURST
        self._draft_refill = time.monotonic()
        self.participant: Participant | None = None
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def send(self, msg: dict[str, Any]) -> None:
        if self._closed:
            return
        async with self._send_lock:
            try:
                await self.ws.send_text(json.dumps(msg))
            except Exception:
                self._closed = True

    async def close(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, reason=reason[:120])

    async def run(self) -> None:
        try:
            first = await self._receive()
            if first.get("type") != "join":
                await self.send(
                    {"type": "error", "code": "bad_request", "message": "first message must be join"}
                )
                await self.close(CLOSE_PROTOCOL, "join first")
                return
            try:
                await self._join(first)
            except AuthError as exc:
                await self.send(_error(first, exc))
                await self.close(CLOSE_UNAUTHORIZED, "unauthorized")
                return
            except RoomElsewhere as exc:
                await self.send(redirect_message(first, exc, self.ws.url.path))
                await self.close(CLOSE_REDIRECT, "redirect")
                return
            except RtcError as exc:
                await self.send(_error(first, exc))
                await self.close(CLOSE_PROTOCOL, exc.code)
                return
            await self._serve()
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("signalling session failed")
        finally:
            p = self.participant
            if p is not None and p.active:
                await p.leave(LeaveReason.DISCONNECTED, "signalling closed")
            await self.close(CLOSE_LEFT)

    async def _receive(self) -> dict[str, Any]:
        text = await self.ws.receive_text()
        try:
            msg = json.loads(text)
        except ValueError as exc:
            raise ProtocolError("invalid JSON") from exc
        if not isinstance(msg, dict):
            raise ProtocolError("messages are JSON objects")
        return msg

    async def _join(self, msg: dict[str, Any]) -> None:
        app_id = str(msg.get("app_id") or "")
        room_id = str(msg.get("room_id") or "")
        user_id = str(msg.get("user_id") or "")
        token = str(msg.get("token") or "")
        if not (app_id and room_id and user_id):
            raise ProtocolError("join needs app_id, room_id and user_id")
        identity = await self.auth.authenticate(token, app_id=app_id, room_id=room_id, user_id=user_id)
        client = self.ws.client
        identity = dataclasses.replace(
            identity,
            client_ip=client.host if client else None,
            user_agent=str(msg.get("sdk") or self.ws.headers.get("user-agent") or "")[:256] or None,
            join_started=self._connected_at,
        )
        try:
            p = await self.manager.join(identity)
        except RtcError as exc:
            if not identity.hidden:
                self.manager.events.publish(
                    JoinRefused(
                        app_key=identity.app_key,
                        room_id=identity.room_id,
                        user_id=identity.user_id,
                        code=exc.code,
                    )
                )
            raise
        p.signal = self.send
        p.auto_subscribe = bool(msg.get("auto_subscribe", False))
        self.participant = p
        await self.send(
            {
                "type": "joined",
                "id": msg.get("id"),
                "session_id": p.session_id,
                "user_id": p.user_id,
                "room": p.room.snapshot(),
            }
        )
        if p.auto_subscribe:
            await p.room._sync_subscriptions(p)

    async def _serve(self) -> None:
        p = self.participant
        assert p is not None
        room = (p.room.app_key, p.room.room_id)
        events = self.manager.events.subscribe(room=room, types=_CLIENT_EVENT_TYPES)
        pump = asyncio.create_task(self._pump_events(events))
        reader = asyncio.create_task(self._read_loop())
        closed = asyncio.create_task(p.closed.wait())
        try:
            await asyncio.wait({pump, reader, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not p.active and not pump.done():
                # Let the pump flush the final events (removed / dismissed) before closing.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pump), 2.0)
        finally:
            events.close()
            for task in (reader, closed, pump):
                task.cancel()
            await asyncio.gather(reader, closed, pump, return_exceptions=True)
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                exc = reader.exception()
                if not isinstance(exc, WebSocketDisconnect):
                    log.warning("signalling reader ended: %r", exc)
        if not p.active:
            reason = p.leave_reason or LeaveReason.LEFT
            await self.close(_CLOSE_FOR_REASON.get(reason, CLOSE_LEFT), p.leave_detail or reason.value)

    async def _pump_events(self, events: Any) -> None:
        p = self.participant
        assert p is not None
        async for event in events:
            if isinstance(event, ParticipantLeft) and event.session_id == p.session_id:
                if event.reason == LeaveReason.REMOVED:
                    await self.send({"type": "removed", "reason": event.detail})
                elif event.reason == LeaveReason.REPLACED:
                    await self.send({"type": "replaced", "reason": event.detail})
                return
            if isinstance(event, RoomDismissed):
                await self.send({"type": "room_dismissed", "reason": event.reason})
                continue
            if getattr(event, "hidden", False):
                continue
            await self.send(event_to_dict(event))

    async def _read_loop(self) -> None:
        p = self.participant
        assert p is not None
        while p.active:
            msg = await self._receive()
            try:
                reply = await self._handle(p, msg)
            except RtcError as exc:
                reply = _error(msg, exc)
            except (KeyError, ValueError, TypeError) as exc:
                reply = _error(msg, ProtocolError(str(exc)))
            if reply is not None:
                reply.setdefault("id", msg.get("id"))
                await self.send(reply)
            if msg.get("type") == "leave":
                return

    async def _handle(self, p: Participant, msg: dict[str, Any]) -> dict[str, Any] | None:
        kind = msg.get("type")
        if kind in ("publish", "renegotiate"):
            tracks = {str(mid): TrackKind(k) for mid, k in (msg.get("tracks") or {}).items()}
            answer = await p.publish(str(msg["sdp"]), tracks or None)
            return {
                "type": "answer",
                "sdp": answer,
                "tracks": [pt.info.track_id for pt in p.published.values()],
            }
        if kind == "unpublish":
            await p.unpublish(TrackKind(msg["kind"]))
            return {"type": "ok"}
        if kind == "subscribe":
            await p.subscribe(list(msg.get("tracks") or []), all_tracks=bool(msg.get("all", False)))
            return {"type": "ok"}
        if kind == "unsubscribe":
            await p.unsubscribe(list(msg.get("tracks") or []), all_tracks=bool(msg.get("all", False)))
            return {"type": "ok"}
        if kind == "answer":
            await p.apply_answer(str(msg["sdp"]))
            return {"type": "ok", "mapping": p.subscriptions()}
        if kind == "mute":
            await p.set_muted(TrackKind(msg["kind"]), bool(msg.get("muted", True)))
            return {"type": "ok"}
        if kind == "leave":
            await p.leave(LeaveReason.LEFT, str(msg.get("reason") or ""))
            return None
        if kind == "custom_message":
            cmd_id, data = msg.get("cmd_id"), msg.get("data")
            check_custom(cmd_id, data)
            to = msg.get("to")
            if to is not None and not (isinstance(to, list) and all(isinstance(u, str) for u in to)):
                raise ProtocolError("to must be a list of user ids")
            assert isinstance(cmd_id, int) and isinstance(data, str)
            delivered = await p.room.send_custom(p.user_id, cmd_id, data, to=to)
            return {"type": "ok", "delivered": delivered}
        if kind == "ping":
            return {"type": "pong"}
        if kind in ("wb_op", "wb_sync"):
            return await self._whiteboard(p, kind, msg)
        if kind == "wb_draft":
            self._draft(p, msg)
            return None
        if kind == "telemetry":
            try:
                report = parse_report(msg)
            except TelemetryError as exc:
                raise ProtocolError(str(exc)) from None
            self.manager.events.publish(
                ClientReport(
                    app_key=p.room.app_key,
                    room_id=p.room.room_id,
                    user_id=p.user_id,
                    session_id=p.session_id,
                    device=report["device"],
                    samples=tuple(report["samples"]),
                    events=tuple(report["events"]),
                )
            )
            return {"type": "ok"} if msg.get("id") is not None else None  # fire and forget
        raise ProtocolError(f"unknown message type {kind!r}")

    async def _whiteboard(self, p: Participant, kind: str, msg: dict[str, Any]) -> dict[str, Any]:
        """Whiteboard messages (docs/whiteboard.md): an operation, or the board since a ``seq``."""
        if self.whiteboard is None:
            raise ProtocolError("this server has no whiteboard")
        app_key, room_id = p.room.app_key, p.room.room_id
        if kind == "wb_sync":
            since = msg.get("since", 0)
            if isinstance(since, bool) or not isinstance(since, int) or since < 0:
                raise ProtocolError("since must be a sequence number >= 0")
            ops = await self.whiteboard.ops(app_key, room_id, since, WB_SYNC_LIMIT + 1)
            more = len(ops) > WB_SYNC_LIMIT
            ops = ops[:WB_SYNC_LIMIT]
            return {"type": "wb_board", "v": WB_VERSION, "ops": ops, "more": more}
        if not p.identity.can(Permission.DRAW):
            raise DrawDenied(f"{p.user_id} may not draw on this board")
        now = time.monotonic()
        self._wb_tokens = min(WB_BURST, self._wb_tokens + (now - self._wb_refill) * WB_RATE_PER_S)
        self._wb_refill = now
        if self._wb_tokens < 1:
            raise WhiteboardBusy(f"more than {WB_RATE_PER_S:g} operations a second; send it again later")
        self._wb_tokens -= 1
        try:
            op, duplicate = await self.whiteboard.apply(app_key, room_id, p.user_id, msg.get("op"))
        except ValueError as exc:
            raise WhiteboardRefused(str(exc)) from None
        if not duplicate:
            self.manager.events.publish(
                WhiteboardOp(app_key=app_key, room_id=room_id, user_id=p.user_id, op=op)
            )
        return {"type": "wb_ack", "op_id": op["op_id"], "seq": op["seq"], "duplicate": duplicate}

    def _draft(self, p: Participant, msg: dict[str, Any]) -> None:
        """Share a shape still being drawn with the room; a bad or excess draft is dropped
        silently (drafts are cosmetic, the operation that ends them is what counts)."""
        if self.whiteboard is None or not p.identity.can(Permission.DRAW):
            return
        now = time.monotonic()
        self._draft_tokens = min(
            WB_BURST, self._draft_tokens + (now - self._draft_refill) * WB_DRAFT_RATE_PER_S
        )
        self._draft_refill = now
        if self._draft_tokens < 1:
            return
        self._draft_tokens -= 1
        try:
            op = self.whiteboard.draft(msg.get("op"))
        except ValueError:
            return
        room = p.room
        self.manager.events.publish(
            WhiteboardDraft(app_key=room.app_key, room_id=room.room_id, user_id=p.user_id, op=op)
        )


WB_VERSION = 1
WB_DRAFT_RATE_PER_S = 30.0


def _error(msg: dict[str, Any], exc: RtcError) -> dict[str, Any]:
    return {"type": "error", "id": msg.get("id"), "code": exc.code, "message": str(exc)}
