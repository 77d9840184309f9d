"""JOYY cloud recording REST: Basic Token auth, envelopes, codes, throttling, tenancy (raw HTTP)."""

from __future__ import annotations

import base64

import httpx

from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer


def token(sid: str, skey: str) -> str:
    return "Basic " + base64.b64encode(f"{sid}:{skey}".encode()).decode()


def call(
    server: LiveServer, appid: int | str, method: str, tok: str | None, body: object = None, **params: str
) -> httpx.Response:
    headers = {"Content-Type": "application/json;charset=UTF-8"}
    if tok is not None:
        headers["Token"] = tok
    return httpx.post(
        f"{server.url}/app/{appid}/v1/recordoss/{method}", json=body, headers=headers, params=params
    )


def test_applyrecord_and_trace_id(server: LiveServer, tenant: Tenant) -> None:
    tok = token(tenant.creds.secret_id, tenant.creds.secret_key)
    r = call(
        server,
        tenant.app.sdk_app_id,
        "applyrecord",
        tok,
        {"appid": tenant.app.sdk_app_id, "roomid": "r1"},
        traceId="trace-42",
    )
    assert r.status_code == 200
    data = r.json()
    assert data["code"] == 0 and data["message"] == "success" and data["traceId"] == "trace-42"
    prefix, _, suffix = data["resid"].partition("-")
    assert len(prefix) == 60 and len(suffix) == 16
    assert call(server, tenant.app.sdk_app_id, "applyrecord", tok).json()["traceId"]


def test_auth_codes(server: LiveServer, tenant: Tenant, other_tenant: Tenant) -> None:
    app = tenant.app.sdk_app_id
    r = call(server, app, "applyrecord", None, traceId="t1")
    assert (r.status_code, r.json()["code"], r.json()["traceId"]) == (401, 1000, "t1")
    assert call(server, app, "applyrecord", "Basic !!!").json()["code"] == 1001
    assert call(server, app, "applyrecord", token(tenant.creds.secret_id, "wrong")).json()["code"] == 1001
    assert call(server, app, "applyrecord", token("AKIDnobody", "x")).json()["code"] == 1001
    good = token(tenant.creds.secret_id, tenant.creds.secret_key)
    assert call(server, "abc", "applyrecord", good).json()["code"] == 1002
    # Another tenant's app and a missing one answer alike: this token has no right to them.
    foreign = call(server, other_tenant.app.sdk_app_id, "applyrecord", good).json()
    missing = call(server, 1_300_000_000, "applyrecord", good).json()
    assert foreign["code"] == missing["code"] == 1001
    assert "resid" not in foreign


def test_parameter_errors(server: LiveServer, tenant: Tenant) -> None:
    tok = token(tenant.creds.secret_id, tenant.creds.secret_key)
    app = tenant.app.sdk_app_id
    unknown = call(server, app, "nosuchmethod", tok)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 2101)
    assert call(server, app, "applyrecord", tok, {"appid": app + 1}).json()["code"] == 2101
    assert call(server, app, "applyrecord", tok, {"roomid": 5}).json()["code"] == 2101
    raw = httpx.post(
        f"{server.url}/app/{app}/v1/recordoss/applyrecord", content=b"{oops", headers={"Token": tok}
    ).json()
    assert raw["code"] == 2101


def test_throttling_per_app(server: LiveServer) -> None:
    import asyncio

    t = make_tenant(server, "joy")
    headers = {"Token": token(t.creds.secret_id, t.creds.secret_key)}
    url = f"{server.url}/app/{t.app.sdk_app_id}/v1/recordoss/applyrecord"

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            return list(await asyncio.gather(*(client.post(url, headers=headers) for _ in range(30))))

    responses = asyncio.run(burst())
    codes = [r.json()["code"] for r in responses]
    assert codes.count(0) >= 10 and 2105 in codes  # 10/s per app, with a burst of 10
    throttled = next(r for r in responses if r.json()["code"] == 2105)
    assert throttled.status_code == 429 and throttled.json()["message"] and throttled.json()["traceId"]
    u = make_tenant(server, "joy2")
    assert (
        call(server, u.app.sdk_app_id, "applyrecord", token(u.creds.secret_id, u.creds.secret_key)).json()[
            "code"
        ]
        == 0
    )
