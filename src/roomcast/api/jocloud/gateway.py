"""JOYY (jocloud) cloud recording REST: ``/app/{appid}/v1/recordoss/{method}?traceId=...``.

Authentication: the seed says only that the ``Token`` header "is Basic authorization". roomcast
reads it as HTTP Basic credentials of an API key pair: ``Token: Basic base64(SecretId:SecretKey)``
(``Authorization: Basic ...`` is accepted too). Codes: no token 1000, a bad or foreign token 1001,
no or malformed appid 1002, bad parameters 2101, throttled 2105. A disabled app: the seed has no
code for it; roomcast answers 1002 ("No appid": the app cannot be used) to every method that starts
or changes recording, while stoprecord and queryrecord keep working so running tasks can be ended.

HTTP status: the seed lists 2101/4005/4011/4012 under "HTTP response 404 error". roomcast answers
business errors (2101, 4xxx) with 404 as written, authentication errors (1000-1002) with 401,
throttling (2105) with 429, internal errors (2104) with 500, and success with 200. The body is
always ``{"code", "message", "traceId", ...}``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from roomcast.api.body import BodyError, parse_json_object, read_body
from roomcast.api.jocloud.errors import JoyError
from roomcast.domain.errors import ErrorKind, NotFound, RoomcastError
from roomcast.domain.tenancy import App, Credentials, KeyStatus
from roomcast.log import event
from roomcast.runtime import Runtime
from roomcast.services.ratelimit import RateLimiter, Throttle

log = logging.getLogger("roomcast.api.jocloud")

RATE_PER_APP_S = 10
# Methods a disabled app may still call; every other (present or future) method is refused on it.
ALLOWED_WHEN_DISABLED = frozenset({"stoprecord", "queryrecord"})
BODY_LIMIT = 1024 * 1024


@dataclass
class JoyContext:
    runtime: Runtime
    credentials: Credentials
    app: App
    trace_id: str
    subpath: list[str]


MethodHandler = Callable[[JoyContext, dict[str, Any]], Awaitable[dict[str, Any]]]


class JoyGateway:
    def __init__(self, limiter: Throttle | None = None) -> None:
        self.methods: dict[str, MethodHandler] = {}
        self.limiter: Throttle = limiter or RateLimiter()

    def add(self, name: str, handler: MethodHandler) -> None:
        self.methods[name] = handler

    async def _credentials(self, rt: Runtime, request: Request) -> Credentials:
        raw = request.headers.get("token") or request.headers.get("authorization")
        if not raw:
            raise JoyError(1000)
        value = raw.strip()
        if value[:6].lower() == "basic ":
            value = value[6:].strip()
        try:
            secret_id, _, secret_key = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise JoyError(1001, "token is not valid Basic credentials") from None
        if not secret_id or not secret_key:
            raise JoyError(1001, "token is not valid Basic credentials")
        creds = await rt.tenancy.lookup_credentials(secret_id)
        if (
            creds is None
            or creds.status is not KeyStatus.ACTIVE
            or not hmac.compare_digest(creds.secret_key.encode(), secret_key.encode())
        ):
            raise JoyError(1001)
        return creds

    async def handle(self, request: Request, appid: str, method: str) -> Response:
        trace_id = request.query_params.get("traceId") or uuid.uuid4().hex
        try:
            payload = await self._handle(request, appid, method, trace_id)
            return JSONResponse({"code": 0, "message": "success", **payload, "traceId": trace_id})
        except JoyError as err:
            event(log, "jocloud.error", code=err.code, method=method)
            return JSONResponse(
                {"code": err.code, "message": err.message, "traceId": trace_id}, status_code=err.status
            )
        except RoomcastError as err:
            code = 2101 if err.kind is ErrorKind.INVALID_ARGUMENT else 2104
            e = JoyError(code, err.message)
            return JSONResponse(
                {"code": e.code, "message": e.message, "traceId": trace_id}, status_code=e.status
            )
        except Exception:
            log.exception("jocloud.internal_error")
            e = JoyError(2104)
            return JSONResponse({"code": e.code, "message": e.message, "traceId": trace_id}, status_code=500)

    async def _handle(self, request: Request, appid: str, method: str, trace_id: str) -> dict[str, Any]:
        rt: Runtime = request.app.state.runtime
        creds = await self._credentials(rt, request)
        if not appid.isdigit() or len(appid) > 10:
            raise JoyError(1002)
        header_app = request.headers.get("appid")
        if header_app is not None and header_app.strip() != appid:
            raise JoyError(1002, "AppID header does not match the URL")
        try:
            app = await rt.tenancy.get_app(int(appid), creds.account_id)
        except NotFound:
            # Another tenant's app and a missing one look the same: this token has no right to it.
            raise JoyError(1001, "the token has no permission for this appid") from None
        if not await self.limiter.allow(("jocloud", app.sdk_app_id), RATE_PER_APP_S, 1.0):
            raise JoyError(2105)
        name, *rest = method.strip("/").split("/")
        handler = self.methods.get(name)
        if handler is None:
            raise JoyError(2101, f"unknown method {name}")
        if not app.enabled and name not in ALLOWED_WHEN_DISABLED:
            raise JoyError(1002, f"the app {app.sdk_app_id} is disabled")
        body: dict[str, Any] = {}
        if request.method == "POST":
            try:
                body = parse_json_object(await read_body(request, BODY_LIMIT))
            except BodyError as exc:
                raise JoyError(2101, exc.message) from None
        if "appid" in body and str(body["appid"]) != appid:
            raise JoyError(2101, "appid in the body does not match the URL")
        ctx = JoyContext(rt, creds, app, trace_id, rest)
        result = await handler(ctx, body)
        event(log, "jocloud.method", method=name, sdk_app_id=app.sdk_app_id)
        return result


async def applyrecord(ctx: JoyContext, body: dict[str, Any]) -> dict[str, Any]:
    """Reserve a recording resource id, valid for five minutes."""
    room = body.get("roomid")
    if room is not None and (not isinstance(room, str) or not room or len(room) > 128):
        raise JoyError(2101, "roomid must be a non-empty string")
    reservation = await ctx.runtime.reservations.create(ctx.app.sdk_app_id, room)
    return {"resid": reservation.reservation_id}


def build_router(gateway: JoyGateway) -> APIRouter:
    router = APIRouter(tags=["jocloud"])

    @router.api_route(
        "/app/{appid}/v1/recordoss/{method:path}", methods=["GET", "POST"], include_in_schema=False
    )
    async def recordoss(request: Request, appid: str, method: str) -> Response:
        return await gateway.handle(request, appid, method)

    return router


def default_gateway() -> JoyGateway:
    gw = JoyGateway()
    gw.add("applyrecord", applyrecord)
    from roomcast.api.jocloud import recording  # it builds on this module

    recording.register(gw)
    return gw
