"""SparkRTC: application management with the official huaweicloudsdkcloudrtc, IAM tokens, errors."""

from __future__ import annotations

import httpx
import pytest
from huaweicloudsdkcloudrtc.v2 import (
    AppReq,
    CloudRTCClient,
    CreateAppRequest,
    DeleteAppRequest,
    ListAppsRequest,
    ShowAppRequest,
    StartAppRequest,
    StopAppRequest,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from roomcast.runtime import Runtime
from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer


def client(server: LiveServer, ak: str, sk: str, project_id: str | None) -> CloudRTCClient:
    creds = BasicCredentials(ak, sk, project_id) if project_id else BasicCredentials(ak, sk)
    return CloudRTCClient.new_builder().with_credentials(creds).with_endpoints([server.url]).build()


def test_six_app_calls(server: LiveServer, tenant: Tenant) -> None:
    c = client(server, tenant.creds.secret_id, tenant.creds.secret_key, tenant.creds.project_id)
    created = c.create_app(CreateAppRequest(body=AppReq(app_name="Live Class")))
    assert created.status_code == 201 and created.app_id and created.x_request_id

    listed = c.list_apps(ListAppsRequest())
    assert listed.count == 2
    names = {a.app_name for a in listed.apps}
    assert names == {"demo", "Live Class"}
    page = c.list_apps(ListAppsRequest(offset=1, limit=1))
    assert page.count == 2 and len(page.apps) == 1

    shown = c.show_app(ShowAppRequest(app_id=created.app_id))
    assert shown.app_id == created.app_id and shown.app_name == "Live Class"
    assert shown.state.state == "ACTIVATION" and shown.state.update_time.endswith("Z")
    assert shown.authentication.enable is True and shown.authentication.expire == 300
    assert shown.authentication.app_key
    assert shown.tenant_name == "acme" and shown.scope == "GLOBAL"
    assert shown.create_time and shown.domain.startswith(created.app_id)
    assert shown.callbacks.record_callback.url == ""
    assert shown.auto_record_mode.mode == "AUTO_RECORD_OFF"

    stopped = c.stop_app(StopAppRequest(app_id=created.app_id))
    assert stopped.state.state == "DEACTIVATION"
    assert [a.app_id for a in c.list_apps(ListAppsRequest(state="DEACTIVATION")).apps] == [created.app_id]
    assert c.list_apps(ListAppsRequest(state="ARREARS")).count == 0
    started = c.start_app(StartAppRequest(app_id=created.app_id))
    assert started.app_id == created.app_id and started.state.state == "ACTIVATION"

    deleted = c.delete_app(DeleteAppRequest(app_id=created.app_id))
    assert deleted.status_code == 204
    with pytest.raises(ClientRequestException) as ei:
        c.show_app(ShowAppRequest(app_id=created.app_id))
    assert ei.value.status_code == 404 and ei.value.error_code == "RTC.00001015"
    assert ei.value.request_id


def test_without_project_id(server: LiveServer, tenant: Tenant) -> None:
    c = client(server, tenant.creds.secret_id, tenant.creds.secret_key, None)
    assert c.list_apps(ListAppsRequest()).count == 1


@pytest.mark.parametrize(
    ("req", "status", "code"),
    [
        (CreateAppRequest(body=AppReq(app_name="demo")), 400, "RTC.00001020"),
        (CreateAppRequest(body=AppReq(app_name="x" * 65)), 400, "RTC.00001003"),
        (CreateAppRequest(body=AppReq()), 400, "RTC.00001005"),
        (ListAppsRequest(limit=0), 400, "RTC.00001003"),
        (ListAppsRequest(limit=101), 400, "RTC.00001003"),
        (ListAppsRequest(state="NOPE"), 400, "RTC.00001003"),
        (ShowAppRequest(app_id="0123456789abcdef01234567"), 404, "RTC.00001015"),
        (StopAppRequest(app_id="0123456789abcdef01234567"), 404, "RTC.00001015"),
        (DeleteAppRequest(app_id="0123456789abcdef01234567"), 404, "RTC.00001015"),
    ],
)
def test_documented_errors(server: LiveServer, tenant: Tenant, req: object, status: int, code: str) -> None:
    c = client(server, tenant.creds.secret_id, tenant.creds.secret_key, tenant.creds.project_id)
    call = {
        CreateAppRequest: c.create_app,
        ListAppsRequest: c.list_apps,
        ShowAppRequest: c.show_app,
        StopAppRequest: c.stop_app,
        DeleteAppRequest: c.delete_app,
    }[type(req)]
    with pytest.raises(ClientRequestException) as ei:
        call(req)
    assert (ei.value.status_code, ei.value.error_code) == (status, code)


def test_app_quota(server: LiveServer) -> None:
    t = make_tenant(server, "many")
    c = client(server, t.creds.secret_id, t.creds.secret_key, t.creds.project_id)

    async def fill(rt: Runtime) -> None:
        for i in range(19):
            await rt.tenancy.create_app(t.creds.account_id, f"app{i}")

    server.run(fill)
    with pytest.raises(ClientRequestException) as ei:
        c.create_app(CreateAppRequest(body=AppReq(app_name="twenty-first")))
    assert ei.value.error_code == "RTC.00001017"


def test_auth_failures(server: LiveServer, tenant: Tenant, other_tenant: Tenant) -> None:
    wrong_sk = client(server, tenant.creds.secret_id, "nope" * 8, tenant.creds.project_id)
    with pytest.raises(ClientRequestException) as ei:
        wrong_sk.list_apps(ListAppsRequest())
    assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001001")
    foreign_project = client(
        server, tenant.creds.secret_id, tenant.creds.secret_key, other_tenant.creds.project_id
    )
    with pytest.raises(ClientRequestException) as ei:
        foreign_project.list_apps(ListAppsRequest())
    assert ei.value.error_code == "RTC.00001001"
    r = httpx.get(server.url + "/v2/apps")
    assert r.status_code == 401 and r.json()["error_code"] == "APIGW.0301" and r.headers["x-request-id"]


def test_stale_sdk_date(server: LiveServer, tenant: Tenant) -> None:
    from roomcast.api.sparkrtc import signing

    headers = {"Host": server.endpoint, "Content-Type": "application/json", "X-Sdk-Date": "20200101T000000Z"}
    http = signing.HttpRequest("GET", "/v2/apps", headers)
    headers["Authorization"] = signing.sign(
        http, access_key=tenant.creds.secret_id, secret_key=tenant.creds.secret_key
    )
    r = httpx.get(server.url + "/v2/apps", headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "RTC.00001001"


def test_tenancy_isolation(server: LiveServer, tenant: Tenant, other_tenant: Tenant) -> None:
    c = client(server, tenant.creds.secret_id, tenant.creds.secret_key, tenant.creds.project_id)
    for call in (c.show_app, c.stop_app, c.delete_app):
        req_type = {c.show_app: ShowAppRequest, c.stop_app: StopAppRequest, c.delete_app: DeleteAppRequest}[
            call
        ]
        with pytest.raises(ClientRequestException) as ei:
            call(req_type(app_id=other_tenant.app.app_id))
        assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001015")
        assert other_tenant.app.name not in ei.value.error_msg
    assert [a.app_id for a in c.list_apps(ListAppsRequest()).apps] == [tenant.app.app_id]


def _iam(server: LiveServer, name: str, password: str, scope: dict[str, object]) -> httpx.Response:
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": name, "password": password}}},
            "scope": scope,
        }
    }
    return httpx.post(server.url + "/v3/auth/tokens", json=body)


