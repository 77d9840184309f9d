"""Statistics APIs over weeks of data: fill, measure storage, time every API.

Starts a server in-process on 127.0.0.1 (its own temporary data directory, SQLite unless
``--database-url`` names a PostgreSQL database), then fills what ``--days`` of ``--rooms``
concurrent rooms of ``--users`` users leave behind, the way the recorders write it:

* calls of ``--call-hours`` each, user sessions of one hour with their events (joined,
  published audio and camera, left), client device rows;
* usage buckets (a minute and an hour row per room and tier: three tiers in use) and quality
  buckets (a 10 s and an hour row per room);
* raw per-track samples (``track_samples``: per room and tick, 6 x 2 published tracks and
  6 x 5 x 2 subscriptions, every ``--interval`` s) for the last ``--raw-minutes`` only: filling
  14 days of them (62 M rows a day at 50 rooms x 6 users) would take hours; the per-user queries
  read them through ``(app, room, user, time)`` indexes, so their cost does not grow with older rows.

It prints the rows and bytes per table (SQLite: from ``dbstat``), the storage a day of this
traffic takes (raw samples extrapolated to a full day), then the median and worst time of each
TRTC and SparkRTC statistics API over ``--repeat`` calls through the official SDKs, with the
largest windows the APIs allow: the server's own time (from its request log) and, in brackets,
the time the SDK call took (signing, HTTP and the SDK's decoding of the answer included).

Run: ``PYTHONPATH=src .venv/bin/python bench/stats.py [--days 14] [--rooms 50] [--raw-minutes 30]``
(a few minutes on SQLite).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huaweicloudsdkcloudrtc.v1 import (
    CloudRTCClient,
    ListRtcAbnormalEventDimensionRequest,
    ListRtcAbnormalEventsRequest,
    ListRtcClientQosDetailsRequest,
    ListRtcHistoryQualityRequest,
    ListRtcHistoryScaleRequest,
    ListRtcHistoryUsageRequest,
    ListRtcRealtimeNetworkRequest,
    ListRtcRealtimeQualityRequest,
    ListRtcRealtimeScaleDimensionRequest,
    ListRtcRealtimeScaleRequest,
    ListRtcRoomListRequest,
    ListRtcUserListRequest,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from sqlalchemy import Table, insert, text
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import trtc_client
from tests.api.conftest import Tenant
from tests.support.live import LiveServer, live_server

from roomcast.runtime import Runtime
from roomcast.stats.queries import room_number
from roomcast.store.tables import (
    ClientInfoRow,
    QualityBucketRow,
    RoomEventRow,
    RoomSessionRow,
    ScaleMarkRow,
    TrackSampleRow,
    UsageBucketRow,
    UserSessionRow,
)

CHUNK = 5000
TIERS = (("Audio", 2 * 60.0), ("SD", 2 * 60.0), ("HD", 2 * 60.0))  # seconds per minute per room


class _Unlimited:
    async def allow(self, *args: object, **kwargs: object) -> bool:
        return True


def _t(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def _bulk(rt: Runtime, model: Any, rows: Iterator[dict[str, Any]]) -> int:
    n = 0
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            async with rt.db.sessions.begin() as s:
                await s.execute(insert(_t(model)), batch)
            n += len(batch)
            batch = []
    if batch:
        async with rt.db.sessions.begin() as s:
            await s.execute(insert(_t(model)), batch)
        n += len(batch)
    return n


def fill(srv: LiveServer, app: str, args: argparse.Namespace) -> dict[str, int]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(days=args.days)
    rooms = [str(8000 + i) for i in range(args.rooms)]
    counts: dict[str, int] = {}

    def calls() -> Iterator[dict[str, Any]]:
        for room in rooms:
            at = start
            while at < now:
                end = min(at + timedelta(hours=args.call_hours), now)
                yield {
                    "app_key": app,
                    "room_id": room,
                    "opened_at": at,
                    "closed_at": end if end < now else None,
                }
                at = end

    def sessions() -> Iterator[dict[str, Any]]:
        for room in rooms:
            at = start
            while at < now:
                end = at + timedelta(hours=1)
                for u in range(args.users):
                    yield {
                        "session_id": f"{room}-{u}-{int(at.timestamp())}",
                        "app_key": app,
                        "room_id": room,
                        "user_id": f"user{u}",
                        "hidden": False,
                        "ip": "10.0.0.1",
                        "user_agent": "bench",
                        "joined_at": at + timedelta(seconds=u),
                        "left_at": end if end < now else None,
                        "leave_reason": "left" if end < now else None,
                    }
                at = end

    def marks() -> Iterator[dict[str, Any]]:
        """The scale marks the statistics recorder writes for these calls and sessions: each user
        and call in every hour it was present, entries in the hour of the join."""
        hour = timedelta(hours=1)
        floor = lambda t: t.replace(minute=0, second=0, microsecond=0)  # noqa: E731
        got: dict[tuple[datetime, str, str, str], int] = {}
        spans = [("u", r["room_id"], r["user_id"], r["joined_at"], r["left_at"]) for r in sessions()]
        spans += [
            ("c", r["room_id"], r["opened_at"].isoformat(), r["opened_at"], r["closed_at"]) for r in calls()
        ]
        for kind, room, subject, a, b in spans:
            h = floor(a)
            while h <= floor(b or now):
                got.setdefault((h, kind, room, subject), 0)
                h += hour
            if kind == "u":
                got[(floor(a), kind, room, subject)] += 1
        for (h, kind, room, subject), entries in got.items():
            yield {
                "app_key": app,
                "start": h,
                "kind": kind,
                "room_id": room,
                "subject": subject,
                "entries": entries,
            }

    def events() -> Iterator[dict[str, Any]]:
        for room in rooms:
            at = start
            while at < now:
                for u in range(args.users):
                    for n, (kind, when) in enumerate(
                        [
                            ("participant_joined", at),
                            ("track_published", at + timedelta(seconds=2)),
                            ("track_published", at + timedelta(seconds=2)),
                            ("participant_left", at + timedelta(hours=1)),
                        ]
                    ):
                        if when < now:
                            yield {
                                "event_id": uuid.uuid4().hex,
                                "app_key": app,
                                "room_id": room,
                                "user_id": f"user{u}",
                                "type": kind,
                                "detail": '{"kind": "%s"}' % ("camera" if n == 2 else "audio"),
                                "at": when,
                            }
                at += timedelta(hours=1)

    def usage() -> Iterator[dict[str, Any]]:
        def row(room: str, span: str, at: datetime, tier: str, seconds: float) -> dict[str, Any]:
            return {
                "app_key": app,
                "room_id": room,
                "product": "rtc",
                "span": span,
                "start": at,
                "tier": tier,
                "seconds": seconds,
            }

        at = start
        while at < now:
            for tier, seconds in TIERS:
                for room in rooms:
                    yield row(room, "m", at, tier, seconds)
                    if at.minute == 0:
                        yield row(room, "h", at, tier, seconds * 60)
                yield row("", "M", at, tier, seconds * len(rooms))  # the app-wide rows
                if at.minute == 0:
                    yield row("", "H", at, tier, seconds * 60 * len(rooms))
            at += timedelta(minutes=1)

    def quality() -> Iterator[dict[str, Any]]:
        per_10s = {"video_samples": 60, "video_frozen": 1, "audio_samples": 60, "audio_frozen": 0}
        base = dict.fromkeys(
            [
                "rtt_samples",
                "rtt_high",
                "up_video_samples",
                "up_video_bad",
                "up_audio_samples",
                "up_audio_bad",
                "joins",
                "joins_ok",
                "joins_timed",
                "joins_fast",
            ],
            0,
        )
        hour = {k: v * 360 for k, v in per_10s.items()}
        everyone = {k: v * len(rooms) for k, v in per_10s.items()}
        at = start
        while at < now:
            for room in rooms:
                yield {"app_key": app, "room_id": room, "span": "t", "start": at, **base, **per_10s}
                if at.minute == 0 and at.second == 0:
                    yield {"app_key": app, "room_id": room, "span": "h", "start": at, **base, **hour}
            yield {"app_key": app, "room_id": "", "span": "T", "start": at, **base, **everyone}
            if at.minute == 0 and at.second == 0:
                all_hour = {k: v * 360 for k, v in everyone.items()}
                yield {"app_key": app, "room_id": "", "span": "H", "start": at, **base, **all_hour}
            at += timedelta(seconds=10)

    def samples() -> Iterator[dict[str, Any]]:
        blank = dict.fromkeys(
            ["subscriber_id", "bitrate_bps", "packets_lost", "fraction_lost", "jitter_ms", "rtt_ms", "fps"]
        )
        at = now - timedelta(minutes=args.raw_minutes)
        while at < now:
            for room in rooms:
                for u in range(args.users):
                    user = f"user{u}"
                    for kind in ("audio", "camera"):
                        video = kind == "camera"
                        common = {
                            **blank,
                            "app_key": app,
                            "room_id": room,
                            "user_id": user,
                            "track_id": f"{user}/{kind}",
                            "kind": kind,
                            "at": at,
                            "interval_s": args.interval,
                            "bitrate_bps": 500_000.0 if video else 32_000.0,
                            "fps": 15.0 if video else None,
                            "width": 640 if video else None,
                            "height": 360 if video else None,
                            "jitter_ms": 3.0,
                        }
                        yield {**common, "direction": "in", "fraction_lost": 0.0, "packets_lost": 0}
                        for v in range(args.users):
                            if v != u:
                                yield {
                                    **common,
                                    "direction": "out",
                                    "subscriber_id": f"user{v}",
                                    "fraction_lost": 0.0,
                                    "rtt_ms": 20.0,
                                }
            at += timedelta(seconds=args.interval)

    async def run(rt: Runtime) -> None:
        for name, model, rows in (
            ("room_sessions", RoomSessionRow, calls()),
            ("user_sessions", UserSessionRow, sessions()),
            ("room_events", RoomEventRow, events()),
            ("usage_buckets", UsageBucketRow, usage()),
            ("quality_buckets", QualityBucketRow, quality()),
            ("scale_marks", ScaleMarkRow, marks()),
            ("track_samples", TrackSampleRow, samples()),
        ):
            started = time.perf_counter()
            counts[name] = await _bulk(rt, model, rows)
            print(
                f"  filled {name:<16} {counts[name]:>10,} rows in {time.perf_counter() - started:6.1f} s",
                flush=True,
            )
        async with rt.db.sessions.begin() as s:
            await s.execute(
                insert(_t(ClientInfoRow)),
                [{"session_id": f"{r}-0-x", "device_type": "pc", "updated_at": now} for r in rooms],
            )
            if rt.db.engine.dialect.name == "sqlite":
                await s.execute(text("ANALYZE"))

    srv.run(run)
    return counts


def sizes(srv: LiveServer) -> dict[str, int]:
    async def run(rt: Runtime) -> dict[str, int]:
        async with rt.db.sessions() as s:
            if rt.db.engine.dialect.name == "sqlite":
                try:
                    rows = (await s.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))).all()
                except Exception:
                    return {}
                return {str(n): int(b) for n, b in rows}
            rows = (
                await s.execute(
                    text(
                        "SELECT relname, pg_total_relation_size(relid) FROM pg_catalog.pg_statio_user_tables"
                    )
                )
            ).all()
            return {str(n): int(b) for n, b in rows}

    return srv.run(run)


class _ServerTimes(logging.Handler):
    """The server's own time per request (its "request" log event), without the SDK's work."""

    def __init__(self) -> None:
        super().__init__()
        self.last: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None)
        if record.getMessage() == "request" and isinstance(fields, dict):
            self.last = float(fields.get("ms") or 0.0)


SERVER = _ServerTimes()


def timed(name: str, fn: Callable[[], Any], repeat: int, results: list[tuple[str, float, float]]) -> None:
    spent, server = [], []
    for _ in range(repeat):
        SERVER.last = None
        started = time.perf_counter()
        fn()
        spent.append((time.perf_counter() - started) * 1000)
        for _ in range(100):  # the log line follows the answer
            if SERVER.last is not None:
                break
            time.sleep(0.005)
        server.append(SERVER.last or 0.0)
    results.append((name, statistics.median(server), max(server)))
    print(
        f"  {name:<44} server median {statistics.median(server):7.1f} ms  worst {max(server):7.1f} ms"
        f"   (with the SDK: {statistics.median(spent):7.1f} ms)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--call-hours", type=int, default=4)
    parser.add_argument("--interval", type=float, default=5.0, help="stats_interval_s of the raw samples")
    parser.add_argument("--raw-minutes", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    settings: dict[str, Any] = {"ice_host_addresses": ["127.0.0.1"], "retention_interval_s": 10**6}
    if args.database_url:
        settings["database_url"] = args.database_url
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "var", **settings) as srv:

        async def setup(rt: Runtime) -> Tenant:
            creds = await rt.tenancy.create_account("bench")
            return Tenant(creds, await rt.tenancy.create_app(creds.account_id, "stats"))

        tenant = srv.run(setup)
        srv.app.state.limiter.allow = _Unlimited().allow
        http_log = logging.getLogger("roomcast.http")
        http_log.addHandler(SERVER)
        http_log.setLevel(logging.INFO)
        app = str(tenant.app.sdk_app_id)
        print(
            f"filling {args.days} days of {args.rooms} rooms x {args.users} users"
            f" ({srv.settings.resolved_database_url.split(':')[0]})"
        )
        before = sizes(srv)
        counts = fill(srv, app, args)
        after = sizes(srv)
        if after:
            print("\nstorage (table with its indexes):")
            per_day = 0.0
            for table, rows in counts.items():
                grown = sum(
                    v - before.get(k, 0)
                    for k, v in after.items()
                    if k == table or k.startswith(("ix_" + table, "sqlite_autoindex_" + table))
                )
                if table == "track_samples":
                    ticks_per_day = 86400 / args.interval
                    day_rows = ticks_per_day * args.rooms * args.users * 2 * args.users
                    day = grown / max(rows, 1) * day_rows
                else:
                    day = grown / args.days
                per_day += day
                print(
                    f"  {table:<16} {rows:>10,} rows {grown / 2**20:9.1f} MiB"
                    f"  {grown / max(rows, 1):6.0f} B/row  {day / 2**20:9.1f} MiB/day"
                )
            print(
                f"  total per day of this traffic: {per_day / 2**30:.2f} GiB"
                f" (raw samples at {args.interval:g} s dominate)"
            )

        prof = ClientProfile(httpProfile=HttpProfile(endpoint=srv.endpoint, protocol="http", reqTimeout=120))
        sdk = trtc_client.TrtcClient(
            credential.Credential(tenant.creds.secret_id, tenant.creds.secret_key), "ap-guangzhou", prof
        )
        creds = BasicCredentials(tenant.creds.secret_id, tenant.creds.secret_key, tenant.creds.project_id)
        spark = CloudRTCClient.new_builder().with_credentials(creds).with_endpoints([srv.url]).build()
        now = int(time.time())
        aid = int(app)
        room = "8000"
        opened = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=args.days)
        hours_in = int((now - opened.timestamp()) // 3600 // args.call_hours * args.call_hours)
        comm = f"{app}_{room_number(room)}_{int(opened.timestamp()) + hours_in * 3600}"
        today = datetime.now(UTC).date()
        d = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
        iso = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731

        def call(action: str, body: dict[str, Any]) -> Callable[[], Any]:
            return lambda: sdk.call_json(action, body)

        results: list[tuple[str, float, float]] = []
        print(f"\nTRTC (largest windows; CommId {comm}):")
        for name, fn in [
            (
                "DescribeRoomInfo 24 h, 100 per page",
                call(
                    "DescribeRoomInfo",
                    {"SdkAppId": aid, "StartTime": now - 86400, "EndTime": now, "PageSize": 100},
                ),
            ),
            (
                "DescribeUserInfo 4 h, 100 per page",
                call(
                    "DescribeUserInfo",
                    {
                        "SdkAppId": aid,
                        "CommId": comm,
                        "StartTime": now - 4 * 3600,
                        "EndTime": now,
                        "PageSize": 100,
                        "PageNumber": 0,
                    },
                ),
            ),
            (
                "DescribeCallDetailInfo 1 h, 6 users, all",
                call(
                    "DescribeCallDetailInfo",
                    {
                        "SdkAppId": aid,
                        "CommId": comm,
                        "StartTime": now - 3600,
                        "EndTime": now,
                        "DataType": ["all"],
                        "PageSize": 6,
                        "PageNumber": 0,
                    },
                ),
            ),
            (
                "DescribeUserEvent",
                call(
                    "DescribeUserEvent",
                    {
                        "SdkAppId": aid,
                        "CommId": comm,
                        "RoomId": room,
                        "UserId": "user0",
                        "StartTime": now - 86400,
                        "EndTime": now,
                    },
                ),
            ),
            (
                "DescribeScaleInfo 14 days",
                call("DescribeScaleInfo", {"SdkAppId": aid, "StartTime": now - 13 * 86400, "EndTime": now}),
            ),
            (
                "DescribeTRTCRealTimeScaleData 1 h",
                call(
                    "DescribeTRTCRealTimeScaleData",
                    {"SdkAppId": app, "StartTime": now - 3600, "EndTime": now},
                ),
            ),
            (
                "DescribeTRTCRealTimeQualityData 12 h",
                call(
                    "DescribeTRTCRealTimeQualityData",
                    {"SdkAppId": app, "StartTime": now - 12 * 3600, "EndTime": now},
                ),
            ),
            (
                "DescribeTRTCMarketScaleData 14 d by hour",
                call(
                    "DescribeTRTCMarketScaleData",
                    {"SdkAppId": app, "StartTime": d(13), "EndTime": d(0), "Period": "h"},
                ),
            ),
            (
                "DescribeTRTCMarketQualityData 14 d by hour",
                call(
                    "DescribeTRTCMarketQualityData",
                    {"SdkAppId": app, "StartTime": d(13), "EndTime": d(0), "Period": "h"},
                ),
            ),
            (
                "DescribeTrtcUsage 31 days",
                call("DescribeTrtcUsage", {"SdkAppId": aid, "StartTime": d(30), "EndTime": d(0)}),
            ),
            (
                "DescribeTrtcUsage 1 day (5 min)",
                call("DescribeTrtcUsage", {"SdkAppId": aid, "StartTime": d(1), "EndTime": d(1)}),
            ),
            (
                "DescribeRecordingUsage 31 days",
                call(
                    "DescribeRecordingUsage",
                    {"SdkAppId": aid, "StartTime": d(30), "EndTime": d(0), "MixType": "single"},
                ),
            ),
            (
                "DescribeMixTranscodingUsage 31 days",
                call("DescribeMixTranscodingUsage", {"SdkAppId": aid, "StartTime": d(30), "EndTime": d(0)}),
            ),
            (
                "DescribeRelayUsage 31 days",
                call("DescribeRelayUsage", {"SdkAppId": aid, "StartTime": d(30), "EndTime": d(0)}),
            ),
            (
                "DescribeTrtcRoomUsage 24 h",
                call(
                    "DescribeTrtcRoomUsage",
                    {"SdkAppid": aid, "StartTime": f"{d(1)} 00:00", "EndTime": f"{d(0)} 00:00"},
                ),
            ),
        ]:
            timed(name, fn, args.repeat, results)

        w = {"start_time": iso(now - 86400), "end_time": iso(now)}
        a = tenant.app.app_id
        print("\nSparkRTC:")
        for name, fn in [
            (
                "A26 rooms 1 day",
                lambda: spark.list_rtc_room_list(ListRtcRoomListRequest(app=a, limit=100, **w)),
            ),
            (
                "A27 users 1 day, detail",
                lambda: spark.list_rtc_user_list(
                    ListRtcUserListRequest(app=a, type="detail", limit=100, **w)
                ),
            ),
            (
                "A27 users 1 day, summary",
                lambda: spark.list_rtc_user_list(ListRtcUserListRequest(app=a, limit=100, **w)),
            ),
            (
                "A28 realtime scale 1 day",
                lambda: spark.list_rtc_realtime_scale(
                    ListRtcRealtimeScaleRequest(app=a, metric="OnlineUsers", **w)
                ),
            ),
            (
                "A29 realtime dimension",
                lambda: spark.list_rtc_realtime_scale_dimension(
                    ListRtcRealtimeScaleDimensionRequest(
                        app=a, metric="OnlineUsers", dimension="sdk", time=iso(now - 60)
                    )
                ),
            ),
            (
                "A30 realtime quality 1 day",
                lambda: spark.list_rtc_realtime_quality(
                    ListRtcRealtimeQualityRequest(app=a, metric="VideoFreezeRate", sdk_type="native", **w)
                ),
            ),
            (
                "A31 realtime network 1 day",
                lambda: spark.list_rtc_realtime_network(
                    ListRtcRealtimeNetworkRequest(
                        app=a, metric="VideoExcellentTransRate", sdk_type="native", **w
                    )
                ),
            ),
            (
                "A32 history usage 31 days",
                lambda: spark.list_rtc_history_usage(
                    ListRtcHistoryUsageRequest(
                        app=a, metric="CommunicationDuration", start_date=d(30), end_date=d(0)
                    )
                ),
            ),
            (
                "A33 history scale 14 days",
                lambda: spark.list_rtc_history_scale(
                    ListRtcHistoryScaleRequest(app=a, metric=["UserCount"], start_date=d(13), end_date=d(1))
                ),
            ),
            (
                "A34 history quality 14 days",
                lambda: spark.list_rtc_history_quality(
                    ListRtcHistoryQualityRequest(
                        app=a, metric=["VideoFreezeRate", "AudioFreezeRate"], start_date=d(13), end_date=d(1)
                    )
                ),
            ),
            (
                "A35 client QoS 1 h, all",
                lambda: spark.list_rtc_client_qos_details(
                    ListRtcClientQosDetailsRequest(
                        app_id=a, room_id=room, mid="all", start_time=iso(now - 3600), end_time=iso(now)
                    )
                ),
            ),
            (
                "A36 abnormal events 1 day",
                lambda: spark.list_rtc_abnormal_events(ListRtcAbnormalEventsRequest(app=a, limit=100, **w)),
            ),
            (
                "A37 abnormal distribution 1 day",
                lambda: spark.list_rtc_abnormal_event_dimension(
                    ListRtcAbnormalEventDimensionRequest(app=a, **w)
                ),
            ),
        ]:
            timed(name, fn, args.repeat, results)
        slow = [r for r in results if r[1] > 200]
        print(f"\n{len(results)} APIs timed; median above 200 ms: {', '.join(r[0] for r in slow) or 'none'}")


if __name__ == "__main__":
    main()
