"""The native API (/api/v1) through a real server: auth, tenancy, live rooms and moderation,
tasks and their files after the task ended, callbacks and redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tencentcloud.trtc.v20190722 import models

from roomcast.runtime import Runtime
from tests.api.conftest import Tenant, make_tenant
from tests.conftest import free_port
from tests.e2e.test_trtc_cloud_recording import ROOM, call, mixed_body, publishers, req, sdk, wait_exited
from tests.support.live import LiveServer, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = Path(tmp_path_factory.mktemp("native")) / "var"
    with live_server(
        data,
        ice_host_addresses=["127.0.0.1"],
        stats_interval_s=0.5,
        empty_room_grace_s=0.5,
        allow_private_urls=True,
    ) as srv:
        yield srv


def api(server: LiveServer, t: Tenant) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{server.url}/api/v1", auth=(t.creds.secret_id, t.creds.secret_key))


async def until(check: Any, limit: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        got = await check()
        if got:
            return got
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.25)


async def test_auth_session_and_tenancy(server: LiveServer) -> None:
    t = await asyncio.to_thread(make_tenant, server)
    rival = await asyncio.to_thread(make_tenant, server, "rival")
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1") as anon:
        r = await anon.get("/apps")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert r.json()["error"]["code"] == "unauthenticated"
        r = await anon.get("/apps", headers={"X-Roomcast-Console": "1"})
        assert r.status_code == 401 and "www-authenticate" not in r.headers
        bad = await anon.get("/apps", auth=(t.creds.secret_id, "wrong"))
        assert bad.status_code == 401
        # A console session: sign in with the key pair, then the cookie is enough.
        r = await anon.post(
            "/session", json={"secret_id": t.creds.secret_id, "secret_key": t.creds.secret_key}
        )
        assert r.status_code == 200 and r.json()["account_id"] == t.creds.account_id
        assert (
            "httponly" in r.headers["set-cookie"].lower()
            and "samesite=strict" in r.headers["set-cookie"].lower()
        )
        apps = (await anon.get("/apps")).json()
        assert [a["sdk_app_id"] for a in apps] == [t.app.sdk_app_id] and "app_key" not in apps[0]
        assert (await anon.delete("/session")).status_code == 204
        anon.cookies.clear()
        assert (await anon.get("/apps")).status_code == 401

    async with api(server, t) as c, api(server, rival) as other:
        shown = (await c.get(f"/apps/{t.app.app_id}")).json()
        assert shown["app_key"] == t.app.app_key
        # Another tenant's app looks exactly like a missing one.
        assert (await other.get(f"/apps/{t.app.sdk_app_id}")).status_code == 404
        created = await c.post("/apps", json={"name": "second"})
        assert created.status_code == 201 and created.json()["app_key"]
        assert (await c.post(f"/apps/{created.json()['app_id']}/disable")).json()["state"] == "disabled"
        assert (await c.delete(f"/apps/{created.json()['app_id']}")).status_code == 204
        key = (await c.post("/keys")).json()
        assert {k["secret_id"] for k in (await c.get("/keys")).json()} == {
            t.creds.secret_id,
            key["secret_id"],
        }
        assert (await other.post(f"/keys/{key['secret_id']}/revoke")).status_code == 404
        assert (await c.post(f"/keys/{key['secret_id']}/revoke")).json()["status"] == "revoked"
        async with httpx.AsyncClient(auth=(key["secret_id"], key["secret_key"])) as revoked:
            assert (await revoked.get(f"{server.url}/api/v1/apps")).status_code == 401


async def test_rooms_moderation_tasks_files_callbacks(server: LiveServer) -> None:
    t = await asyncio.to_thread(make_tenant, server)
    dead = f"http://127.0.0.1:{free_port()}/cb"  # nobody listens: deliveries fail and are retried

    async def set_cb(rt: Runtime) -> None:
        await rt.tenancy.set_callback(t.app.app_id, dead, "k" * 16)

    await asyncio.to_thread(server.run, set_cb)
    trtc = sdk(server, t)
    app = t.app.sdk_app_id
    async with api(server, t) as c, publishers(server, t, ["u1", "u2"]):
        room = await until(lambda: _room(c, app, ROOM, 2))
        users = {u["user_id"]: u for u in room["users"]}
        assert set(users) == {"u1", "u2"}
        assert {tr["kind"] for tr in users["u1"]["tracks"]} == {"audio", "camera"}
        assert not room["recording"]
        # Quality samples arrive every 0.5 s.
        room = await until(lambda: _quality(c, app, ROOM))
        rooms = (await c.get(f"/apps/{app}/rooms")).json()
        assert [(r["room_id"], r["participants"]) for r in rooms] == [(ROOM, 2)]

        r = await c.post(f"/apps/{app}/rooms/{ROOM}/users/u2/block", json={"audio": True})
        assert r.status_code == 204
        room = (await c.get(f"/apps/{app}/rooms/{ROOM}")).json()
        u2 = {tr["kind"]: tr for u in room["users"] if u["user_id"] == "u2" for tr in u["tracks"]}
        assert u2["audio"]["blocked"] and not u2["camera"]["blocked"]
        assert (await c.post(f"/apps/{app}/rooms/{ROOM}/remove", json={"user_ids": ["u2"]})).json() == {
            "removed": ["u2"]
        }
        await until(lambda: _room(c, app, ROOM, 1))

        created = await call(
            trtc.CreateCloudRecording, req(models.CreateCloudRecordingRequest, mixed_body(t))
        )
        task_id = created.TaskId
        running = await until(lambda: _task_state(c, task_id, "running"))
        assert running["kind"] == "recording" and running["room_id"] == ROOM
        assert (await c.get(f"/apps/{app}/rooms/{ROOM}")).json()["recording"] is True
        listed = (await c.get("/tasks", params={"running": "true"})).json()
        assert [x["task_id"] for x in listed] == [task_id]
        await asyncio.sleep(3)
        await call(
            trtc.DeleteCloudRecording,
            req(models.DeleteCloudRecordingRequest, {"SdkAppId": app, "TaskId": task_id}),
        )
        await wait_exited(trtc, app, task_id)

    # After the end: the task, its file and its URL are still there; the file downloads.
    async with api(server, t) as c:
        done = await until(lambda: _stored(c, task_id))
        (f,) = done["files"]
        assert done["state"] == "exited" and done["reason"] == "stopped"
        assert f["storage"] == "library" and f["url"].endswith(f["key"])
        async with httpx.AsyncClient() as anon:
            played = await anon.get(f["url"])
            assert played.status_code == 200 and played.content[4:8] == b"ftyp"
        dl = await c.get(f"/tasks/{task_id}/files/0/download")
        assert dl.status_code == 200 and dl.content == played.content
        assert "attachment" in dl.headers["content-disposition"]
        assert (await c.get(f"/tasks/{task_id}/files/5/download")).status_code == 404

        (today,) = (await c.get("/usage", params={"app": str(app), "days": 1})).json()
        assert today["sdk_app_id"] == app and today["sessions"] >= 2
        assert today["participant_minutes"] > 0.05 and today["recording_minutes"] > 0.03

        cbs = await until(lambda: _callbacks(c, app))
        first = cbs[-1]
        assert first["url"] == dead and first["kind"].startswith("trtc.")
        assert first["body"]["EventType"] and first["state"] == "pending" and first["last_error"]
        one = (await c.get(f"/callbacks/{first['event_id']}")).json()
        before = one["attempts"]
        again = (await c.post(f"/callbacks/{first['event_id']}/redeliver")).json()
        assert again["state"] == "pending"
        await until(lambda: _attempts_above(c, first["event_id"], before))
    async with api(server, await asyncio.to_thread(make_tenant, server, "rival2")) as other:
        assert (await other.get(f"/tasks/{task_id}")).status_code == 404
        assert (await other.get("/tasks")).json() == []
        assert (await other.get(f"/callbacks/{first['event_id']}")).status_code == 404


async def _room(c: httpx.AsyncClient, app: int, room: str, people: int) -> Any:
    r = await c.get(f"/apps/{app}/rooms/{room}")
    if r.status_code != 200:
        return None
    body = r.json()
    ready = len(body["users"]) == people and all(len(u["tracks"]) == 2 for u in body["users"])
    return body if ready else None


async def _quality(c: httpx.AsyncClient, app: int, room: str) -> Any:
    body = (await c.get(f"/apps/{app}/rooms/{room}")).json()
    q = [tr["quality"] for u in body["users"] for tr in u["tracks"] if tr["kind"] == "camera"]
    return body if q and all(x and x["bitrate_bps"] for x in q) else None


async def _task_state(c: httpx.AsyncClient, task_id: str, state: str) -> Any:
    body = (await c.get(f"/tasks/{task_id}")).json()
    return body if body["state"] == state else None


async def _stored(c: httpx.AsyncClient, task_id: str) -> Any:
    body = (await c.get(f"/tasks/{task_id}")).json()
    return body if body["files"] and all(f["state"] == "stored" for f in body["files"]) else None


async def _callbacks(c: httpx.AsyncClient, app: int) -> Any:
    body = (await c.get("/callbacks", params={"app": str(app), "payload": "true"})).json()
    return body if body and body[-1]["attempts"] >= 1 else None


async def _attempts_above(c: httpx.AsyncClient, event_id: str, n: int) -> bool:
    return bool((await c.get(f"/callbacks/{event_id}")).json()["attempts"] > n)
