"""SparkRTC request plumbing: authentication (AK/SK or IAM token), throttling, bodies, envelopes.

Every route of this dialect is built with :class:`SparkRoute`, which turns any failure into
``{"error_code", "error_msg"}`` with the documented status, so FastAPI's own error shapes never
leak out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from roomcast.api.body import BodyError, BodyProblem, parse_json_object, read_body
from roomcast.api.sparkrtc import signing
from roomcast.api.sparkrtc.errors import (
    SparkError,
    from_domain,
    internal,
    invalid,
    malformed_body,
    missing,
    missing_credentials,
    throttled,
    unauthorized,
)
from roomcast.api.sparkrtc.iam import verify_token
from roomcast.domain.errors import RoomcastError
from roomcast.domain.tenancy import KeyStatus
from roomcast.log import event
from roomcast.runtime import Runtime
from roomcast.services.ratelimit import Throttle

log = logging.getLogger("roomcast.api.sparkrtc")

BODY_LIMIT = 12 * 1024 * 1024
SDK_DATE_WINDOW_S = 15 * 60

# Table 1-2: (limit, period seconds, period word) per API category; the scope is ours to choose:
# per tenant and category.
THROTTLE: dict[str, tuple[int, float, str]] = {
    "app": (60, 60.0, "minute"),
    "rule": (60, 60.0, "minute"),
    "auto_record": (60, 60.0, "minute"),
    "callback": (60, 60.0, "minute"),
    "job": (10, 1.0, "second"),
    "room": (60, 60.0, "minute"),
    "stats": (30, 60.0, "minute"),
}

M = TypeVar("M", bound=BaseModel)


def error_response(err: SparkError) -> Response:
    return JSONResponse({"error_code": err.code, "error_msg": err.message}, status_code=err.status)


class SparkRoute(APIRoute):
    """Renders every failure of a SparkRTC route in the vendor's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except SparkError as err:
                event(log, "sparkrtc.error", status=err.status, code=err.code, path=request.url.path)
                return error_response(err)
            except RoomcastError as err:
                return error_response(from_domain(err))
            except BodyError as err:
                return error_response(body_error(err))
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                name = ".".join(str(p) for p in first.get("loc", ())[1:]) or "parameter"
                if first.get("type") == "missing":
                    return error_response(missing(name))
                return error_response(invalid(f"{name}: {first.get('msg', 'invalid')}"))
            except Exception:
                log.exception("sparkrtc.internal_error")
                return error_response(internal())

        return handler


@dataclass(frozen=True)
class SparkCaller:
    """Who is calling: the tenant behind the AK/SK or token."""

    account_id: str
    project_id: str
    secret_id: str
    method: str  # "aksk" or "token"


async def authenticate(request: Request, category: str, path_project_id: str | None = None) -> SparkCaller:
    rt: Runtime = request.app.state.runtime
    token = request.headers.get("x-auth-token")
    authz = request.headers.get("authorization")
    if token:
        creds = await verify_token(rt, token)
        method = "token"
    elif authz:
        try:
            auth = signing.parse_authorization(authz)
        except signing.SignatureError as exc:
            raise unauthorized(exc.message) from None
        creds_or_none = await rt.tenancy.lookup_credentials(auth.access_key)
        if creds_or_none is None or creds_or_none.status is not KeyStatus.ACTIVE:
            raise unauthorized("unknown or revoked access key")
        creds = creds_or_none
        body = await read_body(request, BODY_LIMIT)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        http = signing.HttpRequest(
            method=request.method,
            path=raw_path.decode("latin-1").split("?", 1)[0],
            headers=headers,
            body=body,
            query=request.scope.get("query_string", b"").decode("latin-1"),
        )
        try:
            signing.verify(http, creds.secret_key, auth=auth, window_s=SDK_DATE_WINDOW_S)
        except signing.SignatureError as exc:
            raise unauthorized(exc.message) from None
        method = "aksk"
    else:
        raise missing_credentials()
    header_project = request.headers.get("x-project-id")
    if header_project is not None and header_project != creds.project_id:
        raise unauthorized("X-Project-Id does not belong to this account")
    if path_project_id is not None and path_project_id != creds.project_id:
        raise unauthorized("project_id does not belong to this account")
    limit, period, word = THROTTLE[category]
    limiter: Throttle = request.app.state.limiter
    if not await limiter.allow(("sparkrtc", creds.account_id, category), limit, period):
        raise throttled(limit, word)
    return SparkCaller(creds.account_id, creds.project_id, creds.secret_id, method)


def body_error(err: BodyError) -> SparkError:
    if err.problem is BodyProblem.TOO_LARGE:
        return SparkError(413, "APIGW.0201", f"Request entity too large: {err.message}")
    return malformed_body()  # the vendor's exact text; the reason is not a field to name


async def json_object(request: Request, limit: int = BODY_LIMIT) -> dict[str, Any]:
    """The request body as a JSON object, or the vendor's "malformed body" error."""
    raw = await read_body(request, limit)
    if not raw.strip():
        raise malformed_body()
    return parse_json_object(raw)


async def json_body(request: Request, model: type[M]) -> M:
    data = await json_object(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = ".".join(str(p) for p in first["loc"])
        if first["type"] == "missing":
            raise missing(name) from None
        raise invalid(f"{name}: {first['msg']}") from None


def utc_text(when: datetime | None) -> str:
    """SparkRTC's time format, ``2006-01-02T15:04:05.075Z`` (UTC, milliseconds)."""
    if when is None:
        return ""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
