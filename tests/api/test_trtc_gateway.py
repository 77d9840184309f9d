"""API 3.0 gateway with the official tencentcloud SDKs (TRTC and TIW) against a live server."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from pydantic import Field
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tiw.v20190919 import models as tiw_models
from tencentcloud.tiw.v20190919 import tiw_client
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.api.trtc import signing
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.params import Params
from roomcast.runtime import Runtime
from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer


class EchoParams(Params):
    SdkAppId: int
    Name: str
    Count: int = 1
    Tags: list[str] = Field(default_factory=list)
    Nested: dict[str, Any] | None = None


async def echo(ctx: ActionContext, p: EchoParams) -> dict[str, Any]:
    app = await ctx.app(p.SdkAppId)
    return {"AppName": app.name, "Name": p.Name, "Count": p.Count, "Tags": p.Tags, "Account": ctx.account_id}


@pytest.fixture(scope="module", autouse=True)
def echo_action(server: LiveServer) -> None:
    """A test-only action, so the gateway's success path is exercised with the SDK's generic client."""
    registry: ActionRegistry = server.app.state.trtc_registry
    registry.add("trtc", Action("DescribeRoomcastEcho", EchoParams, echo, rate_per_s=5))


def profile(server: LiveServer, **kw: Any) -> ClientProfile:
    return ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http", **kw), **{})


def common(
    server: LiveServer, sid: str, skey: str, *, method: str = "POST", sign: str = "TC3-HMAC-SHA256"
) -> CommonClient:
    prof = profile(server, reqMethod=method)
    prof.signMethod = sign
    return CommonClient("trtc", "2019-07-22", credential.Credential(sid, skey), "ap-guangzhou", profile=prof)


def trtc(server: LiveServer, sid: str, skey: str) -> trtc_client.TrtcClient:
    return trtc_client.TrtcClient(credential.Credential(sid, skey), "ap-guangzhou", profile(server))


@pytest.mark.parametrize(
    ("method", "sign"),
    [("POST", "TC3-HMAC-SHA256"), ("GET", "TC3-HMAC-SHA256"), ("GET", "HmacSHA1"), ("POST", "HmacSHA256")],
)
def test_valid_calls_authenticate(server: LiveServer, tenant: Tenant, method: str, sign: str) -> None:
    c = common(server, tenant.creds.secret_id, tenant.creds.secret_key, method=method, sign=sign)
    out = c.call_json(
        "DescribeRoomcastEcho",
        {"SdkAppId": tenant.app.sdk_app_id, "Name": "héllo wörld", "Count": 3, "Tags": ["a", "b"]},
    )
    resp = out["Response"]
    assert resp["AppName"] == "demo" and resp["Name"] == "héllo wörld" and resp["Count"] == 3
    assert resp["Tags"] == ["a", "b"] and resp["Account"] == tenant.creds.account_id
    assert resp["RequestId"]


def test_unserved_action_is_invalid_action(server: LiveServer, tenant: Tenant) -> None:
    c = trtc(server, tenant.creds.secret_id, tenant.creds.secret_key)
    req = models.StopMCUMixTranscodeRequest()
    req.SdkAppId = tenant.app.sdk_app_id
    req.RoomId = 1
    with pytest.raises(TencentCloudSDKException) as ei:
        c.StopMCUMixTranscode(req)  # an API the vendor removed: not served
    assert ei.value.get_code() == "InvalidAction" and ei.value.get_request_id()


def test_tiw_wrong_key_and_expired(
    server: LiveServer, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = tiw_client.TiwClient(
        credential.Credential(tenant.creds.secret_id, "wrong" * 6), "ap-guangzhou", profile(server)
    )
    req = tiw_models.DescribeOnlineRecordRequest()
    req.SdkAppId = tenant.app.sdk_app_id
    req.TaskId = "x"
    with pytest.raises(TencentCloudSDKException) as ei:
        wrong.DescribeOnlineRecord(req)
    assert ei.value.get_code() == "AuthFailure.SignatureFailure"


def test_tiw_shares_the_endpoint(server: LiveServer, tenant: Tenant) -> None:
    c = tiw_client.TiwClient(
        credential.Credential(tenant.creds.secret_id, tenant.creds.secret_key),
        "ap-guangzhou",
        profile(server),
    )
    req = tiw_models.DescribeOnlineRecordRequest()
    req.SdkAppId = tenant.app.sdk_app_id
    req.TaskId = "x"
    with pytest.raises(TencentCloudSDKException) as ei:
        c.DescribeOnlineRecord(req)
    assert ei.value.get_code() == "InvalidParameter.TaskNotFound"  # authenticated, routed to TIW


@pytest.mark.parametrize(
    ("sid_of", "key", "code"),
    [
        ("own", "wrong-secret-key-000000000000000", "AuthFailure.SignatureFailure"),
        ("unknown", None, "AuthFailure.SecretIdNotFound"),
        ("bogus", None, "AuthFailure.InvalidSecretId"),
    ],
)
def test_wrong_keys(server: LiveServer, tenant: Tenant, sid_of: str, key: str | None, code: str) -> None:
    sid = {"own": tenant.creds.secret_id, "unknown": "AKID" + "x" * 32, "bogus": "not-a-key"}[sid_of]
    c = common(server, sid, key or tenant.creds.secret_key)
    with pytest.raises(TencentCloudSDKException) as ei:
        c.call_json("DescribeRoomcastEcho", {"SdkAppId": tenant.app.sdk_app_id, "Name": "x"})
    assert ei.value.get_code() == code


def test_revoked_key(server: LiveServer, tenant: Tenant) -> None:
    async def revoke(rt: Runtime) -> None:
        await rt.tenancy.revoke_key(tenant.creds.secret_id)

    server.run(revoke)
    c = common(server, tenant.creds.secret_id, tenant.creds.secret_key)
    with pytest.raises(TencentCloudSDKException) as ei:
        c.call_json("DescribeRoomcastEcho", {"SdkAppId": tenant.app.sdk_app_id, "Name": "x"})
    assert ei.value.get_code() == "AuthFailure.SecretIdNotFound"


def _signed_post(
    server: LiveServer,
    tenant: Tenant,
    body: bytes,
    *,
    ts: int | None = None,
    tamper: bytes | None = None,
    action: str = "DescribeRoomcastEcho",
    version: str = "2019-07-22",
) -> dict[str, Any]:
    ts = ts if ts is not None else int(time.time())
    headers = {
        "Content-Type": "application/json",
        "Host": server.endpoint,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(ts),
        "X-TC-Region": "ap-guangzhou",
    }
    http = signing.HttpRequest("POST", headers, body)
    headers["Authorization"] = signing.sign_tc3(
        http,
        secret_id=tenant.creds.secret_id,
        secret_key=tenant.creds.secret_key,
        service="trtc",
        timestamp=ts,
    )
    r = httpx.post(server.url + "/", content=tamper if tamper is not None else body, headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    out: dict[str, Any] = r.json()["Response"]
    assert out["RequestId"]
    return out


def test_tampered_body_and_expired_timestamp(server: LiveServer, tenant: Tenant) -> None:
    body = json.dumps({"SdkAppId": tenant.app.sdk_app_id, "Name": "a"}).encode()
    assert _signed_post(server, tenant, body)["Name"] == "a"
    tampered = body.replace(b'"a"', b'"b"')
    assert (
        _signed_post(server, tenant, body, tamper=tampered)["Error"]["Code"] == "AuthFailure.SignatureFailure"
    )
    old = _signed_post(server, tenant, body, ts=int(time.time()) - 3600)
    assert old["Error"]["Code"] == "AuthFailure.SignatureExpire"


def test_expired_timestamp_through_sdk(
    server: LiveServer, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from tencentcloud.common import abstract_client

    # Only the SDK's clock runs 15 minutes late (the server shares this process).
    late = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    late.time = lambda: time.time() - 900
    monkeypatch.setattr(abstract_client, "time", late)
    c = common(server, tenant.creds.secret_id, tenant.creds.secret_key)
    with pytest.raises(TencentCloudSDKException) as ei:
        c.call_json("DescribeRoomcastEcho", {"SdkAppId": tenant.app.sdk_app_id, "Name": "x"})
    assert ei.value.get_code() == "AuthFailure.SignatureExpire"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Name": "x"}, "MissingParameter"),  # SdkAppId missing: generic (the echo action is ours)
        ({"SdkAppId": "nan", "Name": "x"}, "InvalidParameter.SdkAppId"),
        ({"SdkAppId": "APP", "Name": "x", "Count": "many"}, "InvalidParameter"),
        ({"SdkAppId": "APP", "Name": "x", "Bogus": 1}, "UnknownParameter"),
        ({"SdkAppId": "APP"}, "MissingParameter"),
    ],
)
def test_parameter_errors(server: LiveServer, tenant: Tenant, params: dict[str, Any], code: str) -> None:
    if params.get("SdkAppId") == "APP":
        params["SdkAppId"] = tenant.app.sdk_app_id
    body = json.dumps(params).encode()
    out = _signed_post(server, tenant, body)
    assert out["Error"]["Code"].startswith(code), out


def test_unknown_version_and_missing_action(server: LiveServer, tenant: Tenant) -> None:
    body = b"{}"
    assert _signed_post(server, tenant, body, version="2000-01-01")["Error"]["Code"] == "NoSuchVersion"
    assert _signed_post(server, tenant, body, action="")["Error"]["Code"] == "MissingParameter"


def test_unsigned_and_malformed_requests(server: LiveServer) -> None:
    r = httpx.post(
        server.url + "/", content=b"{}", headers={"Content-Type": "application/json", "X-TC-Action": "X"}
    )
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    assert r.headers["content-type"] == "application/json"
    r = httpx.post(server.url + "/", content=b"{}", headers={"Authorization": "TC3-HMAC-SHA256 garbage"})
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    r = httpx.put(server.url + "/", content=b"{}")
    assert r.status_code in (200, 405)


def test_another_tenants_app_is_unauthorized(
    server: LiveServer, tenant: Tenant, other_tenant: Tenant
) -> None:
    c = common(server, tenant.creds.secret_id, tenant.creds.secret_key)
    for sdk_app_id in (other_tenant.app.sdk_app_id, 1_399_999_999):
        with pytest.raises(TencentCloudSDKException) as ei:
            c.call_json("DescribeRoomcastEcho", {"SdkAppId": sdk_app_id, "Name": "x"})
        assert ei.value.get_code() == "UnauthorizedOperation.SdkAppId"
        assert "demo" not in ei.value.get_message()


def test_throttling_per_app_and_action(server: LiveServer) -> None:
    t = make_tenant(server, "throttled")
    c = common(server, t.creds.secret_id, t.creds.secret_key)
    codes = []
    for _ in range(12):  # the echo action allows 5/s
        try:
            c.call_json("DescribeRoomcastEcho", {"SdkAppId": t.app.sdk_app_id, "Name": "x"})
            codes.append("ok")
        except TencentCloudSDKException as e:
            codes.append(e.get_code())
    assert "RequestLimitExceeded" in codes and codes[0] == "ok"
    # Another app of another tenant is not affected.
    u = make_tenant(server, "calm")
    out = common(server, u.creds.secret_id, u.creds.secret_key).call_json(
        "DescribeRoomcastEcho", {"SdkAppId": u.app.sdk_app_id, "Name": "x"}
    )
    assert out["Response"]["Name"] == "x"
