"""Bad input never crashes a dialect: random, correctly signed bodies get a vendor error, not a 500."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomcast.api.trtc import signing
from tests.api.conftest import Tenant
from tests.support.live import LiveServer

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
TRTC_ACTIONS = [
    "CreateCloudRecording",
    "DescribeCloudRecording",
    "ModifyCloudRecording",
    "DeleteCloudRecording",
    "RemoveUser",
    "RemoveUserByStrRoomId",
    "DismissRoom",
    "SetUserBlocked",
]
FIELDS = [
    "SdkAppId",
    "RoomId",
    "UserId",
    "UserSig",
    "TaskId",
    "RecordParams",
    "StorageParams",
    "UserIds",
    "MixLayoutParams",
    "MixTranscodeParams",
    "IsMute",
    "StrRoomId",
    "SubscribeStreamUserIds",
]
RELAXED = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def signed_post(server: LiveServer, t: Tenant, action: str, body: bytes) -> httpx.Response:
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "Host": server.endpoint,
        "X-TC-Action": action,
        "X-TC-Version": "2019-07-22",
        "X-TC-Timestamp": str(ts),
    }
    headers["Authorization"] = signing.sign_tc3(
        signing.HttpRequest("POST", headers, body),
        secret_id=t.creds.secret_id,
        secret_key=t.creds.secret_key,
        service="trtc",
        timestamp=ts,
    )
    return httpx.post(server.url + "/", content=body, headers=headers)


@RELAXED
@given(
    action=st.sampled_from(TRTC_ACTIONS),
    fields=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    use_own_app=st.booleans(),
)
def test_trtc_actions_never_fail_internally(
    server: LiveServer, tenant: Tenant, action: str, fields: dict[str, Any], use_own_app: bool
) -> None:
    if use_own_app:
        fields["SdkAppId"] = tenant.app.sdk_app_id
    r = signed_post(server, tenant, action, json.dumps(fields).encode())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    resp = r.json()["Response"]
    assert resp["RequestId"]
    if "Error" in resp:
        assert not resp["Error"]["Code"].startswith("InternalError"), resp


@RELAXED
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_sparkrtc_bodies_never_fail_internally(server: LiveServer, tenant: Tenant, body: bytes) -> None:
    r = httpx.post(server.url + "/v3/auth/tokens", content=body)
    assert r.status_code < 500 and "error_code" in r.json()


@RELAXED
@given(
    method=st.sampled_from(
        [
            "applyrecord",
            "startrecord",
            "updatemixrecord",
            "stoprecord",
            "queryrecord",
            "queryrecord/r/1",
            "queryrecord/r/1/2",
            "x/../y",
        ]
    ),
    body=st.binary(max_size=120) | json_values.map(lambda v: json.dumps(v).encode()),
)
def test_jocloud_bodies_never_fail_internally(
    server: LiveServer, tenant: Tenant, method: str, body: bytes
) -> None:
    token = (
        "Basic " + base64.b64encode(f"{tenant.creds.secret_id}:{tenant.creds.secret_key}".encode()).decode()
    )
    r = httpx.post(
        f"{server.url}/app/{tenant.app.sdk_app_id}/v1/recordoss/{method}",
        content=body,
        headers={"Token": token, "Content-Type": "application/json"},
    )
    data = r.json()
    assert r.status_code != 500 and data["code"] != 2104 and "traceId" in data, data


JOYY_METHODS = ["startrecord", "updatemixrecord", "stoprecord"]
JOYY_FIELDS = [
    "resid",
    "appid",
    "roomid",
    "recordtype",
    "streamtype",
    "mixconfig",
    "uid",
    "storagecfg",
    "callbackurl",
    "recordid",
]
JOYY_MIX_FIELDS = ["input", "intput", "templateid", "output"]
JOYY_OUTPUT_FIELDS = [
    "streamtype",
    "videoheight",
    "videowidth",
    "videobitrate",
    "videofps",
    "videogop",
    "audiobitrate",
    "patch",
    "patchUrl",
    "watermark",
    "background",
]
JOYY_STORAGE_FIELDS = ["vender", "endpoint", "bucket", "accesskey", "secretkey", "fileprefix"]


@RELAXED
@given(
    method=st.sampled_from(JOYY_METHODS),
    fields=st.dictionaries(st.sampled_from(JOYY_FIELDS), json_values, max_size=6),
    mix=st.dictionaries(st.sampled_from(JOYY_MIX_FIELDS), json_values, max_size=3),
    output=st.dictionaries(st.sampled_from(JOYY_OUTPUT_FIELDS), json_values, max_size=5),
    store=st.dictionaries(st.sampled_from(JOYY_STORAGE_FIELDS), json_values, max_size=6),
)
def test_jocloud_fields_never_fail_internally(
    server: LiveServer,
    tenant: Tenant,
    method: str,
    fields: dict[str, Any],
    mix: dict[str, Any],
    output: dict[str, Any],
    store: dict[str, Any],
) -> None:
    """Vendor-shaped bodies (the documented field names, random values) reach the deeper checks."""
    token = (
        "Basic " + base64.b64encode(f"{tenant.creds.secret_id}:{tenant.creds.secret_key}".encode()).decode()
    )
    body = {"appid": tenant.app.sdk_app_id, "resid": "r", "roomid": "room", **fields}
    body["appid"] = tenant.app.sdk_app_id
    body["mixconfig"] = {**mix, "output": output}
    body["storagecfg"] = store
    r = httpx.post(
        f"{server.url}/app/{tenant.app.sdk_app_id}/v1/recordoss/{method}",
        content=json.dumps(body).encode(),
        headers={"Token": token, "Content-Type": "application/json"},
    )
    data = r.json()
    assert r.status_code == 404 and data["code"] in (2101, 4012, 4013, 4016), data
