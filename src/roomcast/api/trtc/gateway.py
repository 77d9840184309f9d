"""TencentCloud API 3.0 endpoint (TRTC 2019-07-22 and TIW 2019-09-19 share it): ``POST /`` and ``GET /``.

Order of checks: size -> signature (TC3 or v1) -> key -> v1 nonce not seen before -> service/version
-> action -> SdkAppId ownership (and, for actions that start a task, the app enabled) -> throttle
-> parameters -> handler. Every answer is HTTP 200 with a Content-Type of
exactly ``application/json``: the Python SDK only looks for ``Error`` under that exact type.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from roomcast.api.body import BodyError, BodyProblem, parse_json_object, read_body
from roomcast.api.trtc import signing
from roomcast.api.trtc.errors import TrtcError, from_domain
from roomcast.api.trtc.params import COMMON_PARAMS, parse, unflatten
from roomcast.domain.errors import NotFound, RoomcastError
from roomcast.domain.tenancy import App, Credentials, KeyStatus
from roomcast.log import event
from roomcast.runtime import Runtime
from roomcast.services.nonces import LocalNonceMemory, NonceMemory
from roomcast.services.ratelimit import RateLimiter, Throttle

log = logging.getLogger("roomcast.api.trtc")

SERVICE_VERSIONS: dict[str, str] = {"trtc": "2019-07-22", "tiw": "2019-09-19"}
GET_LIMIT = 32 * 1024
POST_LIMIT_TC3 = 10 * 1024 * 1024
POST_LIMIT_V1 = 1024 * 1024
DEFAULT_RATE_PER_S = 20.0
SDK_APP_ID_MAX = 2**63 - 1
# A disabled app: TRTC documents no code of its own, so the common "resource is unavailable";
# TIW documents ResourceUnavailable.NotRegistered ("TIW is not enabled").
# A malformed SdkAppId: TIW documents its own code.
BAD_APP_ID_CODES: dict[str, str] = {
    "trtc": "InvalidParameter.SdkAppId",
    "tiw": "InvalidParameter.SdkAppIdNotFound",
}
DISABLED_APP_CODES: dict[str, str] = {
    "trtc": "ResourceUnavailable",
    "tiw": "ResourceUnavailable.NotRegistered",
}


@dataclass
class ActionContext:
    """What a handler knows about the call besides its parameters."""

    runtime: Runtime
    credentials: Credentials
    service: str
    action: str
    region: str | None
    request_id: str
    client_ip: str | None
    _apps: dict[int, App] = field(default_factory=dict)

    @property
    def account_id(self) -> str:
        return self.credentials.account_id

    async def app(self, sdk_app_id: int) -> App:
        """The caller's app; another tenant's (or no) app is ``UnauthorizedOperation.SdkAppId``."""
        if not 0 <= sdk_app_id <= SDK_APP_ID_MAX:
            raise TrtcError(
                BAD_APP_ID_CODES.get(self.service, "InvalidParameter"), "`SdkAppId` is incorrect."
            )
        if sdk_app_id not in self._apps:
            try:
                self._apps[sdk_app_id] = await self.runtime.tenancy.get_app(sdk_app_id, self.account_id)
            except NotFound:
                raise TrtcError(
                    "UnauthorizedOperation.SdkAppId", f"No permission to manipulate SdkAppId {sdk_app_id}."
                ) from None
        return self._apps[sdk_app_id]


Handler = Callable[[ActionContext, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Action:
    name: str
    model: type[BaseModel]
    handler: Handler
    rate_per_s: float = DEFAULT_RATE_PER_S
    rate_period_s: float = 1.0
    invalid_code: str | None = None
    """The code for bad values when no field-specific one exists (e.g. InvalidParameter.OutOfRange)."""
    starts_task: bool = False
    """Refused on a disabled app (recordings, relays, ...); other actions still work on it."""
    field_codes: bool = True
    """Field-specific codes (``InvalidParameter.RoomId``...); TIW documents none."""
    type_code: str | None = None
    """The code for a value of the wrong type, where the service documents one."""


class ActionRegistry:
    """Actions served per (service, version); anything else answers ``InvalidAction``."""

    def __init__(self) -> None:
        self._actions: dict[tuple[str, str], dict[str, Action]] = {}

    def add(self, service: str, action: Action) -> None:
        version = SERVICE_VERSIONS[service]
        self._actions.setdefault((service, version), {})[action.name] = action

    def find(self, service: str, version: str, name: str) -> Action | None:
        return self._actions.get((service, version), {}).get(name)

    def names(self, service: str) -> list[str]:
        return sorted(self._actions.get((service, SERVICE_VERSIONS[service]), {}))


def respond(request_id: str, payload: dict[str, Any]) -> Response:
    body = {"Response": {**payload, "RequestId": request_id}}
    return Response(
        # "replace": a message quoting odd input must still encode (no lone surrogate reaches here).
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace"),
        status_code=200,
        media_type="application/json",
    )


def respond_error(request_id: str, err: TrtcError) -> Response:
    return respond(request_id, {"Error": {"Code": err.code, "Message": err.message}})


_SIG_CODES = signing.TENCENT_ERROR_CODES


def _sig_error(exc: signing.SignatureError) -> TrtcError:
    return TrtcError(_SIG_CODES[exc.reason], exc.message)


class Tc3Gateway:
    def __init__(
        self, registry: ActionRegistry, limiter: Throttle | None = None, nonces: NonceMemory | None = None
    ) -> None:
        self.registry = registry
        self.limiter: Throttle = limiter or RateLimiter()
        self.nonces: NonceMemory = nonces or LocalNonceMemory()

    async def _credentials(self, rt: Runtime, secret_id: str) -> Credentials:
        if not secret_id.startswith("AKID") or not secret_id.isalnum():
            raise TrtcError("AuthFailure.InvalidSecretId", "Invalid key (not a TencentCloud API key type).")
        creds = await rt.tenancy.lookup_credentials(secret_id)
        if creds is None or creds.status is not KeyStatus.ACTIVE:
            raise TrtcError("AuthFailure.SecretIdNotFound", "The SecretId is not found or has been disabled.")
        return creds

    async def handle(self, request: Request) -> Response:
        rid: str = request.scope.get("state", {}).get("request_id") or ""
        try:
            return respond(rid, await self._handle(request, rid))
        except TrtcError as err:
            event(log, "trtc.error", code=err.code, action=request.headers.get("x-tc-action"))
            return respond_error(rid, err)
        except RoomcastError as err:
            return respond_error(rid, from_domain(err))
        except BodyError as err:
            return respond_error(rid, _body_error(err))
        except Exception:
            log.exception("trtc.internal_error")
            return respond_error(rid, TrtcError("InternalError", "Internal error."))

    async def _handle(self, request: Request, rid: str) -> dict[str, Any]:
        rt: Runtime = request.app.state.runtime
        method = request.method.upper()
        if method not in ("GET", "POST"):
            raise TrtcError("UnsupportedProtocol", "Only GET and POST requests are supported.")
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        if method == "GET" and len(raw_query) > GET_LIMIT:
            raise TrtcError("RequestSizeLimitExceeded", "The request size exceeds the upper limit.")
        body = await read_body(request, POST_LIMIT_TC3)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        http = signing.HttpRequest(method=method, headers=headers, body=body, query=raw_query, path="/")
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        auth_header = request.headers.get("authorization")
        window = rt.settings.signature_window_s

        if auth_header:
            # TC3-HMAC-SHA256
            try:
                auth = signing.parse_tc3_authorization(auth_header)
            except signing.SignatureError as exc:
                raise _sig_error(exc) from None
            creds = await self._credentials(rt, auth.secret_id)
            try:
                signing.verify_tc3(http, creds.secret_key, auth=auth, window_s=window)
            except signing.SignatureError as exc:
                raise _sig_error(exc) from None
            service = auth.service
            action_name = request.headers.get("x-tc-action") or ""
            version = request.headers.get("x-tc-version") or ""
            region = request.headers.get("x-tc-region")
            if method == "GET" or content_type == "application/x-www-form-urlencoded":
                try:
                    data = unflatten(signing.parse_v1_form(raw_query if method == "GET" else body))
                except signing.SignatureError:
                    raise TrtcError(
                        "InvalidParameter", "The request parameters are not UTF-8 form data."
                    ) from None
            elif content_type in ("application/json", ""):
                data = parse_json_object(body)
            else:
                raise TrtcError("InvalidRequest", f"Content-Type {content_type} is not supported.")
        else:
            # v1: HmacSHA1 / HmacSHA256 over the parameters (GET query or POST form body)
            if method == "POST" and content_type != "application/x-www-form-urlencoded":
                raise TrtcError(
                    "AuthFailure.InvalidAuthorization", "A JSON request must be signed with TC3-HMAC-SHA256."
                )
            if method == "POST" and len(body) > POST_LIMIT_V1:
                raise TrtcError("RequestSizeLimitExceeded", "The request size exceeds the upper limit.")
            try:
                pairs = signing.parse_v1_form(raw_query if method == "GET" else body)
                v1 = signing.parse_v1_params(pairs)
            except signing.SignatureError as exc:
                raise _sig_error(exc) from None
            creds = await self._credentials(rt, v1.secret_id)
            host = request.headers.get("host") or ""
            try:
                signing.verify_v1(method, host, v1, creds.secret_key, window_s=window)
            except signing.SignatureError as exc:
                raise _sig_error(exc) from None
            # v1 carries a Nonce so that a repeat can be refused: once per key inside the window.
            if not await self.nonces.claim(f"trtc-v1:{creds.secret_id}", v1.nonce, v1.timestamp + window):
                raise TrtcError(
                    "AuthFailure.SignatureExpire",
                    "This Nonce was already used with this SecretId inside the signature window; "
                    "sign the request again with a new Nonce.",
                )
            common = dict(pairs)
            action_name = common.get("Action", "")
            version = common.get("Version", "")
            region = common.get("Region")
            service = next((s for s, v in SERVICE_VERSIONS.items() if v == version), "")
            data = unflatten(pairs)

        if not action_name:
            raise TrtcError("MissingParameter", "The request is missing a required parameter `Action`.")
        if not version:
            raise TrtcError("MissingParameter", "The request is missing a required parameter `Version`.")
        if service not in SERVICE_VERSIONS:
            raise TrtcError("NoSuchProduct", f"The product {service or version} does not exist.")
        if version != SERVICE_VERSIONS[service]:
            raise TrtcError("NoSuchVersion", f"The API version {version} does not exist.")
        action = self.registry.find(service, version, action_name)
        if action is None:
            raise TrtcError("InvalidAction", f"The API `{action_name}` does not exist or is not served.")

        for key in list(data):
            if key in COMMON_PARAMS:
                data.pop(key)
        ctx = ActionContext(
            runtime=rt,
            credentials=creds,
            service=service,
            action=action_name,
            region=region,
            request_id=rid,
            client_ip=request.client.host if request.client else None,
        )
        sdk_app_id = _sdk_app_id(data, BAD_APP_ID_CODES[service])
        if sdk_app_id is not None:
            app = await ctx.app(sdk_app_id)
            if action.starts_task and not app.enabled:
                raise TrtcError(DISABLED_APP_CODES[service], f"The application {sdk_app_id} is disabled.")
        throttle_key = (service, sdk_app_id if sdk_app_id is not None else creds.account_id, action_name)
        if not await self.limiter.allow(throttle_key, action.rate_per_s, action.rate_period_s):
            raise TrtcError("RequestLimitExceeded", "The number of requests exceeds the frequency limit.")
        params = parse(
            action.model,
            data,
            action.invalid_code,
            field_codes=action.field_codes,
            type_code=action.type_code,
        )
        started = time.perf_counter()
        result = await action.handler(ctx, params)
        event(
            log,
            "trtc.action",
            service=service,
            action=action_name,
            account_id=creds.account_id,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return result


def _sdk_app_id(data: dict[str, Any], bad_code: str) -> int | None:
    value = data.get("SdkAppId")
    if value is None:
        return None
    text = str(value).strip()
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or not text.isascii()
        or not text.isdigit()
    ):
        raise TrtcError(bad_code, "`SdkAppId` is incorrect.")
    number = int(text)
    if number > SDK_APP_ID_MAX:
        raise TrtcError(bad_code, "`SdkAppId` is incorrect.")
    return number


def _body_error(err: BodyError) -> TrtcError:
    if err.problem is BodyProblem.TOO_LARGE:
        return TrtcError("RequestSizeLimitExceeded", "The request size exceeds the upper limit.")
    return TrtcError("InvalidParameter", f"The request body is invalid: {err.message}.")


def build_router(gateway: Tc3Gateway) -> APIRouter:
    router = APIRouter()

    @router.api_route("/", methods=["GET", "POST"], include_in_schema=False, response_model=None)
    async def tencentcloud(request: Request) -> Response:
        # A browser or health probe hitting "/" without any API 3.0 marker (an Action, a
        # signature) gets the web client, with its own query (?app=..&room=..&user=..) or none.
        if (
            request.method == "GET"
            and "Action" not in request.query_params
            and "authorization" not in request.headers
            and "x-tc-action" not in request.headers
        ):
            client = getattr(request.app.state, "web_index", None)
            if client is not None:
                return await client(request)  # type: ignore[no-any-return]
        return await gateway.handle(request)

    return router