def test_iam_token_flow(server: LiveServer, tenant: Tenant) -> None:
    r = _iam(
        server, tenant.creds.secret_id, tenant.creds.secret_key, {"project": {"id": tenant.creds.project_id}}
    )
    assert r.status_code == 201
    token = r.headers["x-subject-token"]
    assert r.json()["token"]["expires_at"].endswith("Z")
    listed = httpx.get(
        server.url + "/v2/apps", headers={"X-Auth-Token": token, "Content-Type": "application/json"}
    )
    assert listed.status_code == 200 and listed.json()["count"] == 1
    shown = httpx.get(server.url + f"/v2/apps/{tenant.app.app_id}", headers={"X-Auth-Token": token})
    assert shown.json()["app_id"] == tenant.app.app_id

    bad = httpx.get(server.url + "/v2/apps", headers={"X-Auth-Token": token[:-4] + "AAAA"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "RTC.00001001"
    assert _iam(server, tenant.creds.secret_id, "wrong", {"domain": {"name": "acme"}}).status_code == 401

    async def revoke(rt: Runtime) -> None:
        await rt.tenancy.revoke_key(tenant.creds.secret_id)

    server.run(revoke)
    revoked = httpx.get(server.url + "/v2/apps", headers={"X-Auth-Token": token})
    assert revoked.status_code == 400 and revoked.json()["error_code"] == "RTC.00001001"


def test_malformed_body(server: LiveServer, tenant: Tenant) -> None:
    r = _iam(server, tenant.creds.secret_id, tenant.creds.secret_key, {"domain": {"name": "acme"}})
    token = r.headers["x-subject-token"]
    bad = httpx.post(server.url + "/v2/apps", content=b"{not json", headers={"X-Auth-Token": token})
    assert bad.status_code == 400 and bad.json() == {
        "error_code": "RTC.00001002",
        "error_msg": "MalformedRequestBody: json parsing failed",
    }


def test_throttling(server: LiveServer) -> None:
    t = make_tenant(server, "busy")
    token = _iam(server, t.creds.secret_id, t.creds.secret_key, {"domain": {"name": "busy"}}).headers[
        "x-subject-token"
    ]
    import asyncio

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(
                *(client.get(server.url + "/v2/apps", headers={"X-Auth-Token": token}) for _ in range(80))
            )

    answers = asyncio.run(burst())
    statuses = [r.status_code for r in answers]
    # 60 per minute (refilled at one a second while the burst runs).
    assert 60 <= statuses.count(200) <= 66 and statuses.count(429) >= 14
    # (Read from the burst itself: a request sent later may find a token refilled meanwhile.)
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error_code"] == "APIG.0308"
    # Another tenant is not throttled.
    u = make_tenant(server, "idle")
    c = client(server, u.creds.secret_id, u.creds.secret_key, u.creds.project_id)
    assert c.list_apps(ListAppsRequest()).count == 1


def test_v1_project_routes_check_the_project(
    server: LiveServer, tenant: Tenant, other_tenant: Tenant
) -> None:
    r = _iam(
        server, tenant.creds.secret_id, tenant.creds.secret_key, {"project": {"id": tenant.creds.project_id}}
    )
    headers = {"X-Auth-Token": r.headers["x-subject-token"]}
    own = httpx.get(f"{server.url}/v1/{tenant.creds.project_id}/rtc/client/abnormalevent", headers=headers)
    assert (
        own.status_code == 404 and own.json()["error_code"] == "APIGW.0101"
    )  # authenticated, not served (not in the API reference)
    rooms = httpx.get(f"{server.url}/v1/{tenant.creds.project_id}/rtc/rooms", headers=headers)
    assert rooms.status_code == 400 and rooms.json()["error_code"] == "RTC.00001005"  # served: needs `app`
    foreign = httpx.get(f"{server.url}/v1/{other_tenant.creds.project_id}/rtc/rooms", headers=headers)
    assert foreign.status_code == 400 and foreign.json()["error_code"] == "RTC.00001001"
    sub = httpx.get(f"{server.url}/v2/apps/{other_tenant.app.app_id}/record-rules", headers=headers)
    assert sub.status_code == 404 and sub.json()["error_code"] == "RTC.00001015"
    anon = httpx.get(f"{server.url}/v1/{tenant.creds.project_id}/rtc/rooms")
    assert anon.status_code == 401
