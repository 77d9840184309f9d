"""SparkRTC recording rules (A7-A11): where an app's recordings go (an OBS address, written as an
S3-compatible target) and how they are cut (HLS and/or MP4 settings).

The OBS address carries no keys: the node writes with its own S3 credentials (the standard AWS
credential chain), as SparkRTC writes with the tenant's cloud-service agency. The endpoint is
OBS's for ``obs_addr.location``, unless the node sends every target to ``ROOMCAST_S3_ENDPOINT``.
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from roomcast.api.sparkrtc.apps import _app_ref, _int_param
from roomcast.api.sparkrtc.errors import (
    SparkError,
    bucket_missing,
    invalid,
    missing,
    unsupported_region,
)
from roomcast.api.sparkrtc.gateway import SparkRoute, authenticate, json_body, utc_text
from roomcast.runtime import Runtime
from roomcast.services.record_rules import RecordRule, RecordRuleService
from roomcast.storage import StorageError, StorageErrorKind, StorageOptions, StorageTarget, check_target

PREFIX_VARIABLES = frozenset(
    {"app_id", "record_format", "stream", "file_start_time"}
    # Undocumented, but the vendor's own example answer uses them (see the README).
    | {"publish_domain", "app", "record_type"}
)
DEFAULT_PREFIX = "{app_id}/{record_format}/{stream}_{file_start_time}/{stream}_{file_start_time}"
DEFAULT_MP4_CYCLE_S = 7200  # the vendor's example sent mp4_config {} and got 7200 back
DEFAULT_HLS_CYCLE_S = 0  # and hls_config came back with 0 (one file for the whole stream)
LOCATION = re.compile(r"^[a-z]{2}(-[a-z0-9]+){1,4}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
RULE_ID = re.compile(r"^[0-9a-zA-Z]{1,64}$")
BUCKET_CHECK_TIMEOUT_S = 10.0


def _check_prefix_template(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        names = [f[1] for f in string.Formatter().parse(v) if f[1] is not None]
    except ValueError:
        raise ValueError("record_prefix has unbalanced braces") from None
    for name in names:
        if name not in PREFIX_VARIABLES:
            raise ValueError(f"record_prefix: unknown variable {{{name}}}")
    if v.startswith("/") or "\\" in v or any(ord(c) < 32 for c in v):
        raise ValueError("record_prefix must be a relative object path")
    return v


class ObsAddr(BaseModel):
    model_config = ConfigDict(extra="ignore")

    location: str = Field(min_length=1, max_length=64)
    project_id: str = Field(min_length=1, max_length=64)
    bucket: str = Field(min_length=1, max_length=63)
    object: str | None = Field(default=None, max_length=512)

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        if not BUCKET.match(v) or ".." in v:
            raise ValueError("not a valid bucket name")
        return v


class HlsConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    record_cycle: int = Field(default=DEFAULT_HLS_CYCLE_S, strict=True)
    record_prefix: str | None = Field(default=None, max_length=512)
    record_slice_duration: int = Field(default=10, ge=2, le=60, strict=True)
    record_max_duration_to_merge_file: int = Field(default=0, ge=-1, le=300, strict=True)

    @field_validator("record_cycle")
    @classmethod
    def _cycle(cls, v: int) -> int:
        if v != 0 and not 60 <= v <= 43200:
            raise ValueError("must be 0 or between 60 and 43200")
        return v

    _prefix = field_validator("record_prefix")(_check_prefix_template)


class Mp4Config(BaseModel):
    model_config = ConfigDict(extra="ignore")

    record_cycle: int = Field(default=DEFAULT_MP4_CYCLE_S, ge=60, le=10800, strict=True)
    record_prefix: str | None = Field(default=None, max_length=512)
    record_max_duration_to_merge_file: int = Field(default=0, ge=0, le=300, strict=True)

    _prefix = field_validator("record_prefix")(_check_prefix_template)


class RecordRuleReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    obs_addr: ObsAddr
    record_formats: list[Literal["HLS", "MP4"]] = Field(min_length=1, max_length=2)
    hls_config: HlsConfig | None = None
    mp4_config: Mp4Config | None = None

    @field_validator("record_formats")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("formats must not repeat")
        return v


def rule_target(addr: ObsAddr) -> StorageTarget:
    """The S3-compatible target of an OBS address (OBS endpoint of the location)."""
    try:
        return StorageTarget(
            kind="s3", vendor="huawei", region=addr.location, bucket=addr.bucket, prefix=addr.object or ""
        )
    except StorageError as exc:
        raise invalid(f"obs_addr.object: {exc.message}") from None


def _settings(req: RecordRuleReq) -> dict[str, Any]:
    if "HLS" in req.record_formats and req.hls_config is None:
        raise missing("hls_config (HLS is in record_formats)")
    if "MP4" in req.record_formats and req.mp4_config is None:
        raise missing("mp4_config (MP4 is in record_formats)")
    hls = req.hls_config or HlsConfig()
    mp4 = req.mp4_config or Mp4Config()
    return {
        "obs_addr": req.obs_addr.model_dump(),
        "record_formats": list(req.record_formats),
        "hls_config": {**hls.model_dump(), "record_prefix": hls.record_prefix or DEFAULT_PREFIX},
        "mp4_config": {**mp4.model_dump(), "record_prefix": mp4.record_prefix or DEFAULT_PREFIX},
    }


def render_rule(rule: RecordRule) -> dict[str, Any]:
    s = rule.settings
    addr = dict(s["obs_addr"])
    if addr.get("object") is None:
        addr.pop("object", None)
    return {
        "rule_id": rule.rule_id,
        "app_id": rule.app_id,
        "obs_addr": addr,
        "record_formats": s["record_formats"],
        "hls_config": s["hls_config"],
        "mp4_config": s["mp4_config"],
        "create_time": utc_text(rule.created_at),
        "update_time": utc_text(rule.updated_at),
    }


async def check_bucket(rt: Runtime, target: StorageTarget) -> None:
    """A7/A10 check the bucket when the rule is saved: RTC.00001014 when it does not exist."""
    try:
        await check_target(
            target, StorageOptions.from_settings(rt.settings), timeout_s=BUCKET_CHECK_TIMEOUT_S
        )
    except StorageError as exc:
        if exc.kind in (StorageErrorKind.NO_SUCH_BUCKET, StorageErrorKind.WRONG_ENDPOINT):
            raise bucket_missing(target.bucket) from None
        if exc.retryable:
            raise SparkError(
                500,
                "RTC.00002006",
                f"InternalServerError.Live5xxError: bucket unreachable ({exc.kind.value})",
            ) from None
        raise invalid(f"obs_addr.bucket: the bucket refuses writes ({exc.kind.value})") from None


def _rule_ref(rule_id: str) -> str:
    if not RULE_ID.match(rule_id):
        raise SparkError(404, "RTC.00001011", "RecordRuleNotExist: record rule not exist under your app")
    return rule_id


async def _prepare(request: Request, app_id: str) -> tuple[Runtime, str, RecordRuleReq, StorageTarget]:
    caller = await authenticate(request, "rule")
    req = await json_body(request, RecordRuleReq)
    rt: Runtime = request.app.state.runtime
    app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
    if not LOCATION.match(req.obs_addr.location):
        raise unsupported_region(req.obs_addr.location)
    _settings(req)  # combination errors before the (slow) bucket check
    target = rule_target(req.obs_addr)
    await check_bucket(rt, target)
    return rt, app.app_id, req, target


def build_router() -> APIRouter:
    router = APIRouter(route_class=SparkRoute, tags=["sparkrtc"])

    @router.post("/v2/apps/{app_id}/record-rules", status_code=201)
    async def create_rule(request: Request, app_id: str) -> Response:
        rt, app_ref, req, target = await _prepare(request, app_id)
        rule, _ = await RecordRuleService(rt.db.sessions).save(
            app_ref, req.obs_addr.location, target, _settings(req)
        )
        return JSONResponse(render_rule(rule), status_code=201)

    @router.get("/v2/apps/{app_id}/record-rules")
    async def list_rules(
        request: Request,
        app_id: str,
        offset: str | None = Query(default=None),
        limit: str | None = Query(default=None),
    ) -> Response:
        caller = await authenticate(request, "rule")
        off = _int_param("offset", offset, 0, 0, 10**9)
        lim = _int_param("limit", limit, 100, 1, 100)
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        rules = await RecordRuleService(rt.db.sessions).list(app.app_id, off, lim)
        return JSONResponse({"rules": [render_rule(r) for r in rules]})

    @router.get("/v2/apps/{app_id}/record-rules/{rule_id}")
    async def show_rule(request: Request, app_id: str, rule_id: str) -> Response:
        caller = await authenticate(request, "rule")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        rule = await RecordRuleService(rt.db.sessions).get(app.app_id, _rule_ref(rule_id))
        return JSONResponse(render_rule(rule))

    @router.put("/v2/apps/{app_id}/record-rules/{rule_id}")
    async def update_rule(request: Request, app_id: str, rule_id: str) -> Response:
        rt, app_ref, req, target = await _prepare(request, app_id)
        _rule_ref(rule_id)
        rule = await RecordRuleService(rt.db.sessions).update(
            app_ref, rule_id, req.obs_addr.location, target, _settings(req)
        )
        return JSONResponse(render_rule(rule))

    @router.delete("/v2/apps/{app_id}/record-rules/{rule_id}", status_code=204)
    async def delete_rule(request: Request, app_id: str, rule_id: str) -> Response:
        caller = await authenticate(request, "rule")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        await RecordRuleService(rt.db.sessions).delete(app.app_id, _rule_ref(rule_id))
        return Response(status_code=204)

    return router
