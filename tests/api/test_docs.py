"""/docs works offline and its OpenAPI document covers the native API and every dialect route."""

from __future__ import annotations

import re

import httpx

from tests.support.live import LiveServer


def test_docs_page_uses_only_local_assets(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/docs", timeout=10)
    assert page.status_code == 200
    assert not re.search(r"""(src|href)=["']https?://""", page.text), page.text
    assets = re.findall(r"""(?:src|href)=["'](/docs/assets/[^"']+)""", page.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        r = httpx.get(server.url + asset, timeout=10)
        assert r.status_code == 200 and len(r.content) > 100, asset


def test_openapi_covers_every_dialect_with_examples(server: LiveServer) -> None:
    doc = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    paths = doc["paths"]
    for path in (
        "/",
        "/v3/auth/tokens",
        "/v2/apps",
        "/v2/apps/{app_id}/rooms/{room_id}/batch-remove-users",
        "/app/{appid}/v1/recordoss/{method}",
        "/media/{key}",
        "/rtc/whip/{app_id}/{room_id}/{user_id}",
        "/api/v1/apps",
        "/api/v1/apps/{app}/rooms/{room_id}",
        "/api/v1/tasks/{task_id}",
        "/api/v1/callbacks/{event_id}/redeliver",
    ):
        assert path in paths, path
    trtc = paths["/"]["post"]
    actions = next(p for p in trtc["parameters"] if p["name"] == "X-TC-Action")["schema"]["enum"]
    assert {"CreateCloudRecording", "DeleteCloudRecording", "RemoveUserByStrRoomId", "DismissRoom"} <= set(
        actions
    )
    assert {"StartOnlineRecord", "DescribeOnlineRecord", "PauseOnlineRecord"} <= set(actions)  # TIW
    body = trtc["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == set(actions)  # every served action has a request example
    assert len(body["schema"]["oneOf"]) == len(actions)
    joy = paths["/app/{appid}/v1/recordoss/{method}"]["post"]
    assert "applyrecord" in joy["requestBody"]["content"]["application/json"]["examples"]
    assert paths["/v2/apps"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert paths["/api/v1/tasks"]["get"]["security"]
