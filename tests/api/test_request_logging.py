"""Every request is logged once with its request id, and no secret reaches the log."""

from __future__ import annotations

import base64
import logging

import httpx
import pytest
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from roomcast.log import JsonFormatter
from tests.api.conftest import Tenant
from tests.support.live import LiveServer


def test_requests_logged_without_secrets(
    server: LiveServer, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http", reqMethod="GET"))
    prof.signMethod = "HmacSHA256"
    c = CommonClient(
        "trtc",
        "2019-07-22",
        credential.Credential(tenant.creds.secret_id, tenant.creds.secret_key),
        "ap-guangzhou",
        profile=prof,
    )
    with pytest.raises(TencentCloudSDKException) as ei:
        c.call_json("StopPublishCdnStream", {"SdkAppId": tenant.app.sdk_app_id, "TaskId": "x"})
    request_id = ei.value.get_request_id()
    basic = base64.b64encode(f"{tenant.creds.secret_id}:{tenant.creds.secret_key}".encode()).decode()
    r = httpx.post(
        f"{server.url}/app/{tenant.app.sdk_app_id}/v1/recordoss/applyrecord",
        headers={"Token": "Basic " + basic},
    )
    assert r.json()["code"] == 0
    lines = [JsonFormatter().format(rec) for rec in caplog.records]
    text = "\n".join(lines)
    assert tenant.creds.secret_key not in text and basic not in text and "Signature=" not in text
    request_lines = [line for line in lines if '"event": "request"' in line]
    assert any(request_id in line and '"path": "/"' in line for line in request_lines)
    assert any("/recordoss/applyrecord" in line for line in request_lines)
