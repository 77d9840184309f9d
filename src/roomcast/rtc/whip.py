"""WHIP (ingest, RFC 9725) and WHEP (egress, IETF draft) endpoints.

Non-trickle only: aiortc gathers all candidates before answering, so the
answer is complete and PATCH is refused with 405.

* ``POST {prefix}/whip/{app_id}/{room_id}/{user_id}[?kinds=audio,camera]``
  publishes; 201 with the SDP answer and ``Location`` of the session.
* ``POST {prefix}/whep/{app_id}/{room_id}/{user_id}[?publisher=<user>][&kinds=...]``
  watches ``publisher``'s tracks (or everyone's); ``user_id`` is the viewer.
* ``DELETE`` on the ``Location`` ends the session.

Both need ``Authorization: Bearer <token>``; the token is checked with the
claims in the path. An offer must be a complete WebRTC offer (see :func:`check_offer`); anything
else is answered 400 with the reason before it reaches the peer connection. Bodies are limited to
:data:`MAX_OFFER_BYTES` (413 beyond).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass

from aiortc import sdp as aiosdp
from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from .auth import Authenticator, Identity
from .errors import (
    AuthError,
    NegotiationError,
    NotFoundError,
    PermissionDeniedError,
    RoomClosedError,
    RoomFullError,
    RtcError,
    TooManyRoomsError,
)
from .participant import Participant
from .room import RoomManager
from .routing import RoomElsewhere, RoutingUnavailable
from .track import TrackKind

log = logging.getLogger(__name__)

SDP_TYPE = "application/sdp"
MAX_OFFER_BYTES = 64 * 1024
MAX_MEDIA_SECTIONS = 16


class OfferTooLargeError(NegotiationError):
    code = "offer_too_large"


def check_offer(text: str) -> None:
    """Refuse an SDP offer the peer connection cannot answer: unparsable, no audio or video
    section (a bare ``v=0``), or a section without its mid, direction, codecs, ICE credentials or
    DTLS fingerprint."""
    if not text.startswith("v=0"):
        raise NegotiationError("the body is not an SDP offer (it must start with v=0)")
    try:
        desc = aiosdp.SessionDescription.parse(text)
    except Exception as exc:  # the parser asserts and raises whatever it meets
        raise NegotiationError(f"the SDP offer cannot be parsed ({type(exc).__name__})") from None
    if len(desc.media) > MAX_MEDIA_SECTIONS:
        raise NegotiationError(f"the offer has more than {MAX_MEDIA_SECTIONS} media sections")
    media = [m for m in desc.media if m.kind in ("audio", "video")]
    if not media:
        raise NegotiationError("the offer has no audio or video media section")
    mids: set[str] = set()
    for i, m in enumerate(desc.media):
        where = f"media section {i} ({m.kind})"
        mid = m.rtp.muxId
        if not mid or mid in mids:
            raise NegotiationError(f"{where} needs a unique a=mid")
        mids.add(mid)
        if m.kind not in ("audio", "video"):
            raise NegotiationError(f"{where}: only audio and video sections are accepted")
        if m.direction not in aiosdp.DIRECTIONS:
            raise NegotiationError(f"{where} has no direction (sendrecv, sendonly, recvonly, inactive)")
        if not m.rtp.codecs:
            raise NegotiationError(f"{where} offers no codec (a=rtpmap)")
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise NegotiationError(f"{where} has no ICE credentials (a=ice-ufrag, a=ice-pwd)")
        if m.dtls is None or not m.dtls.fingerprints:
            raise NegotiationError(f"{where} has no DTLS fingerprint (a=fingerprint)")
    for group in desc.group:
        if group.semantic == "BUNDLE" and not set(group.items) <= mids:
            raise NegotiationError("the BUNDLE group names a mid no media section has")


@dataclass
class _Entry:
    participant: Participant
    resource_id: str


def http_status(exc: RtcError) -> int:
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, PermissionDeniedError | RoomFullError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, OfferTooLargeError):
        return 413
    if isinstance(exc, NegotiationError):
        return 400
    if isinstance(exc, TooManyRoomsError | RoomClosedError | RoutingUnavailable):
        return 503
    return 400


def _error(exc: RtcError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    return Response(
        content=json.dumps({"code": exc.code, "message": str(exc)}),
        status_code=http_status(exc),
        media_type="application/json",
        headers=headers,
    )


def _redirect(request: Request, exc: RoomElsewhere) -> Response:
    """307 to the same endpoint on the room's node (RFC 9725 section 4.5: clients follow it, with
    the same offer and token)."""
    url = exc.base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Response(status_code=307, headers={"Location": url, "X-Roomcast-Node": exc.node_id})


def _with_client(identity: Identity, request: Request) -> Identity:
    """Note where the session comes from (stored with the session, never used for auth)."""
    ua = request.headers.get("user-agent")
    return dataclasses.replace(
        identity,
        client_ip=request.client.host if request.client else None,
        user_agent=ua[:256] if ua else None,
    )


async def _read_offer(request: Request) -> bytes:
    too_large = OfferTooLargeError(f"the offer is larger than {MAX_OFFER_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_OFFER_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_OFFER_BYTES:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise NegotiationError("the offer did not arrive complete") from None
    return b"".join(chunks)


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing bearer token")
    return token.strip()


def _kinds(value: str | None) -> list[TrackKind] | None:
    if not value:
        return None
    try:
        return [TrackKind(k.strip()) for k in value.split(",") if k.strip()]
    except ValueError as exc:
        raise NegotiationError(f"bad kinds: {value}") from exc


def create_whip_router(
    manager: RoomManager, authenticator: Authenticator, *, prefix: str = "/rtc"
) -> APIRouter:
    """WHIP and WHEP endpoints under ``prefix``."""
    router = APIRouter()
    sessions: dict[str, _Entry] = {}

    async def _participant(identity: Identity) -> Participant:
        # Reuse the user's live session (e.g. a WebSocket client adding a WHIP
        # stream); otherwise join.
        room = manager.get_room(identity.app_key, identity.room_id)
        if room is not None:
            existing = room.participants.get(identity.user_id)
            if existing is not None and existing.active:
                return existing
        return await manager.join(identity)

    async def _offer(request: Request) -> str:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != SDP_TYPE:
            raise NegotiationError("Content-Type must be application/sdp")
        raw = await _read_offer(request)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NegotiationError("the SDP offer is not UTF-8 text") from None
        check_offer(body)
        return body

    def _created(answer: str, location: str, resource_id: str) -> Response:
        for rid in [r for r, e in sessions.items() if r not in e.participant.resources]:
            sessions.pop(rid, None)
        return Response(
            content=answer,
            status_code=201,
            media_type=SDP_TYPE,
            headers={"Location": location, "ETag": f'"{resource_id}"'},
        )

    @router.post(prefix + "/whip/{app_id}/{room_id}/{user_id}")
    async def whip_publish(request: Request, app_id: str, room_id: str, user_id: str) -> Response:
        joined: Participant | None = None
        try:
            token = _bearer(request)
            identity = await authenticator.authenticate(
                token, app_id=app_id, room_id=room_id, user_id=user_id
            )
            offer = await _offer(request)
            kinds = _kinds(request.query_params.get("kinds"))
            p = await _participant(_with_client(identity, request))
            joined = p if not p.resources and p.signal is None else None
            answer, res = await p.publish_resource(offer, kinds)
        except RoomElsewhere as exc:
            return _redirect(request, exc)
        except RtcError as exc:
            if joined is not None and not joined.resources:
                await joined.leave(detail="publish failed")
            return _error(exc)
        sessions[res.resource_id] = _Entry(p, res.resource_id)
        return _created(answer, f"{prefix}/whip/resource/{res.resource_id}", res.resource_id)

    @router.post(prefix + "/whep/{app_id}/{room_id}/{user_id}")
    async def whep_subscribe(request: Request, app_id: str, room_id: str, user_id: str) -> Response:
        joined: Participant | None = None
        try:
            token = _bearer(request)
            identity = await authenticator.authenticate(
                token, app_id=app_id, room_id=room_id, user_id=user_id
            )
            offer = await _offer(request)
            kinds = _kinds(request.query_params.get("kinds"))
            publisher = request.query_params.get("publisher") or None
            identity = _with_client(identity, request)
            if manager.get_room(identity.app_key, room_id) is None and manager.gate is not None:
                await manager.gate(identity.app_key, room_id)  # served elsewhere: redirected
            if manager.get_room(identity.app_key, room_id) is None:
                raise NotFoundError(f"no room {room_id}")
            p = await _participant(identity)
            joined = p if not p.resources and p.signal is None else None
            answer, res = await p.subscribe_resource(offer, publisher, kinds)
        except RoomElsewhere as exc:
            return _redirect(request, exc)
        except RtcError as exc:
            if joined is not None and not joined.resources:
                await joined.leave(detail="subscribe failed")
            return _error(exc)
        sessions[res.resource_id] = _Entry(p, res.resource_id)
        return _created(answer, f"{prefix}/whep/resource/{res.resource_id}", res.resource_id)

    async def _delete(request: Request, resource_id: str) -> Response:
        entry = sessions.get(resource_id)
        try:
            token = _bearer(request)
            if entry is None:
                raise NotFoundError("no such session")
            p = entry.participant
            await authenticator.authenticate(
                token, app_id=p.room.app_key, room_id=p.room.room_id, user_id=p.user_id
            )
            sessions.pop(resource_id, None)
            if resource_id in p.resources:
                await p.delete_resource(resource_id)
        except RtcError as exc:
            return _error(exc)
        return Response(status_code=200)

    @router.delete(prefix + "/whip/resource/{resource_id}")
    async def whip_delete(request: Request, resource_id: str) -> Response:
        return await _delete(request, resource_id)

    @router.delete(prefix + "/whep/resource/{resource_id}")
    async def whep_delete(request: Request, resource_id: str) -> Response:
        return await _delete(request, resource_id)

    @router.patch(prefix + "/whip/resource/{resource_id}")
    @router.patch(prefix + "/whep/resource/{resource_id}")
    async def no_trickle(resource_id: str) -> Response:
        return Response(status_code=405, headers={"Allow": "DELETE"})

    @router.options(prefix + "/whip/{app_id}/{room_id}/{user_id}")
    @router.options(prefix + "/whep/{app_id}/{room_id}/{user_id}")
    async def options(app_id: str, room_id: str, user_id: str) -> Response:
        return Response(status_code=204, headers={"Accept-Post": SDP_TYPE, "Allow": "OPTIONS, POST"})

    return router
