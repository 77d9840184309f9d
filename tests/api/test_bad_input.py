"""The cases issue 10 found, one by one: parameter errors that name the field instead of internal
errors, body size and depth limits per dialect, a replayed v1 Nonce, and disabled apps."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.api.trtc import signing
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.params import Params
from roomcast.domain.tenancy import AppState
from roomcast.runtime import Runtime
from roomcast.services.join_tokens import issue_jwt, issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.support.fuzz import sdp_offer
from tests.support.live import LiveServer, live_server


async def _always_allow(*args: Any, **kwargs: Any) -> bool:
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("bad")) / "var", ice_host_addresses=["127.0.0.1"]) as srv:
        srv.app.state.limiter.allow = _always_allow
        yield srv


class StartEchoParams(Params):
    SdkAppId: int


async def start_echo(ctx: ActionContext, p: StartEchoParams) -> dict[str, Any]:
    return {"TaskId": "echo"}


@pytest.fixture(scope="module", autouse=True)
def tiw_task_action(server: LiveServer) -> None:
    """A test-only TIW action that starts a task, for the disabled-app check of that service."""
    registry: ActionRegistry = server.app.state.trtc_registry
    registry.add("tiw", Action("StartRoomcastEcho", StartEchoParams, start_echo, starts_task=True))


def create_request(t: Tenant) -> dict[str, Any]:
    return {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": "1234",
        "UserId": "rec",
        "UserSig": issue_usersig(t.app, "rec"),
        "RecordParams": {"RecordMode": 1, "MaxIdleTime": 5},
        "StorageParams": {"CloudVod": {"TencentVod": {}}},
    }


def tc3(
    server: LiveServer,
    t: Tenant,
    action: str,
    body: bytes | None = None,
    query: str = "",
    service: str = "trtc",
) -> Any:
    """A TC3-signed call: POST JSON ``body``, or GET with ``query``."""
    ts = int(time.time())
    method = "GET" if body is None else "POST"
    headers = {
        "Host": server.endpoint,
        "Content-Type": "application/json" if body is not None else "application/x-www-form-urlencoded",
        "X-TC-Action": action,
        "X-TC-Version": {"trtc": "2019-07-22", "tiw": "2019-09-19"}[service],
        "X-TC-Timestamp": str(ts),
    }
    headers["Authorization"] = signing.sign_tc3(
        signing.HttpRequest(method, headers, body or b"", query),
        secret_id=t.creds.secret_id,
        secret_key=t.creds.secret_key,
        service=service,
        timestamp=ts,
    )
    r = httpx.request(
        method, f"{server.url}/?{query}" if query else server.url + "/", content=body, headers=headers
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    return r.json()["Response"]


def v1(server: LiveServer, t: Tenant, params: dict[str, Any], nonce: int) -> Any:
    pairs = {
        **signing.flatten_params(params),
        "Version": "2019-07-22",
        "Region": "ap-guangzhou",
        "Timestamp": str(int(time.time())),
        "Nonce": str(nonce),
        "SecretId": t.creds.secret_id,
        "SignatureMethod": "HmacSHA256",
    }
    pairs["Signature"] = signing.sign_v1("GET", server.endpoint, pairs, t.creds.secret_key)
    return httpx.get(f"{server.url}/?{urlencode(pairs)}").json()["Response"]


def code(resp: Any) -> str:
    return str(resp.get("Error", {}).get("Code", ""))


# ------------------------------------------------------------------------------------------- TRTC


def test_get_with_a_mistyped_nested_field_names_it(server: LiveServer) -> None:
    t = make_tenant(server, "typo")
    doc = create_request(t)
    doc["StorageParams"] = {"CloudStorage": {"Vendor": "tencent", "Region": "r", "Bucket": "b",
                                             "AccessKey": "a", "SecretKey": "s"}}  # fmt: skip
    resp = tc3(server, t, "CreateCloudRecording", query=urlencode(signing.flatten_params(doc)))
    assert code(resp) == "InvalidParameter.OutOfRange"
    assert "StorageParams.CloudStorage.Vendor" in resp["Error"]["Message"]


@pytest.mark.parametrize(
    ("extra", "wanted", "named"),
    [
        ({"UserIds.0": "a", "UserIds.²": "b"}, "InvalidParameter.UserIds", "UserIds"),
        ({"UserIds.0": "a", "UserIds.5": "b"}, "InvalidParameter.UserIds", "UserIds"),
        ({"UserIds": "a", "UserIds.0": "b"}, "InvalidParameter.UserIds", "UserIds"),
        ({"UserIds..0": "a"}, "InvalidParameter.UserIds", "UserIds..0"),
        ({".".join(["A"] * 3000): "x"}, "InvalidParameter", "A.A.A"),
    ],
)
def test_odd_parameter_names_are_parameter_errors(
    server: LiveServer, tenant: Tenant, extra: dict[str, str], wanted: str, named: str
) -> None:
    params = {"Action": "RemoveUser", "SdkAppId": tenant.app.sdk_app_id, "RoomId": 1, **extra}
    resp = v1(server, tenant, params, nonce=time.time_ns())
    assert code(resp) == wanted and named in resp["Error"]["Message"], resp


@pytest.mark.parametrize(
    ("body", "wanted"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "InvalidParameter"),
        (b'{"SdkAppId":' * 40 + b"1" + b"}" * 40, "InvalidParameter"),
        (b'{"SdkAppId": NaN}', "InvalidParameter"),
        (b'{"RoomId": "\\ud800"}', "InvalidParameter"),
        (b'{"x":"' + b"y" * (10 * 1024 * 1024) + b'"}', "RequestSizeLimitExceeded"),
        (b'{"SdkAppId": 99999999999999999999999}', "InvalidParameter.SdkAppId"),
    ],
)
def test_bodies_past_the_limits(server: LiveServer, tenant: Tenant, body: bytes, wanted: str) -> None:
    assert code(tc3(server, tenant, "DescribeCloudRecording", body)) == wanted


def test_a_v1_nonce_is_accepted_once_per_key(
    server: LiveServer, tenant: Tenant, other_tenant: Tenant
) -> None:
    nonce = 424242

    def dismiss(t: Tenant, n: int) -> str:
        return code(v1(server, t, {"Action": "DismissRoom", "SdkAppId": t.app.sdk_app_id, "RoomId": 7}, n))

    assert dismiss(tenant, nonce) == "FailedOperation.RoomNotExist"  # authenticated, then no room
    assert dismiss(tenant, nonce) == "AuthFailure.SignatureExpire"  # the same Nonce again
    assert dismiss(other_tenant, nonce) == "FailedOperation.RoomNotExist"  # another key may use it
    assert dismiss(tenant, nonce + 1) == "FailedOperation.RoomNotExist"


def test_the_sdk_v1_signature_is_not_taken_for_a_replay(server: LiveServer, tenant: Tenant) -> None:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http", reqMethod="GET"))
    prof.signMethod = "HmacSHA256"
    c = trtc_client.TrtcClient(
        credential.Credential(tenant.creds.secret_id, tenant.creds.secret_key), "", prof
    )
    req = models.DismissRoomRequest()
    req.SdkAppId, req.RoomId = tenant.app.sdk_app_id, 8
    for _ in range(3):  # a fresh random Nonce per call
        with pytest.raises(TencentCloudSDKException) as ei:
            c.DismissRoom(req)
        assert ei.value.get_code() == "FailedOperation.RoomNotExist"


# --------------------------------------------------------------------------------- disabled apps


def _set_state(server: LiveServer, t: Tenant, state: AppState) -> None:
    async def body(rt: Runtime) -> None:
        await rt.tenancy.set_app_state(t.app.app_id, state)

    server.run(body)


def test_disabled_app_refuses_recording_in_trtc_and_joyy_and_joins(server: LiveServer) -> None:
    t = make_tenant(server, "paused")
    _set_state(server, t, AppState.DISABLED)
    client = trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key),
        "ap-guangzhou",
        ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http")),
    )
    req = models.CreateCloudRecordingRequest()
    req.from_json_string(json.dumps(create_request(t)))
    with pytest.raises(TencentCloudSDKException) as ei:
        client.CreateCloudRecording(req)
    assert ei.value.get_code() == "ResourceUnavailable" and "disabled" in ei.value.get_message()
    # Controlling tasks still works on a disabled app (here: an unknown task).
    describe = models.DescribeCloudRecordingRequest()
    describe.SdkAppId, describe.TaskId = t.app.sdk_app_id, "no-such-task"
    with pytest.raises(TencentCloudSDKException) as ei:
        client.DescribeCloudRecording(describe)
    assert ei.value.get_code() == "ResourceNotFound"

    token = "Basic " + base64.b64encode(f"{t.creds.secret_id}:{t.creds.secret_key}".encode()).decode()
    joyy = httpx.post(
        f"{server.url}/app/{t.app.sdk_app_id}/v1/recordoss/applyrecord",
        json={"roomid": "r1"},
        headers={"Token": token},
    )
    assert joyy.status_code == 401 and joyy.json()["code"] == 1002 and "disabled" in joyy.json()["message"]

    offer = sdp_offer()
    for kind, tok in (("whip", issue_usersig(t.app, "u1")), ("whep", issue_jwt(t.app, "u1"))):
        r = httpx.post(
            f"{server.url}/rtc/{kind}/{t.app.sdk_app_id}/r1/u1",
            content=offer,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {tok}"},
        )
        assert r.status_code == 401 and "disabled" in r.json()["message"]

    tiw = tc3(
        server, t, "StartRoomcastEcho", json.dumps({"SdkAppId": t.app.sdk_app_id}).encode(), service="tiw"
    )
    assert code(tiw) == "ResourceUnavailable.NotRegistered"

    _set_state(server, t, AppState.ENABLED)
    tiw = tc3(
        server, t, "StartRoomcastEcho", json.dumps({"SdkAppId": t.app.sdk_app_id}).encode(), service="tiw"
    )
    assert tiw["TaskId"] == "echo"
    again = httpx.post(
        f"{server.url}/app/{t.app.sdk_app_id}/v1/recordoss/applyrecord",
        json={"roomid": "r1"},
        headers={"Token": token},
    )
    assert again.status_code == 200 and again.json()["code"] == 0


# -------------------------------------------------------------------------------------- SparkRTC


def test_sparkrtc_disable_stops_joins(server: LiveServer) -> None:
    t = make_tenant(server, "stopped")
    token = httpx.post(server.url + "/v3/auth/tokens", json=_iam_body(t)).headers["X-Subject-Token"]
    r = httpx.post(f"{server.url}/v2/apps/{t.app.app_id}/disable", headers={"X-Auth-Token": token})
    assert r.status_code == 200 and r.json()["state"]["state"] == "DEACTIVATION"
    r = httpx.post(
        f"{server.url}/rtc/whip/{t.app.app_id}/r1/u1",
        content=sdp_offer(),
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {issue_jwt(t.app, 'u1')}"},
    )
    assert r.status_code == 401 and "disabled" in r.json()["message"]


def _iam_body(t: Tenant) -> dict[str, Any]:
    user = {"name": t.creds.secret_id, "password": t.creds.secret_key}
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}


def test_sparkrtc_parameter_errors(server: LiveServer, tenant: Tenant) -> None:
    token = httpx.post(server.url + "/v3/auth/tokens", json=_iam_body(tenant)).headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    url = f"{server.url}/v2/apps/{tenant.app.app_id}/rooms/r1/batch-remove-users"
    r = httpx.post(url, json={"user_ids": [None]}, headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "RTC.00001003" and "user_ids.0" in r.text
    r = httpx.post(url, json={}, headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "RTC.00001005" and "user_ids" in r.text
    r = httpx.post(url, content=b"[" * 100_000 + b"]" * 100_000, headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "RTC.00001002"
    r = httpx.post(url, content=b'{"user_ids": ["\\ud800"]}', headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "RTC.00001002"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(auth="x"),
        lambda d: d["auth"].update(scope="x"),
        lambda d: d["auth"].update(scope={"project": "x"}),
        lambda d: d["auth"]["identity"].update(password="x"),
        lambda d: d["auth"]["identity"]["password"]["user"].update(password=["x"]),
    ],
)
def test_iam_mistyped_fields(server: LiveServer, tenant: Tenant, mutate: Any) -> None:
    body = _iam_body(tenant)
    mutate(body)
    r = httpx.post(server.url + "/v3/auth/tokens", json=body)
    assert r.status_code == 400 and r.json()["error_code"] == "IAM.0011", r.text


def test_iam_body_limits(server: LiveServer) -> None:
    r = httpx.post(server.url + "/v3/auth/tokens", content=b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    assert r.status_code == 413 and r.json()["error_code"] == "APIGW.0201"
    r = httpx.post(server.url + "/v3/auth/tokens", content=b"[" * 1000 + b"]" * 1000)
    assert r.status_code == 400 and r.json()["error_code"] == "IAM.0011"


# ------------------------------------------------------------------------------------------ JOYY


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"roomid": ["r1"]}).encode(),
        json.dumps({"roomid": {"a": 1}}).encode(),
        b"[" * 100_000 + b"]" * 100_000,
        b'{"roomid": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        b'{"roomid": "\\udfff"}',
    ],
)
def test_joyy_bad_bodies_are_2101(server: LiveServer, tenant: Tenant, body: bytes) -> None:
    token = (
        "Basic " + base64.b64encode(f"{tenant.creds.secret_id}:{tenant.creds.secret_key}".encode()).decode()
    )
    r = httpx.post(
        f"{server.url}/app/{tenant.app.sdk_app_id}/v1/recordoss/applyrecord",
        content=body,
        headers={"Token": token, "Content-Type": "application/json"},
    )
    assert r.status_code == 404 and r.json()["code"] == 2101


# ------------------------------------------------------------------------------------- WHIP / WHEP


@pytest.mark.parametrize(
    ("kind", "offer", "status", "reason"),
    [
        ("whip", "v=0", 400, "no audio or video"),
        ("whip", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", 400, "mid"),
        ("whep", "", 400, "not an SDP offer"),
        ("whep", "v=0\r\nm=video x\r\n", 400, "cannot be parsed"),
        ("whep", "v=0\r\n" + "a=x\r\n" * 20_000, 413, "larger"),
    ],
)
def test_broken_offers_get_4xx_with_a_reason(
    server: LiveServer, tenant: Tenant, kind: str, offer: str, status: int, reason: str
) -> None:
    r = httpx.post(
        f"{server.url}/rtc/{kind}/{tenant.app.sdk_app_id}/r1/u1",
        content=offer.encode(),
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {issue_jwt(tenant.app, 'u1')}"},
    )
    assert r.status_code == status and reason in r.json()["message"], r.text


def test_an_offer_without_direction_is_refused(server: LiveServer, tenant: Tenant) -> None:
    offer = "\r\n".join(line for line in sdp_offer().split("\r\n") if line != "a=sendrecv")
    r = httpx.post(
        f"{server.url}/rtc/whip/{tenant.app.sdk_app_id}/r1/u1",
        content=offer.encode(),
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {issue_jwt(tenant.app, 'u1')}"},
    )
    assert r.status_code == 400 and "direction" in r.json()["message"]


# ------------------------------------------------------------------------------------------- raw


@pytest.mark.parametrize(
    "path", ["/media/%00", "/media/a%00b", "/media/" + "a" * 300, "/media/" + "a/" * 600]
)
def test_odd_media_paths_are_404(server: LiveServer, path: str) -> None:
    assert httpx.get(server.url + path).status_code == 404
