"""Tenant-supplied URLs on a node that keeps the default policy (no private addresses): each
dialect answers its invalid-parameter error naming the field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcloudrtc.v2 import (
    AppCallbackUrlReq,
    CloudRTCClient,
    ShowRecordCallbackRequest,
    UpdateRecordCallbackRequest,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.domain.errors import InvalidArgument
from roomcast.net.urls import UrlPolicy
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Path(tmp_path_factory.mktemp("strict")) / "var", allow_private_urls=False) as srv:
        yield srv


def trtc(server: LiveServer, t: Tenant) -> trtc_client.TrtcClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))
    return trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-guangzhou", prof
    )


def mixed_body(t: Tenant, layout: dict[str, Any]) -> dict[str, Any]:
    return {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": "8888",
        "UserId": "rec",
        "UserSig": issue_usersig(t.app, "rec"),
        "RecordParams": {"RecordMode": 2, "MaxIdleTime": 30},
        "StorageParams": {"CloudVod": {"TencentVod": {"MediaType": 0}}},
        "MixTranscodeParams": {
            "VideoParams": {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 600000, "Gop": 2}
        },
        "MixLayoutParams": {"MixLayoutMode": 3, **layout},
    }


def watermark(url: str) -> dict[str, Any]:
    image = {"WaterMarkUrl": url, "Top": 0, "Left": 0, "Width": 64, "Height": 64}
    return {"WaterMarkList": [{"WaterMarkType": 0, "WaterMarkImage": image}]}


@pytest.mark.parametrize(
    ("layout", "field"),
    [
        (watermark("file:///etc/passwd"), "WaterMarkList.0.WaterMarkImage.WaterMarkUrl"),
        (watermark("/var/lib/roomcast/secret.key"), "WaterMarkList.0.WaterMarkImage.WaterMarkUrl"),
        (watermark("http://127.0.0.1:8080/logo.png"), "WaterMarkList.0.WaterMarkImage.WaterMarkUrl"),
        ({"BackgroundImageUrl": "http://169.254.169.254/latest/meta-data/"}, "BackgroundImageUrl"),
        ({"BackgroundImageUrl": "http://10.0.0.7/bg.jpg"}, "BackgroundImageUrl"),
        ({"DefaultSubBackgroundImage": "http://[::1]/p.png"}, "DefaultSubBackgroundImage"),
        (
            {
                "MixLayoutMode": 4,
                "MixLayoutList": [
                    {"Top": 0, "Left": 0, "Width": 320, "Height": 180, "SubBackgroundImage": "file:///x.mp4"}
                ],
            },
            "MixLayoutList.0.SubBackgroundImage",
        ),
    ],
)
def test_trtc_refuses_local_and_private_image_urls(
    server: LiveServer, layout: dict[str, Any], field: str
) -> None:
    t = make_tenant(server, f"trtc-{abs(hash(field + json.dumps(layout))) % 10**8}")
    r = models.CreateCloudRecordingRequest()
    r.from_json_string(json.dumps(mixed_body(t, layout)))
    with pytest.raises(TencentCloudSDKException) as err:
        trtc(server, t).CreateCloudRecording(r)
    assert err.value.code == "InvalidParameter.OutOfRange"
    assert f"MixLayoutParams.{field}" in err.value.message


def spark(server: LiveServer, t: Tenant) -> CloudRTCClient:
    creds = BasicCredentials(t.creds.secret_id, t.creds.secret_key, t.creds.project_id)
    return CloudRTCClient.new_builder().with_credentials(creds).with_endpoints([server.url]).build()


def test_sparkrtc_record_callback(server: LiveServer) -> None:
    t = make_tenant(server, "spark")
    c = spark(server, t)
    ok = c.update_record_callback(
        UpdateRecordCallbackRequest(
            app_id=t.app.app_id, body=AppCallbackUrlReq(url="https://hooks.example.com/cb", auth_key="k" * 32)
        )
    )
    assert ok.app_id == t.app.app_id and ok.record_callback.url == "https://hooks.example.com/cb"
    assert ok.record_callback.notify_event_subscription == [
        "RECORD_NEW_FILE_START",
        "RECORD_FILE_COMPLETE",
        "CLOUD_RECORD_OVER",
    ]
    for url, code in [
        ("http://127.0.0.1:9/cb", "RTC.00001018"),
        ("http://169.254.169.254/latest/meta-data/", "RTC.00001018"),
        ("http://192.168.1.10/cb", "RTC.00001018"),
        ("ftp://hooks.example.com/cb", "RTC.00001003"),
    ]:
        with pytest.raises(ClientRequestException) as err:
            c.update_record_callback(
                UpdateRecordCallbackRequest(app_id=t.app.app_id, body=AppCallbackUrlReq(url=url))
            )
        assert (err.value.status_code, err.value.error_code) == (400, code)
        assert "url" in err.value.error_msg
    shown = c.show_record_callback(ShowRecordCallbackRequest(app_id=t.app.app_id))
    assert shown.record_callback.url == "https://hooks.example.com/cb"
    assert shown.record_callback.auth_key == "k" * 32


def test_sparkrtc_and_joyy_layout_images() -> None:
    from roomcast.api.jocloud import layouts as jl
    from roomcast.api.sparkrtc import layouts as sl

    strict = UrlPolicy(allow_private=False)

    async def refused(coro: Any) -> InvalidArgument:
        with pytest.raises(InvalidArgument) as err:
            await coro
        return err.value

    async def body() -> None:
        ok = sl.SparkMixLayoutParams("nine_grids_view", background_image="s3://my-bucket/bg/sky.png")
        await sl.check_image_urls(strict, ok, "my-bucket")  # the documented OBS form
        err = await refused(sl.check_image_urls(strict, ok, "rule-bucket"))  # only the rule's bucket
        assert err.subject == "mix_param.background_image"
        bad = sl.SparkMixLayoutParams(
            "nine_grids_view",
            background_image="s3://my-bucket/bg.png",
            user_background_images={"u1": "file:///etc/passwd"},
        )
        err = await refused(sl.check_image_urls(strict, bad, "my-bucket"))
        assert err.subject == "mix_param.user_background_images[0].image_uri"
        err = await refused(
            sl.check_image_urls(
                strict, sl.SparkMixLayoutParams("custom", screen_background_image="http://10.1.1.1/"), "b"
            )
        )
        assert err.subject == "mix_param.screen_background_image"

        mark = jl.JoyyImageMark(0, 0, 32, 32, "http://127.0.0.1/logo.png")
        err = await refused(jl.check_image_urls(strict, jl.JoyyMixConfig(640, 360, images=[mark])))
        assert err.subject == "watermark.imageList[0].url"
        err = await refused(
            jl.check_image_urls(strict, jl.JoyyMixConfig(640, 360, patch=3, patch_url="/tmp/x.png"))
        )
        assert err.subject == "patchUrl"
        err = await refused(
            jl.check_image_urls(
                strict, jl.JoyyMixConfig(640, 360, background_image_url="http://[fd00:ec2::254]/")
            )
        )
        assert err.subject == "background.image.url"

    asyncio.run(body())


def test_trtc_modify_refuses_a_private_image_url(server: LiveServer) -> None:
    t = make_tenant(server, "trtc-modify")
    c = trtc(server, t)
    create = models.CreateCloudRecordingRequest()
    create.from_json_string(json.dumps(mixed_body(t, {})))
    task_id = c.CreateCloudRecording(create).TaskId
    try:
        modify = models.ModifyCloudRecordingRequest()
        body = {"SdkAppId": t.app.sdk_app_id, "TaskId": task_id, "MixLayoutParams": {"MixLayoutMode": 3}}
        body["MixLayoutParams"].update(watermark("http://[fd00:ec2::254]/logo.png"))
        modify.from_json_string(json.dumps(body))
        with pytest.raises(TencentCloudSDKException) as err:
            c.ModifyCloudRecording(modify)
        assert err.value.code == "InvalidParameter.OutOfRange"
        assert "WaterMarkList.0.WaterMarkImage.WaterMarkUrl" in err.value.message
        assert "metadata" in err.value.message
    finally:
        delete = models.DeleteCloudRecordingRequest()
        delete.from_json_string(json.dumps({"SdkAppId": t.app.sdk_app_id, "TaskId": task_id}))
        c.DeleteCloudRecording(delete)
