"""SparkRTC statistical analysis, A26-A37 (all GET), from :mod:`roomcast.stats`.

Rooms and users (A26, A27), real-time scale, distribution, quality and network per minute
(A28-A31), history usage, scale and quality per UTC day (A32-A34), client QoS series (A35) and
abnormal-experience events with their distribution (A36, A37). Values roomcast cannot know
(province, ISP, first-frame times) are left out rather than made up; the choices are listed in
docs/stats-status.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from roomcast.api.sparkrtc.apps import _app_ref
from roomcast.api.sparkrtc.errors import SparkError, invalid, missing
from roomcast.api.sparkrtc.gateway import SparkCaller, SparkRoute, authenticate
from roomcast.domain.tenancy import App
from roomcast.runtime import Runtime
from roomcast.stats.ledger import HOUR, UsageLedger
from roomcast.stats.queries import Sample, StatsQueries, regroup

DAY = timedelta(days=1)
MAX_LIMIT = 100
TYPE_DESC = {
    1: "It takes a long time to enter a room (longer than 5s).",
    2: "Video freezing",
    3: "Audio freezing",
}
# (what, cause) -> (abnormal_type, abnormal_factor, location)
_ABNORMAL: dict[tuple[str, str], tuple[int, int, str]] = {
    ("video_freeze", "uplink_loss"): (2, 12, "local"),
    ("audio_freeze", "uplink_loss"): (3, 11, "local"),
    ("video_freeze", "downlink_loss"): (2, 14, "remote"),
    ("audio_freeze", "downlink_loss"): (3, 13, "remote"),
    ("video_freeze", "no_frames"): (2, 21, "remote"),
    ("audio_freeze", "no_frames"): (3, 20, "remote"),
}
FACTOR_DESC = {
    11: "Uplink audio packet loss",
    12: "Uplink video packet loss",
    13: "Downlink audio packet loss",
    14: "Downlink video packet loss",
    16: "Others",
    20: "There is no downlink code stream on the local server.",
    21: "Downlink No Frame Rate of Local Server",
}


def _ok(body: dict[str, Any]) -> Response:
    return JSONResponse(body, status_code=200)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _param(request: Request, name: str, required: bool = False) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise invalid(f"{name} is given more than once")
    value = values[0] if values else None
    if required and not value:
        raise missing(name)
    if value is not None and len(value) > 256:
        raise invalid(f"{name} is too long")
    return value or None


def _list(request: Request, name: str, allowed: Iterable[str] | None, required: bool = False) -> list[str]:
    """A comma-separated (or repeated) parameter; ``allowed`` None takes any value."""
    raw = ",".join(request.query_params.getlist(name))
    items = [x for x in (p.strip() for p in raw.split(",")) if x]
    if required and not items:
        raise missing(name)
    if allowed is not None:
        choices = list(allowed)
        for x in items:
            if x not in choices:
                raise invalid(f"{name} must be among {', '.join(choices)}")
    return list(dict.fromkeys(items))


def _time(value: str, name: str) -> datetime:
    text = value.strip()
    try:
        if not text.endswith("Z") or "T" not in text:
            raise ValueError
        at = datetime.fromisoformat(text[:-1])
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        if not 1970 <= at.year <= 9998:
            raise ValueError
    except (ValueError, OverflowError):
        raise invalid(f"{name} must be a UTC time, YYYY-MM-DDThh:mm:ssZ") from None
    return at


def _window(
    request: Request, max_span: timedelta | None, required: bool = False
) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    s, e = _param(request, "start_time", required), _param(request, "end_time", required)
    end = _time(e, "end_time") if e else now
    start = _time(s, "start_time") if s else end - timedelta(hours=1)
    if end < start:
        raise invalid("end_time is before start_time")
    if max_span is not None and end - start > max_span:
        raise invalid(f"the period may not exceed {_span_text(max_span)}")
    return start, end


def _span_text(span: timedelta) -> str:
    return f"{span.days} days" if span.days > 1 else ("one day" if span >= DAY else f"{span}")


def _day(value: str | None, name: str, default: date) -> date:
    if value is None:
        return default
    try:
        if len(value) != 10:
            raise ValueError
        got = date.fromisoformat(value)
        if not 1970 <= got.year <= 9998:
            raise ValueError
        return got
    except ValueError:
        raise invalid(f"{name} must be a date, YYYY-MM-DD") from None


def _days(request: Request, required: bool, max_days: int, keys: tuple[str, str]) -> list[date]:
    yesterday = datetime.now(UTC).date() - DAY
    first = _day(_param(request, keys[0], required), keys[0], yesterday)
    last = _day(_param(request, keys[1], required), keys[1], yesterday)
    if last < first:
        raise invalid(f"{keys[1]} is before {keys[0]}")
    if (last - first).days + 1 > max_days:
        raise invalid(f"the period may not exceed {max_days} days")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = _param(request, name)
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        raise invalid(f"{name} must be an integer") from None
    if not low <= n <= high:
        raise invalid(f"{name} must be between {low} and {high}")
    return n


async def _app(request: Request, caller: SparkCaller, name: str = "app") -> App:
    rt: Runtime = request.app.state.runtime
    ref = _param(request, name, required=True) or ""
    return await rt.tenancy.get_app(_app_ref(ref), caller.account_id)


def _queries(request: Request) -> StatsQueries:
    rt: Runtime = request.app.state.runtime
    return StatsQueries(rt.db.sessions)


def _utc(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _rate(bad: int, total: int) -> float:
    return round(bad / total, 4) if total else 0.0


def _minutes(start: datetime, end: datetime) -> list[datetime]:
    first = start.replace(second=0, microsecond=0)
    if first < start:
        first += timedelta(minutes=1)
    out = []
    while first <= end:
        out.append(first)
        first += timedelta(minutes=1)
    return out


# Per-minute quality metrics: name -> (bad count, total count, "good" rate instead of "bad").
_QUALITY: dict[str, tuple[str, str, bool]] = {
    "VideoFreezeRate": ("video_frozen", "video_samples", False),
    "AudioFreezeRate": ("audio_frozen", "audio_samples", False),
    "VideoUpstreamExcellentTransRate": ("up_video_bad", "up_video_samples", True),
    "AudioUpstreamExcellentTransRate": ("up_audio_bad", "up_audio_samples", True),
    "VideoExcellentTransRate": ("video_frozen", "video_samples", True),
    "AudioExcellentTransRate": ("audio_frozen", "audio_samples", True),
}


def _quality_value(metric: str, c: dict[str, int]) -> float | None:
    if metric == "JoinSuccessRate":
        return _rate(c.get("joins_ok", 0), c["joins"]) if c.get("joins") else None
    if metric == "JoinSuccess5SecsRate":
        return _rate(c.get("joins_fast", 0), c["joins_timed"]) if c.get("joins_timed") else None
    bad, total, good = _QUALITY[metric]
    if not c.get(total, 0):
        return None
    rate = _rate(c.get(bad, 0), c[total])
    return round(1 - rate, 4) if good else rate


# -- A35 metric ids -> (sample kind, value, scale, direction: "up" / "down" / "both")
_QOS: dict[str, tuple[str, str, float, str]] = {
    "appcpu": ("client", "app_cpu", 1.0, "up"),
    "syscpu": ("client", "sys_cpu", 1.0, "up"),
    "abit": ("audio", "bitrate_bps", 0.001, "both"),
    "vbit": ("video", "bitrate_bps", 0.001, "up"),
    "dbit": ("video", "bitrate_bps", 0.001, "down"),
    "vfps": ("video", "fps", 1.0, "up"),
    "dfps": ("video", "fps", 1.0, "down"),
    "aloss": ("audio", "fraction_lost", 100.0, "both"),
    "vloss": ("video", "fraction_lost", 100.0, "up"),
    "dloss": ("video", "fraction_lost", 100.0, "down"),
    "vwidth": ("video", "width", 1.0, "up"),
    "vheight": ("video", "height", 1.0, "up"),
    "dwidth": ("video", "width", 1.0, "down"),
    "dheight": ("video", "height", 1.0, "down"),
    "ajitter": ("audio", "jitter_ms", 1.0, "both"),
    "artt": ("audio", "rtt_ms", 1.0, "both"),
    "vjitter": ("video", "jitter_ms", 1.0, "up"),
    "vrtt": ("video", "rtt_ms", 1.0, "up"),
    "djitter": ("video", "jitter_ms", 1.0, "down"),
    "drtt": ("video", "rtt_ms", 1.0, "down"),
    "vblock": ("client", "video_stall_ms", 1.0, "up"),
    "dblock": ("client", "video_stall_ms", 1.0, "down"),
}


def qos_series(user_id: str, samples: list[Sample], mids: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    by_kind: dict[str, list[tuple[Sample, str]]] = {}  # each sample's time formatted once
    for smp in samples:
        by_kind.setdefault(smp.kind, []).append((smp, _iso(smp.at)))
    for mid in mids:
        kind, name, scale, direction = _QOS[mid]
        per_peer: dict[str, list[dict[str, Any]]] = {}
        for smp, at in by_kind.get(kind, ()):
            if (direction == "up" and smp.peer) or (direction == "down" and not smp.peer):
                continue
            value = smp.values.get(name)
            if value is None:
                continue
            per_peer.setdefault(smp.peer or "0", []).append({"time": at, "value": round(value * scale, 3)})
        out += [{"uid": user_id, "peerid": peer, "mid": mid, "data": pts} for peer, pts in per_peer.items()]
    return out


def build_router() -> APIRouter:
    router = APIRouter(route_class=SparkRoute, tags=["sparkrtc"])

    @router.get("/v1/{project_id}/rtc/rooms")
    async def rooms(request: Request, project_id: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller)
        start, end = _window(request, timedelta(days=90))
        state = _param(request, "state")
        if state not in (None, "RUNNING", "CLOSED"):
            raise invalid("state must be RUNNING or CLOSED")
        limit, offset = _int(request, "limit", 10, 1, MAX_LIMIT), _int(request, "offset", 0, 0, 2**31)
        total, calls = await _queries(request).calls(
            str(app.sdk_app_id),
            start,
            end,
            room_id=_param(request, "room_id"),
            offset=offset,
            limit=limit,
            open_=None if state is None else state == "RUNNING",
        )
        now = datetime.now(UTC)
        host = request.url.hostname or ""
        return _ok(
            {
                "total": total,
                "limit": limit,
                "offset": offset,
                "room_info_list": [
                    {
                        "domain": host,
                        "app": app.app_id,
                        "room_id": c.room_id,
                        "state": "CLOSED" if c.closed_at else "RUNNING",
                        "duration": int((c.end(now) - c.opened_at).total_seconds()),
                        "start_time": _iso(c.opened_at),
                        "end_time": _iso(c.closed_at) if c.closed_at else "-",
                    }
                    for c in calls
                ],
            }
        )

    @router.get("/v1/{project_id}/rtc/users")
    async def users(request: Request, project_id: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller)
        start, end = _window(request, timedelta(days=90))
        states = _list(request, "state", ("FAIL", "ONLINE", "OFFLINE"))
        kind = _param(request, "type") or "summary"
        if kind not in ("summary", "detail"):
            raise invalid("type must be summary or detail")
        limit, offset = _int(request, "limit", 10, 1, MAX_LIMIT), _int(request, "offset", 0, 0, 2**31)
        # Province, ISP and nickname are not known to roomcast: filtering on them finds nobody.
        unknowable = any(_list(request, n, None) for n in ("region", "isp")) or _param(request, "nickname")
        wanted = {s for s in states if s != "FAIL"}  # refused joins are not recorded as users
        if unknowable or (states and not wanted):
            return _ok({"total": 0, "limit": limit, "offset": offset, "users": []})
        online = None if len(wanted) != 1 else "ONLINE" in wanted
        q = _queries(request)
        room_id, uid = _param(request, "room_id"), _param(request, "uid")
        if kind == "detail":
            total, rows = await q.app_sessions(
                str(app.sdk_app_id),
                start,
                end,
                room_id=room_id,
                user_id=uid,
                online=online,
                offset=offset,
                limit=limit,
            )
        else:  # one row per user and room: their latest session
            _, every = await q.app_sessions(
                str(app.sdk_app_id), start, end, room_id=room_id, user_id=uid, online=online, limit=None
            )
            latest = {(r.room_id, r.user_id): r for r in every}
            total, rows = len(latest), list(latest.values())[offset : offset + limit]
        host = request.url.hostname or ""
        return _ok(
            {
                "total": total,
                "limit": limit,
                "offset": offset,
                "users": [
                    {
                        "domain": host,
                        "app": app.app_id,
                        "room_id": r.room_id,
                        "uid": r.user_id,
                        "session": r.session_id,
                        "state": "OFFLINE" if r.left_at else "ONLINE",
                        "nick_name": "",
                        "ip": r.ip or "",
                        "region": "",
                        "isp": "",
                        "device_model": r.device_type or "",
                        "platform": r.os or "",
                        "sdk": r.sdk_version or "",
                        "join_time": _iso(r.joined_at),
                        "leave_time": _iso(r.left_at) if r.left_at else "-",
                    }
                    for r in rows
                ],
            }
        )

    @router.get("/v1/{project_id}/rtc/realtime/scale")
    async def realtime_scale(request: Request, project_id: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller)
        metric = _list(request, "metric", ("OnlineUsers", "RoomCount"), required=True)
        if len(metric) != 1:
            raise invalid("metric takes one value")
        start, end = _window(request, DAY)
        points = await _queries(request).present(
            str(app.sdk_app_id), _minutes(start, end), room_id=_param(request, "room_id")
        )
        return _ok(
            {
                "scale": [
                    {"time": _iso(p.at), "value": p.users if metric[0] == "OnlineUsers" else p.rooms}
                    for p in points
                ]
            }
        )

    @router.get("/v1/{project_id}/rtc/realtime/scale/dimension")
    async def realtime_dimension(request: Request, project_id: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller)
        _list(request, "metric", ("OnlineUsers",), required=True)
        dimension = _list(request, "dimension", ("region", "access_net", "platform", "sdk"), required=True)
        if len(dimension) != 1:
            raise invalid("dimension takes one value")
        at = _time(_param(request, "time", required=True) or "", "time")
        present = await _queries(request).present_sessions(
            str(app.sdk_app_id), at, room_id=_param(request, "room_id")
        )
        counts: dict[str, int] = defaultdict(int)
        for r in present:
            if dimension[0] == "region":
                key = "OT"  # roomcast does not locate addresses: "Others"
            else:
                value = {"access_net": r.network_type, "platform": r.os, "sdk": r.sdk_version}[dimension[0]]
                key = value or "unknown"
            counts[key] += 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return _ok({"dimensions": [{"dimension": k, "online_users": n} for k, n in ranked]})

    async def _per_minute(request: Request, project_id: str, allowed: tuple[str, ...], key: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller)
        metric = _list(request, "metric", allowed, required=True)
        if len(metric) != 1:
            raise invalid("metric takes one value")
        sdk_type = _param(request, "sdk_type", required=True)
        if sdk_type not in ("native", "webrtc"):
            raise invalid("sdk_type must be native or webrtc")
        start, end = _window(request, DAY)
        minutes = _minutes(start, end)
        if not minutes:
            return _ok({key: []})
        if metric[0] == "JoinSuccessRate":
            columns: tuple[str, ...] = ("joins", "joins_ok")
        elif metric[0] == "JoinSuccess5SecsRate":
            columns = ("joins_timed", "joins_fast")
        else:
            columns = _QUALITY[metric[0]][:2]
        buckets = await _queries(request).quality(
            str(app.sdk_app_id),
            "t",
            minutes[0],
            minutes[-1] + timedelta(minutes=1),
            room_id=_param(request, "room_id"),
            columns=columns,
        )
        out = []
        sums = regroup(buckets, [*minutes, minutes[-1] + timedelta(minutes=1)])
        for m, counts in zip(minutes, sums, strict=True):
            value = _quality_value(metric[0], counts)
            if value is not None:
                out.append({"time": _iso(m), "value": value})
        return _ok({key: out})

    @router.get("/v1/{project_id}/rtc/realtime/quality")
    async def realtime_quality(request: Request, project_id: str) -> Response:
        metrics = ("JoinSuccessRate", "JoinSuccess5SecsRate", "VideoFreezeRate", "AudioFreezeRate")
        return await _per_minute(request, project_id, metrics, "quality")

    @router.get("/v1/{project_id}/rtc/realtime/network")
    async def realtime_network(request: Request, project_id: str) -> Response:
        metrics = (
            "VideoUpstreamExcellentTransRate",
            "AudioUpstreamExcellentTransRate",
            "VideoExcellentTransRate",
            "AudioExcellentTransRate",
        )
        return await _per_minute(request, project_id, metrics, "network")

    @router.get("/v1/{project_id}/rtc/history/usage")
    async def history_usage(request: Request, project_id: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller)
        products = {
            "CommunicationDuration": ("rtc",),
            "TranscodeDuration": ("transcode",),
            "RecordDuration": ("record_single", "record_mixed"),
        }
        metric = _list(request, "metric", products, required=True)
        if len(metric) != 1:
            raise invalid("metric takes one value")
        days = _days(request, True, 366, ("start_date", "end_date"))
        per_day: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        rt: Runtime = request.app.state.runtime
        ledger = UsageLedger(rt.db.sessions)
        for product in products[metric[0]]:
            rows = await ledger.read(
                [str(app.sdk_app_id)], product, HOUR, _utc(days[0]), _utc(days[-1]) + DAY
            )
            for r in rows:
                tier = r.tier[:-4] if r.tier.endswith(("H264", "H265")) else r.tier
                per_day[r.start.date()][tier] += r.seconds
        out = []
        for d in days:
            t = per_day.get(d, {})
            sd, hd, audio = t.get("SD", 0.0), t.get("HD", 0.0), t.get("Audio", 0.0)
            hdp = t.get("FullHD", 0.0) + t.get("2K", 0.0) + t.get("4K", 0.0)
            parts = [round(x) for x in (sd, hd, hdp, audio)]
            out.append(
                {
                    "date": d.isoformat(),
                    "video_sd": parts[0],
                    "video_hd": parts[1],
                    "video_hdp": parts[2],
                    "audio": parts[3],
                    "total_duration": sum(parts),
                }
            )
        return _ok({"usage": out})

    @router.get("/v1/{project_id}/rtc/history/scale")
    async def history_scale(request: Request, project_id: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller)
        _list(
            request,
            "metric",
            (
                "UserCount",
                "SessionCount",
                "RoomCount",
                "MaxOnlineUserCount",
                "MaxOnlineRoomCount",
                "CommunicationDuration",
                "VideoCommunicationDuration",
                "AudioCommunicationDuration",
            ),
            required=True,
        )
        today = datetime.now(UTC).date()
        days = [d for d in _days(request, False, 31, ("start_date", "end_date")) if d < today]
        if not days:
            return _ok({"scale": []})
        edges = [_utc(d) for d in days] + [_utc(days[-1]) + DAY]
        points = await _queries(request).counts(str(app.sdk_app_id), edges, distinct_per_room=True)
        rt: Runtime = request.app.state.runtime
        rows = await UsageLedger(rt.db.sessions).read([str(app.sdk_app_id)], "rtc", HOUR, edges[0], edges[-1])
        audio: dict[date, float] = defaultdict(float)
        video: dict[date, float] = defaultdict(float)
        for r in rows:
            (audio if r.tier == "Audio" else video)[r.start.date()] += r.seconds
        return _ok(
            {
                "scale": [
                    {
                        "date": d.isoformat(),
                        "user_count": p.users,
                        "session_count": p.entries,
                        "room_count": p.rooms,
                        "max_online_user_count": p.peak_users,
                        "max_online_room_count": p.peak_rooms,
                        "communication_duration": round(audio[d] + video[d]),
                        "video_communication_duration": round(video[d]),
                        "audio_communication_duration": round(audio[d]),
                    }
                    for d, p in zip(days, points, strict=True)
                ]
            }
        )

    @router.get("/v1/{project_id}/rtc/history/quality")
    async def history_quality(request: Request, project_id: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller)
        fields = {
            "JoinSuccessRate": "join_success_rate",
            "JoinSuccess5SecsRate": "join_success_in5secs_rate",
            "VideoFreezeRate": "video_freeze_rate",
            "AudioFreezeRate": "audio_freeze_rate",
            "VideoUpstreamExcellentTransRate": "video_upstream_excellent_trans_rate",
            "AudioUpstreamExcellentTransRate": "audio_upstream_excellent_trans_rate",
            "VideoExcellentTransRate": "video_excellent_trans_rate",
            "AudioExcellentTransRate": "audio_excellent_trans_rate",
        }
        unmeasured = (
            "FirstVideoRecvTime",
            "FirstAudioRecvTime",
            "PullStreamSuccessRate",
            "PushStreamSuccessRate",
            "VideoTransDelay",
            "AudioTransDelay",
        )
        metrics = _list(request, "metric", (*fields, *unmeasured), required=True)
        today = datetime.now(UTC).date()
        days = [d for d in _days(request, False, 31, ("start_date", "end_date")) if d < today]
        if not days:
            return _ok({"quality": []})
        buckets = await _queries(request).quality(
            str(app.sdk_app_id), "h", _utc(days[0]), _utc(days[-1]) + DAY
        )
        out = []
        sums = regroup(buckets, [*(_utc(d) for d in days), _utc(days[-1]) + DAY])
        for d, counts in zip(days, sums, strict=True):
            row: dict[str, Any] = {"date": d.isoformat()}
            for m in metrics:
                if m in fields:
                    value = _quality_value(m, counts)
                    if value is not None:
                        row[fields[m]] = value
            out.append(row)
        return _ok({"quality": out})

    @router.get("/v1/{project_id}/rtc/client/qos/details")
    async def qos_details(request: Request, project_id: str) -> Response:
        caller = await authenticate(request, "stats", path_project_id=project_id)
        app = await _app(request, caller, "app_id")
        room_id = _param(request, "room_id", required=True) or ""
        mids = _list(request, "mid", (*_QOS, "all"), required=True)
        if "all" in mids:
            mids = list(_QOS)
        start, end = _window(request, DAY, required=True)
        if start < datetime.now(UTC) - timedelta(days=5):
            raise invalid("only the last five days can be queried")
        direction = _param(request, "direction")
        if direction not in (None, "uplink", "downlink"):
            raise invalid("direction must be uplink or downlink")
        user, peer = _param(request, "user_id"), _param(request, "peer_id")
        limit, offset = _int(request, "limit", MAX_LIMIT, 1, 1000), _int(request, "offset", 0, 0, 2**31)
        q = _queries(request)
        app_key = str(app.sdk_app_id)
        if user is not None:
            users = [user]
        else:
            _, sessions = await q.app_sessions(app_key, start, end, room_id=room_id, limit=None)
            users = list(dict.fromkeys(s.user_id for s in sessions))
        data: list[dict[str, Any]] = []
        for uid in users:
            if len(data) >= offset + limit:
                break  # the page is full: the other users' samples are not read
            series = qos_series(uid, await q.room_samples(app_key, room_id, uid, start, end), mids)
            for item in series:
                if peer is not None and item["peerid"] != peer:
                    continue
                if direction is not None and (item["peerid"] == "0") != (direction == "uplink"):
                    continue
                data.append(item)
        return _ok({"room_id": room_id, "data": data[offset : offset + limit]})

    def _abnormal_view(detail: dict[str, Any]) -> tuple[int, int, str, str]:
        what, cause = str(detail.get("what", "")), str(detail.get("cause", ""))
        t, factor, location = _ABNORMAL.get((what, cause), (2 if what == "video_freeze" else 3, 16, "local"))
        return t, factor, location, str(detail.get("peer_id") or "") if location == "remote" else ""

    @router.get("/v1/rtc/data/abnormal-events")
    async def abnormal_events(request: Request) -> Response:
        caller = await authenticate(request, "stats")
        app = await _app(request, caller)
        start, end = _window(request, DAY)
        limit, offset = _int(request, "limit", 10, 1, MAX_LIMIT), _int(request, "offset", 0, 0, 2**31)
        total, events = await _queries(request).abnormal(
            str(app.sdk_app_id),
            start,
            end,
            room_id=_param(request, "room_id"),
            user_id=_param(request, "uid"),
            offset=offset,
            limit=limit,
        )
        out = []
        for e in events:
            t, factor, location, peer = _abnormal_view(e.detail)
            out.append(
                {
                    "time": _iso(e.at),
                    "uid": e.user_id,
                    "room_id": e.room_id,
                    "stage": "communication",
                    "location": location,
                    "peer_uid": peer,
                    "abnormal_type": t,
                    "abnormal_type_desc": TYPE_DESC[t],
                    "abnormal_factor": factor,
                    "abnormal_factor_desc": FACTOR_DESC.get(factor, "Others"),
                }
            )
        return _ok({"total": total, "events": out})

    @router.get("/v1/rtc/data/abnormal-event/dimension")
    async def abnormal_dimension(request: Request) -> Response:
        caller = await authenticate(request, "stats")
        app = await _app(request, caller)
        start, end = _window(request, DAY)
        by = _list(request, "dimension", ("abnormal_type", "abnormal_factor")) or [
            "abnormal_type",
            "abnormal_factor",
        ]
        _, events = await _queries(request).abnormal(
            str(app.sdk_app_id), start, end, room_id=_param(request, "room_id"), limit=None
        )
        users: dict[tuple[int | None, int | None], set[tuple[str, str]]] = defaultdict(set)
        for e in events:
            t, factor, _, _ = _abnormal_view(e.detail)
            key = (t if "abnormal_type" in by else None, factor if "abnormal_factor" in by else None)
            users[key].add((e.room_id, e.user_id))
        out = []
        for (kind, cause), who in sorted(users.items(), key=lambda kv: (-len(kv[1]), str(kv[0]))):
            item: dict[str, Any] = {"user_count": len(who)}
            if kind is not None:
                item |= {"abnormal_type": kind, "abnormal_type_desc": TYPE_DESC[kind]}
            if cause is not None:
                item |= {"abnormal_factor": cause, "abnormal_factor_desc": FACTOR_DESC.get(cause, "Others")}
            out.append(item)
        return _ok({"dimensions": out})

    return router


__all__ = ["SparkError", "build_router", "qos_series"]
