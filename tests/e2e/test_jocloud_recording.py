"""JOYY cloud recording end to end over raw HTTP, as the seed's clients call it: applyrecord ->
startrecord (mixed, template 2, two synthetic publishers) to S3 on loopback -> queryrecord ->
updatemixrecord (template 1) -> stoprecord -> queryrecord 4013; the HLS file plays at the requested
size and shows both layouts; each signed callback arrives once. Then a source stream recording and
every documented error code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roomcast.runtime import Runtime
from tests.api.conftest import Tenant, make_tenant
from tests.e2e.test_trtc_cloud_recording import publishers
from tests.support import avcheck
from tests.support.live import LiveServer, live_server
from tests.support.receiver import Receiver
from tests.support.s3 import MotoS3

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

ROOM = "joyroom"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto: MotoS3) -> Iterator[LiveServer]:
    settings = {"ice_host_addresses": ["127.0.0.1"], "s3_endpoint": moto.endpoint}
    with live_server(Path(tmp_path_factory.mktemp("joy")) / "var", **settings) as srv:
        yield srv


class Joy:
    """A JOYY client: plain HTTP with the documented headers."""

    def __init__(self, server: LiveServer, t: Tenant) -> None:
        self.base = f"{server.url}/app/{t.app.sdk_app_id}/v1/recordoss"
        basic = base64.b64encode(f"{t.creds.secret_id}:{t.creds.secret_key}".encode()).decode()
        self.headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "AppID": str(t.app.sdk_app_id),
            "Token": f"Basic {basic}",
        }
        self.appid = t.app.sdk_app_id
        self.n = 0
        self._sent: list[float] = []

    async def _pace(self) -> None:
        """Stay under the documented 10 calls per second per app, as a well-behaved client does
        (a fast machine otherwise meets the limit, 2105, in the error-case loops)."""
        loop = asyncio.get_running_loop()
        self._sent = [at for at in self._sent if loop.time() - at < 1.0]
        if len(self._sent) >= 8:
            await asyncio.sleep(1.0 - (loop.time() - self._sent[0]))
        self._sent.append(loop.time())

    async def post(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._pace()
        self.n += 1
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(
                f"{self.base}/{method}", json=body, headers=self.headers, params={"traceId": f"t{self.n}"}
            )
        data: dict[str, Any] = r.json()
        assert data["traceId"] == f"t{self.n}"
        assert r.status_code == (200 if data["code"] == 0 else 404), (r.status_code, data)
        return data

    async def get(self, path: str) -> dict[str, Any]:
        await self._pace()
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.get(f"{self.base}/{path}", headers=self.headers)
        data: dict[str, Any] = r.json()
        return data

    async def resid(self, room: str = ROOM) -> str:
        data = await self.post("applyrecord", {"appid": self.appid, "roomid": room})
        assert data["code"] == 0
        return str(data["resid"])


def storagecfg(bucket: str, vender: int = 0) -> dict[str, Any]:
    endpoints = {0: "oss-cn-hangzhou.aliyuncs.com", 1: "cos.ap-guangzhou.myqcloud.com", 2: "up-z0.qiniup.com"}
    return {
        "vender": vender,
        "endpoint": endpoints[vender],
        "bucket": bucket,
        "accesskey": "test-access",
        "secretkey": "test-secret",
        "fileprefix": ["joy", "day1"],
    }


OUTPUT = {
    "streamtype": 0,
    "videowidth": 640,
    "videoheight": 360,
    "videobitrate": 800,
    "videofps": 15,
    "videogop": 30,
    "videoencode": 100,
    "audiobitrate": 128,
    "audiosample": 48000,
    "audiochannel": 2,
    "audioformat": 2,
}


def start_body(joy: Joy, resid: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "resid": resid,
        "appid": joy.appid,
        "roomid": ROOM,
        "recordtype": 0,
        "streamtype": 1,
        "mixconfig": {"templateid": 2, "output": OUTPUT},
        "storagecfg": storagecfg(bucket),
        **extra,
    }


def download_hls(moto: MotoS3, bucket: str, playlist: str, dest: Path) -> Path:
    """The playlist's segments, concatenated into one MPEG-TS file (a valid stream)."""
    s3 = moto.client()
    text = s3.get_object(Bucket=bucket, Key=playlist)["Body"].read().decode()
    assert "#EXT-X-ENDLIST" in text
    folder = playlist.rsplit("/", 1)[0]
    segments = [line for line in text.splitlines() if line.endswith(".ts")]
    assert segments
    with dest.open("wb") as out:
        for seg in segments:
            out.write(s3.get_object(Bucket=bucket, Key=f"{folder}/{seg}")["Body"].read())
    return dest


