"""SparkRTC application management (A1-A6), its recording callback (A14-A15) and the IAM token
endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from roomcast.api.body import BodyError, parse_json_object, read_body
from roomcast.api.sparkrtc.errors import SparkError, invalid
from roomcast.api.sparkrtc.gateway import SparkRoute, authenticate, json_body, utc_text
from roomcast.api.sparkrtc.iam import IAM_BODY_LIMIT, iam_bad_request, password_auth
from roomcast.domain.errors import InvalidArgument
from roomcast.domain.tenancy import App, AppState
from roomcast.runtime import Runtime
from roomcast.services.record_rules import RecordRuleService

STATE_NAMES: dict[AppState, str] = {AppState.ENABLED: "ACTIVATION", AppState.DISABLED: "DEACTIVATION"}
STATE_FILTERS: dict[str, AppState | None] = {
    "ACTIVATION": AppState.ENABLED,
    "DEACTIVATION": AppState.DISABLED,
    "ARREARS": None,  # no billing here: no app is ever in arrears
}
APP_NAME_MAX = 64
DEFAULT_SCOPE = "GLOBAL"
CALLBACK_URL_MAX = 1024
DEFAULT_CALLBACK_EVENTS = ("RECORD_NEW_FILE_START", "RECORD_FILE_COMPLETE", "CLOUD_RECORD_OVER")
"""A14 cannot set the subscription; the documented example answers these three."""


class AppReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    app_name: str = Field(min_length=1, max_length=APP_NAME_MAX)

    @field_validator("app_name")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not v.strip() or any(ord(c) < 32 for c in v):
            raise ValueError("app_name must be printable text")
        return v


class RecordCallbackReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1, max_length=CALLBACK_URL_MAX)
    auth_key: str | None = Field(default=None, max_length=256)


def _state(app: App) -> dict[str, Any]:
    return {"state": STATE_NAMES.get(app.state, "DELETED"), "update_time": utc_text(app.state_updated_at)}


def render_record_callback(app: App) -> dict[str, Any]:
    return {
        "url": app.callback_url or "",
        "auth_key": app.callback_key or "",
        "notify_event_subscription": list(app.callback_events),
        "update_time": utc_text(app.callback_updated_at),
    }


def render_app(app: App, tenant_name: str, host: str) -> dict[str, Any]:
    return {
        "app_name": app.name,
        "app_id": app.app_id,
        "state": _state(app),
        "scope": DEFAULT_SCOPE,
        "tenant_name": tenant_name,
        "domain": f"{app.app_id}.{host}",
        "create_time": utc_text(app.created_at),
        "authentication": {
            "enable": app.auth_enabled,
            "expire": app.auth_expire_s,
            "app_key": app.app_key,
            "update_time": utc_text(app.auth_updated_at or app.created_at),
        },
        "callbacks": {
            "push_callback": {"url": "", "auth_key": "", "notify_event_subscription": [], "update_time": ""},
            "record_callback": render_record_callback(app),
        },
        "auto_record_mode": {
            "mode": "AUTO_RECORD_OFF",
            "record_rule_id": "",
            "update_time": utc_text(app.created_at),
        },
    }


async def _auto_record_mode(rt: Runtime, app: App) -> dict[str, Any]:
    from roomcast.api.sparkrtc.auto_record import render_auto_record  # it imports this module

    auto = await RecordRuleService(rt.db.sessions).auto_record(app.app_id)
    return render_auto_record(auto, app)


def _host(request: Request) -> str:
    return (request.headers.get("host") or "localhost").split(":")[0]


def build_router() -> APIRouter:
    router = APIRouter(route_class=SparkRoute, tags=["sparkrtc"])

    @router.post("/v3/auth/tokens", status_code=201, include_in_schema=False)
    async def iam_tokens(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        raw = await read_body(request, IAM_BODY_LIMIT)  # unauthenticated: a small limit
        try:
            body = parse_json_object(raw)
        except BodyError as exc:
            raise iam_bad_request(exc.message) from None
        token, result = await password_auth(rt, body)
        return JSONResponse(result, status_code=201, headers={"X-Subject-Token": token})

    @router.post("/v2/apps", status_code=201)
    async def create_app(request: Request) -> Response:
        caller = await authenticate(request, "app")
        req = await json_body(request, AppReq)
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.create_app(caller.account_id, req.app_name)
        return JSONResponse({"app_id": app.app_id}, status_code=201)

    @router.get("/v2/apps")
    async def list_apps(
        request: Request,
        state: str | None = Query(default=None),
        offset: str | None = Query(default=None),
        limit: str | None = Query(default=None),
    ) -> Response:
        caller = await authenticate(request, "app")
        state_filter: AppState | None = None
        if state is not None:
            if state not in STATE_FILTERS:
                raise invalid("state must be ACTIVATION, DEACTIVATION or ARREARS")
            if STATE_FILTERS[state] is None:
                return JSONResponse({"count": 0, "apps": []})
            state_filter = STATE_FILTERS[state]
        off = _int_param("offset", offset, 0, 0, 10**9)
        lim = _int_param("limit", limit, 100, 1, 100)
        rt: Runtime = request.app.state.runtime
        account = await rt.tenancy.get_account(caller.account_id)
        total, apps = await rt.tenancy.list_apps(caller.account_id, state=state_filter, offset=off, limit=lim)
        host = _host(request)
        rendered = []
        for a in apps:
            body = render_app(a, account.name, host)
            body["auto_record_mode"] = await _auto_record_mode(rt, a)
            rendered.append(body)
        return JSONResponse({"count": total, "apps": rendered})

    @router.get("/v2/apps/{app_id}")
    async def show_app(request: Request, app_id: str) -> Response:
        caller = await authenticate(request, "app")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        account = await rt.tenancy.get_account(caller.account_id)
        body = render_app(app, account.name, _host(request))
        body["auto_record_mode"] = await _auto_record_mode(rt, app)
        return JSONResponse(body)

    @router.delete("/v2/apps/{app_id}", status_code=204)
    async def delete_app(request: Request, app_id: str) -> Response:
        caller = await authenticate(request, "app")
        rt: Runtime = request.app.state.runtime
        await rt.tenancy.delete_app(_app_ref(app_id), caller.account_id)
        return Response(status_code=204)

    async def _set_state(request: Request, app_id: str, state: AppState) -> Response:
        caller = await authenticate(request, "app")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.set_app_state(_app_ref(app_id), state, caller.account_id)
        return JSONResponse({"app_id": app.app_id, "state": _state(app)})

    @router.put("/v2/apps/{app_id}/record-callback")
    async def set_record_callback(request: Request, app_id: str) -> Response:
        caller = await authenticate(request, "callback")
        req = await json_body(request, RecordCallbackReq)
        if not req.url.startswith(("http://", "https://")):
            raise invalid("url: must start with http:// or https://")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        events = app.callback_events or DEFAULT_CALLBACK_EVENTS
        try:
            app = await rt.tenancy.set_callback(
                app.app_id, req.url, req.auth_key or None, events, caller.account_id
            )
        except InvalidArgument as exc:
            if exc.subject != "callback_url":
                raise
            # The documented code for a callback URL roomcast will not call (here: not a public
            # address), naming the field.
            msg = f"UrlUnavailable: callback url is unavailable (url: {exc.message.split(': ', 1)[-1]})"
            raise SparkError(400, "RTC.00001018", msg) from None
        return JSONResponse({"app_id": app.app_id, "record_callback": render_record_callback(app)})

    @router.get("/v2/apps/{app_id}/record-callback")
    async def show_record_callback(request: Request, app_id: str) -> Response:
        caller = await authenticate(request, "callback")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        return JSONResponse({"app_id": app.app_id, "record_callback": render_record_callback(app)})

    @router.post("/v2/apps/{app_id}/enable")
    async def enable_app(request: Request, app_id: str) -> Response:
        return await _set_state(request, app_id, AppState.ENABLED)

    @router.post("/v2/apps/{app_id}/disable")
    async def disable_app(request: Request, app_id: str) -> Response:
        return await _set_state(request, app_id, AppState.DISABLED)

    return router


def _app_ref(app_id: str) -> str:
    """SparkRTC addresses apps by their string app_id only (never by the numeric SdkAppId)."""
    if not app_id or len(app_id) > 64 or not app_id.isalnum():
        raise SparkError(404, "RTC.00001015", "AppNotExist: app does not exist under your account")
    return app_id


def _int_param(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise invalid(f"{name} must be an integer") from None
    if not low <= n <= high:
        raise invalid(f"{name} must be between {low} and {high}")
    return n


def build_fallback_router() -> APIRouter:
    """SparkRTC paths roomcast does not serve (yet): authenticated, then the gateway's "no such API".

    Included after every other SparkRTC router so that served routes win.
    """
    router = APIRouter(route_class=SparkRoute, include_in_schema=False)

    def not_served() -> SparkError:
        return SparkError(
            404, "APIGW.0101", "The API does not exist or has not been published in the environment"
        )

    @router.api_route("/v1/{project_id}/rtc/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def v1_project(request: Request, project_id: str, rest: str) -> Response:
        await authenticate(request, "stats", path_project_id=project_id)
        raise not_served()

    @router.api_route("/v2/apps/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def v2_apps(request: Request, rest: str) -> Response:
        caller = await authenticate(request, "app")
        rt: Runtime = request.app.state.runtime
        await rt.tenancy.get_app(_app_ref(rest.split("/", 1)[0]), caller.account_id)
        raise not_served()

    return router
