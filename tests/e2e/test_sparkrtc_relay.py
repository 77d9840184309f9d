"""SparkRTC ``publish_param.rtmp_urls`` end to end: a mix job and an individual job push to a real
nginx-rtmp on loopback (read back with PyAV), a job's URL list changes live, stopping the job
stops the push, and a bad URL is refused.  The official SDK has no ``publish_param`` model, so
these requests are signed here with the SDK-HMAC-SHA256 rules the server checks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roomcast.api.sparkrtc import signing
from tests.api.conftest import Tenant, make_tenant
from tests.e2e.test_sparkrtc_recording import make_rule, sdk
from tests.e2e.test_trtc_cloud_recording import publishers
from tests.support import avcheck
from tests.support.live import LiveServer, live_server
from tests.support.rtmp import RtmpServer, capture, rtmp_server
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, MotoS3

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOM = "5555"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: MotoS3) -> Iterator[LiveServer]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        with live_server(
            Path(tmp_path_factory.mktemp("spark-relay")) / "var",
            ice_host_addresses=["127.0.0.1"],
            s3_endpoint=moto.endpoint,
            empty_room_grace_s=5.0,
        ) as srv:
            yield srv


@pytest.fixture(scope="module")
def rtmp() -> Iterator[RtmpServer]:
    with rtmp_server() as srv:
        yield srv


def spark(
    server: LiveServer, t: Tenant, method: str, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    headers = {
        "Host": server.endpoint,
        "Content-Type": "application/json;charset=UTF-8",
        "X-Sdk-Date": signing.format_sdk_date(),
        "X-Project-Id": t.creds.project_id,
    }
    headers["Authorization"] = signing.sign(
        signing.HttpRequest(method, path, headers, content, ""),
        access_key=t.creds.secret_id,
        secret_key=t.creds.secret_key,
    )
    return httpx.request(method, server.url + path, content=content or None, headers=headers, timeout=30)


async def test_mix_and_individual_jobs_push_to_rtmp(
    server: LiveServer, rtmp: RtmpServer, moto: MotoS3, tmp_path: Path
) -> None:
    t = await asyncio.to_thread(make_tenant, server, "spark-relay")
    app_id = t.app.app_id
    rule_id = await asyncio.to_thread(make_rule, sdk(server, t), app_id, moto.make_bucket())
    mix_url, single_url, single_url2 = rtmp.url("spark-mix"), rtmp.url("spark-u1"), rtmp.url("spark-u1b")

    async def call(method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await asyncio.to_thread(spark, server, t, method, path, body)

    bad = await call(
        "POST",
        f"/v2/apps/{app_id}/mix-stream-jobs",
        {
            "mix_param": {
                "room_id": ROOM,
                "encode_template": "640x480_15_500",
                "layout_template": "nine_grids_view",
            },
            "record_param": {"record_rule_id": rule_id},
            "publish_param": {"rtmp_urls": ["https://cdn.example/live/x"]},
        },
    )
    assert bad.status_code == 400 and bad.json()["error_code"] == "RTC.00001003"
    assert "publish_param.rtmp_urls.0" in bad.json()["error_msg"]

    async with publishers(server, t, ["u1", "u2"], room=ROOM):
        mix = await call(
            "POST",
            f"/v2/apps/{app_id}/mix-stream-jobs",
            {
                "mix_param": {
                    "room_id": ROOM,
                    "encode_template": "640x480_15_500",
                    "layout_template": "nine_grids_view",
                },
                "record_param": {"record_rule_id": rule_id},
                "publish_param": {"rtmp_urls": [mix_url]},
            },
        )
        assert mix.status_code == 201, mix.text
        assert mix.json()["publish_param"] == {"rtmp_urls": [mix_url]}
        single = await call(
            "POST",
            f"/v2/apps/{app_id}/individual-stream-jobs",
            {
                "room_id": ROOM,
                "user_id": "u1",
                "record_param": {"record_rule_id": rule_id},
                "publish_param": {"rtmp_urls": [single_url]},
            },
        )
        assert single.status_code == 201, single.text
        await asyncio.sleep(2.0)
        mix_file, single_file = tmp_path / "mix.mkv", tmp_path / "u1.mkv"
        await asyncio.gather(
            asyncio.to_thread(capture, mix_url, mix_file, seconds=2.5),
            asyncio.to_thread(capture, single_url, single_file, seconds=2.5),
        )
        info = avcheck.probe(mix_file)
        assert info.video is not None and (info.video.width, info.video.height) == (640, 480)
        assert info.audio is not None
        frame = avcheck.frame_at(mix_file, 1.0)
        users = avcheck.region_users(frame, [(80, 180, 160, 120), (400, 180, 160, 120)], ["u1", "u2"])
        assert sorted(u for u in users if u) == ["u1", "u2"]
        info = avcheck.probe(single_file)
        assert info.video is not None and (info.video.width, info.video.height) == (320, 180)
        assert avcheck.region_users(single_file, [(40, 40, 240, 100)], ["u1", "u2"], at=1.0) == ["u1"]

        # The individual job moves its push to another URL.
        single_id = single.json()["job_id"]
        moved = await call(
            "PUT",
            f"/v2/apps/{app_id}/individual-stream-jobs/{single_id}",
            {"publish_param": {"rtmp_urls": [single_url2]}},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["publish_param"] == {"rtmp_urls": [single_url2]}
        await asyncio.sleep(1.5)
        await asyncio.to_thread(capture, single_url2, tmp_path / "u1b.mkv", seconds=1.0)

        # Stopping the jobs stops their pushes.
        for kind, job in (("mix-stream-jobs", mix.json()["job_id"]), ("individual-stream-jobs", single_id)):
            stopped = await call("DELETE", f"/v2/apps/{app_id}/{kind}/{job}")
            assert stopped.status_code == 204
        await asyncio.sleep(1.5)
        for url in (mix_url, single_url2):
            with pytest.raises(Exception):  # noqa: B017 - nginx has no such stream any more
                await asyncio.to_thread(capture, url, tmp_path / "after.mkv", seconds=1.0, timeout=3.0)