async def wait_for(check: Any, limit: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_mixed_recording_to_s3(
    server: LiveServer, moto: MotoS3, receiver: Receiver, tmp_path: Path
) -> None:
    t = await asyncio.to_thread(make_tenant, server, "joymix")
    joy = Joy(server, t)
    bucket = moto.make_bucket()
    receiver.fail_next = 1  # one failed delivery: the outbox retries it
    async with publishers(server, t, ["u1", "u2"], room=ROOM):
        resid = await joy.resid()
        started = await joy.post("startrecord", start_body(joy, resid, bucket, callbackurl=receiver.url))
        assert started["code"] == 0 and started["message"] == "success", started
        record_id = started["recordid"]
        # One start per resid.
        again = await joy.post("startrecord", start_body(joy, resid, bucket))
        assert again["code"] == 4011
        await asyncio.sleep(2.5)
        q = await joy.get(f"queryrecord/{ROOM}/{record_id}")
        assert q["code"] == 0 and q["recordid"] == record_id
        assert q["data"]["recordid"] == record_id and q["data"]["roomid"] == ROOM
        assert q["data"]["appid"] == joy.appid and q["data"]["status"] == 1
        assert (
            q["data"]["createtime"] > 1_700_000_000_000 and q["data"]["starttime"] >= q["data"]["createtime"]
        )
        update = {
            "resid": resid,
            "appid": joy.appid,
            "roomid": ROOM,
            "recordid": record_id,
            "mixconfig": {"templateid": 1, "output": OUTPUT},
        }
        assert (await joy.post("updatemixrecord", update))["code"] == 0
        await asyncio.sleep(2.5)
        stop = {"resid": resid, "appid": joy.appid, "roomid": ROOM, "recordid": record_id}
        stopped = await joy.post("stoprecord", stop)
        assert stopped["code"] == 0 and stopped["recordid"] == record_id
        assert (await joy.post("stoprecord", stop))["code"] == 4013  # a second stop
        assert (await joy.get(f"queryrecord/{ROOM}/{record_id}"))["code"] == 4013

    def events() -> list[dict[str, Any]]:
        return [b for b in receiver.bodies() if b["recordid"] == record_id]

    async def finished() -> bool:
        return any(b["event"] == "upload_stop" for b in events())

    await wait_for(finished)
    mine = [r for r in receiver.requests if r.json()["recordid"] == record_id]
    for r in mine:  # signed with the secret of the key pair that started the recording
        expected = hmac.new(t.creds.secret_key.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["Signature"] == expected
        assert r.headers["SecretId"] == t.creds.secret_id and r.headers["AppID"] == str(joy.appid)
    ids = [r.json()["eventid"] for r in mine]
    assert len(ids) == len(set(ids))  # each event once
    names = sorted(b["event"] for b in events())
    assert names == sorted(["record_start", "upload_start", "file_upload", "record_stop", "upload_stop"])
    by_name = {b["event"]: b for b in events()}
    assert by_name["record_stop"]["data"] == {"reason": "stopped"}
    assert by_name["upload_stop"]["data"] == {"status": 0}
    f = by_name["file_upload"]["data"]
    assert f["filetype"] == "m3u8" and f["uid"] == "" and f["tracktype"] == "audio_video"
    assert f["filekey"].startswith(f"joy/day1/{record_id}/{ROOM}_mix_")
    assert f["fileurl"] == f"https://{bucket}.oss-cn-hangzhou.aliyuncs.com/{f['filekey']}"
    assert (f["width"], f["height"]) == (640, 360) and 4000 <= f["duration"] <= 8000
    assert all(b["appid"] == joy.appid and b["roomid"] == ROOM for b in events())

    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert f["filekey"] in keys and all(k.startswith(f"joy/day1/{record_id}/") for k in keys)
    ts = download_hls(moto, bucket, f["filekey"], tmp_path / "mix.ts")
    info = avcheck.probe(ts)
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 640, 360)
    assert info.audio.codec == "aac"
    assert info.video.duration is not None and 4.0 <= info.video.duration <= 7.5
    t0 = info.video.start_time or 0.0
    # Template 2 (vertical) first: u1 fills the top half, u2 the bottom one; template 1
    # (horizontal) later: u1 the left half, u2 the right one. The top-right and bottom-left
    # quarters tell the two apart.
    top_right, bottom_left = (360, 20, 240, 140), (40, 200, 240, 140)
    early = avcheck.region_users(ts, [top_right, bottom_left], ["u1", "u2"], at=t0 + 1.0)
    assert early == ["u1", "u2"]
    late = t0 + info.video.duration - 0.8
    assert avcheck.region_users(ts, [top_right, bottom_left], ["u1", "u2"], at=late) == ["u2", "u1"]


def _window(uid: str, room: str, x: int) -> dict[str, Any]:
    return {"uid": uid, "roomid": room, "streamtype": 0, "zOrder": 0, "layoutX": x, "layoutY": 0}


async def test_mix_with_a_user_of_another_room(server: LiveServer, moto: MotoS3, tmp_path: Path) -> None:
    """``input`` names u2 of another room of the app (the seed's startrecord example): u2's
    picture fills its window, and an updatemixrecord naming a room not started with is 4016."""
    t = await asyncio.to_thread(make_tenant, server, "joyrooms")
    joy = Joy(server, t)
    bucket = moto.make_bucket()
    other = f"{ROOM}-b"
    size = {"layoutW": 320, "layoutH": 360, "crop": 1}
    mix = {
        "input": [{**_window("u1", ROOM, 0), **size}, {**_window("u2", other, 320), **size}],
        "output": OUTPUT,
    }
    async with publishers(server, t, ["u1"], room=ROOM), publishers(server, t, ["u2"], room=other):
        resid = await joy.resid()
        started = await joy.post("startrecord", start_body(joy, resid, bucket, mixconfig=mix))
        assert started["code"] == 0, started
        record_id = started["recordid"]
        await asyncio.sleep(2.5)
        ids = {"resid": resid, "appid": joy.appid, "roomid": ROOM, "recordid": record_id}
        third = {**mix, "input": [*mix["input"], {**_window("u3", f"{ROOM}-c", 0), **size}]}
        assert (await joy.post("updatemixrecord", {**ids, "mixconfig": third}))["code"] == 4016
        assert (await joy.post("updatemixrecord", {**ids, "mixconfig": mix}))["code"] == 0
        assert (await joy.post("stoprecord", ids))["code"] == 0

    async def stored() -> bool:
        keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
        return any(k.endswith(".m3u8") for k in keys)

    await wait_for(stored)
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    (playlist,) = [k for k in keys if k.endswith(".m3u8")]
    ts = download_hls(moto, bucket, playlist, tmp_path / "rooms.ts")
    info = avcheck.probe(ts)
    assert info.video is not None and info.video.duration is not None
    at = (info.video.start_time or 0.0) + info.video.duration - 0.8
    halves = [(20, 20, 280, 320), (340, 20, 280, 320)]
    assert avcheck.region_users(ts, halves, ["u1", "u2"], at=at) == ["u1", "u2"]


async def test_source_stream_and_documented_errors(server: LiveServer, moto: MotoS3, tmp_path: Path) -> None:
    t = await asyncio.to_thread(make_tenant, server, "joyerr")
    other = await asyncio.to_thread(make_tenant, server, "joyother")
    joy, rival = Joy(server, t), Joy(server, other)
    bucket = moto.make_bucket()
    ids = {"appid": joy.appid, "roomid": ROOM}

    # 4012: an unknown resid, another app's resid, an expired one.
    assert (await joy.post("startrecord", start_body(joy, "nope", bucket)))["code"] == 4012
    foreign = await rival.resid()
    assert (await joy.post("startrecord", start_body(joy, foreign, bucket)))["code"] == 4012
    expired = await joy.resid()

    async def expire(rt: Runtime) -> None:
        from sqlalchemy import update

        from roomcast.store.tables import ReservationRow, utcnow

        async with rt.db.sessions.begin() as s:
            await s.execute(
                update(ReservationRow)
                .where(ReservationRow.reservation_id == expired)
                .values(expires_at=utcnow())
            )

    await asyncio.to_thread(server.run, expire)
    assert (await joy.post("startrecord", start_body(joy, expired, bucket)))["code"] == 4012
    elsewhere = await joy.resid("otherroom")  # applied for another room
    assert (await joy.post("startrecord", start_body(joy, elsewhere, bucket)))["code"] == 4012
    # 4005: nobody publishes in the room (the resid stays usable).
    resid = await joy.resid()
    assert (await joy.post("startrecord", start_body(joy, resid, bucket)))["code"] == 4005
    # 4013: unknown recordid (query, update, stop).
    assert (await joy.get(f"queryrecord/{ROOM}/no-such-record"))["code"] == 4013
    stop_unknown = {**ids, "resid": resid, "recordid": "no-such-record"}
    assert (await joy.post("stoprecord", stop_unknown))["code"] == 4013
    # 2101: missing or mistyped fields, a bad bucket.
    body = start_body(joy, resid, bucket)
    for broken in (
        {k: v for k, v in body.items() if k != "roomid"},
        {**body, "streamtype": 3},
        {**body, "storagecfg": {**storagecfg(bucket), "vender": 7}},
        {**body, "storagecfg": {**storagecfg(bucket), "fileprefix": ["a/b"]}},
        {k: v for k, v in body.items() if k != "mixconfig"},
        {**body, "streamtype": 2},  # a source stream recording needs a uid
        {**body, "callbackurl": "file:///etc/passwd"},
    ):
        assert (await joy.post("startrecord", broken))["code"] == 2101, broken
    # 4016: bad mixed stream parameters.
    for mix in (
        {"templateid": 9, "output": OUTPUT},
        {"templateid": 1, "input": [{"uid": "u1", "layoutX": 0, "layoutY": 0, "layoutW": 9, "layoutH": 9}]},
        {"templateid": 1, "output": {**OUTPUT, "videoencode": 101}},
        {"templateid": 1, "output": {**OUTPUT, "videowidth": 4000}},
        {"templateid": 1},
    ):
        assert (await joy.post("startrecord", {**body, "mixconfig": mix}))["code"] == 4016, mix

    async with publishers(server, t, ["u1"], room=ROOM):
        no_bucket = {**body, "storagecfg": storagecfg("no-such-bucket", vender=1)}
        assert (await joy.post("startrecord", no_bucket))["code"] == 2101
        single = {
            "resid": resid,
            **ids,
            "recordtype": 0,
            "streamtype": 2,
            "uid": "u1",
            "storagecfg": storagecfg(bucket, vender=2),
        }
        absent = await joy.post("startrecord", {**single, "uid": "nobody"})
        assert absent["code"] == 4005
        started = await joy.post("startrecord", single)  # the failed starts gave the resid back
        assert started["code"] == 0, started
        record_id = started["recordid"]
        assert (await joy.post("startrecord", single))["code"] == 4011
        # 4019: a source stream task has no mixed layout.
        update = {
            **ids,
            "resid": resid,
            "recordid": record_id,
            "mixconfig": {"templateid": 1, "output": OUTPUT},
        }
        assert (await joy.post("updatemixrecord", update))["code"] == 4019
        # A foreign or wrong-room recordid is 4013; a resid that did not start it is 4012.
        assert (await rival.get(f"queryrecord/{ROOM}/{record_id}"))["code"] == 4013
        assert (await joy.get(f"queryrecord/elsewhere/{record_id}"))["code"] == 4013
        stop = {**ids, "resid": resid, "recordid": record_id}
        assert (await rival.post("stoprecord", {**stop, "appid": rival.appid}))["code"] == 4013
        other_resid = await joy.resid()
        assert (await joy.post("stoprecord", {**stop, "resid": other_resid}))["code"] == 4012
        await asyncio.sleep(2.0)
        assert (await joy.post("stoprecord", stop))["code"] == 0

    async def stored() -> bool:
        keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
        return any(k.endswith(".m3u8") for k in keys)

    await wait_for(stored)
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    (playlist,) = [k for k in keys if k.endswith(".m3u8")]
    assert playlist.startswith(f"joy/day1/{record_id}/{ROOM}_u1_")
    info = avcheck.probe(download_hls(moto, bucket, playlist, tmp_path / "u1.ts"))
    assert info.video is not None and info.audio is not None
    assert (info.video.width, info.video.height) == (320, 180)  # the source's own size
    assert (await joy.post("stoprecord", stop))["code"] == 4013


def test_callback_body_is_documented() -> None:
    """The README documents every event name the builder sends."""
    from roomcast.api.jocloud.callbacks import EVENTS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in set(EVENTS.values()):
        assert f"`{name}`" in readme, name
