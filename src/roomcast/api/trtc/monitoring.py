"""TRTC call-quality monitoring and dashboard actions (part B section 1, part A section 3.3).

DescribeRoomInfo, DescribeUserInfo, DescribeUserEvent, DescribeCallDetailInfo, DescribeScaleInfo,
DescribeTRTCRealTimeScaleData, DescribeTRTCRealTimeQualityData, DescribeTRTCMarketScaleData and
DescribeTRTCMarketQualityData, answered from :mod:`roomcast.stats` (what the server measured and
what clients reported). Choices where the documents leave room are in docs/stats-status.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.params import Params
from roomcast.stats.queries import Call, EventRecord, Sample, SessionRecord, StatsQueries, regroup

HOUR = 3600
MAX_TS = 253_402_214_400  # 9999-12-31: later times do not fit a date
DAY = 86400
MAX_DETAIL_USERS = 6
MAX_PAGE = 100


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _queries(ctx: ActionContext) -> StatsQueries:
    return StatsQueries(ctx.runtime.db.sessions)


def _history_days(ctx: ActionContext) -> float:
    days = float(ctx.runtime.settings.retention_samples_days)
    return days if days > 0 else 14.0


def _window(
    ctx: ActionContext, start: int | None, end: int | None, max_s: int | None
) -> tuple[datetime, datetime]:
    """The documented checks of a Unix-seconds window in the queryable history."""
    if start is None:
        raise TrtcError("MissingParameter.StartTs", "startTS_s is missing.")
    if end is None:
        raise TrtcError("MissingParameter.EndTs", "endTS_s is missing.")
    now = time.time()
    if start <= 0 or start > now + DAY:
        raise TrtcError("InvalidParameter.StartTs", "`StartTime` is not a valid Unix time in seconds.")
    if end <= 0 or end < start or end > MAX_TS:
        raise TrtcError("InvalidParameter.EndTs", "`EndTime` must be a Unix time not before `StartTime`.")
    if start < now - _history_days(ctx) * DAY:
        raise TrtcError(
            "InvalidParameter.StartTsOversize",
            f"The start time for query exceeded the limit: only the last {_history_days(ctx):g} days.",
        )
    if max_s is not None and end - start > max_s:
        raise TrtcError(
            "InvalidParameter.QueryScaleOversize",
            f"The query period exceeds the limit ({max_s // HOUR} hours).",
        )
    return _dt(start), _dt(end)


def _page(number: int | None, size: int | None, default: int, maximum: int) -> tuple[int, int]:
    if number is not None and number < 0:
        raise TrtcError("InvalidParameter.PageNumber", "`PageNumber` must be 0 or more.")
    if size is not None and size > maximum:
        raise TrtcError("InvalidParameter.PageSizeOversize", f"The value of PageSize exceeds {maximum}.")
    if size is not None and size < 1:
        raise TrtcError("InvalidParameter.PageSize", "`PageSize` must be 1 or more.")
    if number is None or size is None:
        return 0, default
    return number * size, size


async def _call(ctx: ActionContext, sdk_app_id: int, comm_id: str | None) -> Call | None:
    if comm_id is None:
        raise TrtcError("MissingParameter.CommId", "The request is missing a required parameter `CommId`.")
    if not comm_id:
        raise TrtcError("InvalidParameter", "`CommId` is empty.")
    return await _queries(ctx).find_call(str(sdk_app_id), comm_id)


# -- DescribeRoomInfo ---------------------------------------------------------------------------------
class DescribeRoomInfoParams(Params):
    SdkAppId: int
    StartTime: int | None = None
    EndTime: int | None = None
    RoomId: str | None = None
    PageNumber: int | None = None
    PageSize: int | None = None


async def describe_room_info(ctx: ActionContext, p: DescribeRoomInfoParams) -> dict[str, Any]:
    await ctx.app(p.SdkAppId)
    start, end = _window(ctx, p.StartTime, p.EndTime, 24 * HOUR)
    offset, limit = _page(p.PageNumber, p.PageSize, 10, MAX_PAGE)
    total, calls = await _queries(ctx).calls(
        str(p.SdkAppId), start, end, room_id=p.RoomId or None, offset=offset, limit=limit
    )
    now = int(time.time())
    return {
        "Total": total,
        "RoomList": [
            {
                "CommId": c.comm_id,
                "RoomString": c.room_id,
                "CreateTime": int(c.opened_at.timestamp()),
                "DestroyTime": int(c.closed_at.timestamp()) if c.closed_at else now,
                "IsFinished": c.closed_at is not None,
                "UserId": c.creator or "",
            }
            for c in calls
        ],
    }


# -- DescribeUserInfo / DescribeCallDetailInfo ----------------------------------------------------------
def _user_info(u: SessionRecord, now: int) -> dict[str, Any]:
    return {
        "RoomStr": u.room_id,
        "UserId": u.user_id,
        "JoinTs": int(u.joined_at.timestamp()),
        "LeaveTs": int(u.left_at.timestamp()) if u.left_at else now,
        "DeviceType": u.device_type or "",
        "SdkVersion": u.sdk_version or "",
        "ClientIp": u.ip or "",
        "Finished": u.left_at is not None,
    }


class DescribeUserInfoParams(Params):
    SdkAppId: int
    CommId: str | None = None
    StartTime: int | None = None
    EndTime: int | None = None
    UserIds: list[str] | None = None
    PageNumber: int | None = None
    PageSize: int | None = None


def _check_users(users: list[str] | None, maximum: int) -> None:
    if users is not None and len(users) > maximum:
        if maximum == MAX_DETAIL_USERS:
            raise TrtcError("InvalidParameter.UserIdsMorethanSix", "The number of users exceeds 6.")
        raise TrtcError("InvalidParameter", f"`UserIds` lists more than {maximum} users.")


async def describe_user_info(ctx: ActionContext, p: DescribeUserInfoParams) -> dict[str, Any]:
    await ctx.app(p.SdkAppId)
    start, end = _window(ctx, p.StartTime, p.EndTime, 4 * HOUR)
    _check_users(p.UserIds, MAX_PAGE)
    offset, limit = _page(p.PageNumber, p.PageSize, 6, MAX_PAGE)
    call = await _call(ctx, p.SdkAppId, p.CommId)
    if call is None:
        return {"Total": 0, "UserList": []}
    total, users = await _queries(ctx).sessions(
        call, start, end, user_ids=p.UserIds, offset=offset, limit=limit
    )
    now = int(time.time())
    return {"Total": total, "UserList": [_user_info(u, now) for u in users]}


DATA_TYPES = (
    "appCpu",
    "sysCpu",
    "aBit",
    "aBlock",
    "bigvBit",
    "bigvCapFps",
    "bigvEncFps",
    "bigvDecFps",
    "bigvBlock",
    "aLoss",
    "bigvLoss",
    "bigvWidth",
    "bigvHeight",
)

# DataType -> (sample kind, value name, scale). Server samples: "audio"/"video"; client: "client".
_METRICS: dict[str, tuple[str, str, float]] = {
    "aBit": ("audio", "bitrate_bps", 1.0),
    "aLoss": ("audio", "fraction_lost", 100.0),
    "bigvBit": ("video", "bitrate_bps", 1.0),
    "bigvLoss": ("video", "fraction_lost", 100.0),
    "bigvEncFps": ("video", "fps", 1.0),
    "bigvWidth": ("video", "width", 1.0),
    "bigvHeight": ("video", "height", 1.0),
    "bigvCapFps": ("client", "capture_fps", 1.0),
    "bigvDecFps": ("client", "decode_fps", 1.0),
    "aBlock": ("client", "audio_stall_ms", 1.0),
    "bigvBlock": ("client", "video_stall_ms", 1.0),
    "appCpu": ("client", "app_cpu", 1.0),
    "sysCpu": ("client", "sys_cpu", 1.0),
}


def quality_series(user_id: str, samples: Sequence[Sample], types: Sequence[str]) -> list[dict[str, Any]]:
    """QualityData items: per data type and peer ("" = upstream), the points that have a value."""
    out: list[dict[str, Any]] = []
    for dt in types:
        kind, name, scale = _METRICS[dt]
        per_peer: dict[str, list[dict[str, Any]]] = {}
        for smp in samples:
            if smp.kind != kind:
                continue
            value = smp.values.get(name)
            if value is None:
                continue
            per_peer.setdefault(smp.peer, []).append(
                {"Time": int(smp.at.timestamp()), "Value": round(value * scale, 3)}
            )
        for peer, points in per_peer.items():
            out.append({"Content": points, "UserId": user_id, "PeerId": peer, "DataType": dt})
    return out


class DescribeCallDetailInfoParams(Params):
    SdkAppId: int
    CommId: str | None = None
    StartTime: int | None = None
    EndTime: int | None = None
    UserIds: list[str] | None = None
    DataType: list[str] | None = None
    PageNumber: int | None = None
    PageSize: int | None = None


async def describe_call_detail_info(ctx: ActionContext, p: DescribeCallDetailInfoParams) -> dict[str, Any]:
    await ctx.app(p.SdkAppId)
    with_data = bool(p.DataType)
    start, end = _window(ctx, p.StartTime, p.EndTime, HOUR if with_data else 4 * HOUR)
    limit_users = MAX_DETAIL_USERS if with_data else MAX_PAGE
    _check_users(p.UserIds, limit_users)
    if with_data and p.PageSize is not None and p.PageSize > MAX_DETAIL_USERS:
        raise TrtcError("InvalidParameter.PageSizeOversize", "With `DataType`, PageSize may not exceed 6.")
    types: list[str] = []
    for dt in p.DataType or []:
        if dt == "all":
            types = list(DATA_TYPES)
            break
        if dt not in DATA_TYPES:
            raise TrtcError(
                "InvalidParameter",
                f"`DataType` value {dt[:32]!r} is not one of {', '.join(DATA_TYPES)}, all.",
            )
        if dt not in types:
            types.append(dt)
    offset, limit = _page(p.PageNumber, p.PageSize, 6, limit_users)
    call = await _call(ctx, p.SdkAppId, p.CommId)
    if call is None:
        return {"Total": 0, "UserList": [], "Data": []}
    q = _queries(ctx)
    total, users = await q.sessions(call, start, end, user_ids=p.UserIds, offset=offset, limit=limit)
    now = int(time.time())
    data: list[dict[str, Any]] = []
    if types:
        for user in dict.fromkeys(u.user_id for u in users):
            data += quality_series(user, await q.samples(call, user, start, end), types)
    return {"Total": total, "UserList": [_user_info(u, now) for u in users], "Data": data}


# -- DescribeUserEvent -------------------------------------------------------------------------------
_NETWORK = {"none": 0, "wifi": 1, "4g": 2, "3g": 3, "2g": 4, "wired": 5}
_MIC = {"started": 0, "muted": 1, "stopped": 2, "unmuted": 3}
_LEFT = {"left": 0, "disconnected": 1, "removed": 2, "dismissed": 2, "replaced": 0, "server_shutdown": 1}
_VIDEO_KINDS = ("camera", "screen", "video")


def _msg(e: EventRecord, event_id: int, p1: int = -1, p2: int = -1, type_: int = 0) -> dict[str, Any]:
    return {
        "Type": type_,
        "Time": int(e.at.timestamp() * 1000),
        "EventId": event_id,
        "ParamOne": p1,
        "ParamTwo": p2,
    }


def _int(v: object, default: int = -1) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


def event_messages(e: EventRecord, first_join: bool) -> tuple[str | None, list[dict[str, Any]]]:
    """(peer the events are about, None: the user itself; EventMessage items) of one stored event.

    Server-observed: enter/exit (32788/32789, SDK 7000/7001 with the exit cause), refused entry
    (5003 with 0), signalling
    connected (32791), publish, unpublish, mute and unmute (32768-32775), subscriptions
    (32776-32779), a published video's resolution (4003). Client-reported: network type (1003),
    foreground (2001), microphone (3001), camera (4001/4002), capture resolution (4007), video
    upstream (4006), decode failures (4013), transport and signalling state (32790-32793).
    """
    d = e.detail
    kind = str(d.get("kind", ""))
    video = kind in _VIDEO_KINDS
    vtype = 2 if kind == "camera" or kind == "video" else 0
    t = e.type
    if t == "participant_joined":
        return None, [_msg(e, 32791), _msg(e, 32788), _msg(e, 7000, 0 if first_join else 1)]
    if t == "join_refused":
        return None, [_msg(e, 5003, 0)]
    if t == "participant_left":
        return None, [_msg(e, 32789), _msg(e, 7001, _LEFT.get(str(d.get("reason")), 0))]
    if t == "track_published":
        return None, [_msg(e, 32768 if video else 32769, type_=vtype)]
    if t == "track_unpublished":
        return None, [_msg(e, 32770 if video else 32771, type_=vtype)]
    if t == "track_muted":
        return None, [_msg(e, 32773 if video else 32772, type_=vtype)]
    if t == "track_unmuted":
        return None, [_msg(e, 32775 if video else 32774, type_=vtype)]
    if t in ("subscribed", "unsubscribed"):
        base = 32776 if t == "subscribed" else 32778
        return str(d.get("peer_id") or "") or None, [_msg(e, base if video else base + 1, type_=vtype)]
    if t == "resolution_changed":
        return None, [_msg(e, 4003, _int(d.get("width")), _int(d.get("height")), 2)]
    if t == "client_event":
        return None, _client_event(e)
    return None, []


def _client_event(e: EventRecord) -> list[dict[str, Any]]:
    d = e.detail
    name, value = str(d.get("name", "")), d.get("value")
    if name == "network" and value in _NETWORK:
        return [_msg(e, 1003, _NETWORK[str(value)])]
    if name == "foreground" and isinstance(value, bool):
        return [_msg(e, 2001, 0 if value else 1)]
    if name == "microphone" and value in _MIC:
        return [_msg(e, 3001, _MIC[str(value)])]
    if name == "camera" and value in ("front", "rear"):
        return [_msg(e, 4001, 0 if value == "front" else 1)]
    if name == "camera_failed" and value in ("front", "rear"):
        return [_msg(e, 4002, 0 if value == "front" else 1)]
    if name == "capture_resolution" and isinstance(value, list) and len(value) == 2:
        return [_msg(e, 4007, _int(value[0]), _int(value[1]), 2)]
    if name == "video_upstream" and isinstance(value, bool):
        return [_msg(e, 4006, 0 if value else 1, type_=2)]
    if name == "decode_failed":
        return [_msg(e, 4013, _int(value, 0), 0, 2)]
    if name == "signalling" and value in ("up", "down"):
        return [_msg(e, 32791 if value == "up" else 32790)]
    if name == "transport" and value in ("up", "down"):
        return [_msg(e, 32793 if value == "up" else 32792)]
    return []


class DescribeUserEventParams(Params):
    CommId: str | None = None
    StartTime: int | None = None
    EndTime: int | None = None
    UserId: str | None = None
    RoomId: str | None = None
    SdkAppId: int | None = None


async def describe_user_event(ctx: ActionContext, p: DescribeUserEventParams) -> dict[str, Any]:
    if p.SdkAppId is None:
        raise TrtcError("MissingParameter.AppId", "The request is missing a required parameter `SdkAppId`.")
    if p.UserId is None:
        raise TrtcError("MissingParameter.UserId", "The request is missing a required parameter `UserId`.")
    if p.RoomId is None:
        raise TrtcError("MissingParameter.RoomId", "The request is missing a required parameter `RoomId`.")
    await ctx.app(p.SdkAppId)
    start, end = _window(ctx, p.StartTime, p.EndTime, None)
    if not p.UserId:
        raise TrtcError("InvalidParameter.UserId", "`UserId` is empty.")
    call = await _call(ctx, p.SdkAppId, p.CommId)
    if call is None or call.room_id != p.RoomId:
        return {"Data": []}
    events = await _queries(ctx).events(call, p.UserId, start, end)
    groups: dict[str, list[dict[str, Any]]] = {}
    joined = False
    for e in events:
        peer, messages = event_messages(e, not joined)
        if e.type == "participant_joined":
            joined = True
        if messages:
            groups.setdefault(peer or p.UserId, []).extend(messages)
    return {"Data": [{"Content": c, "PeerId": peer} for peer, c in groups.items()]}


# -- DescribeScaleInfo -------------------------------------------------------------------------------
class DescribeScaleInfoParams(Params):
    SdkAppId: int
    StartTime: int | None = None
    EndTime: int | None = None


def _tz(ctx: ActionContext) -> ZoneInfo:
    return ZoneInfo(ctx.runtime.settings.stats_timezone)


async def describe_scale_info(ctx: ActionContext, p: DescribeScaleInfoParams) -> dict[str, Any]:
    await ctx.app(p.SdkAppId)
    start, end = _window(ctx, p.StartTime, p.EndTime, None)
    tz = _tz(ctx)
    today = datetime.now(tz).date()
    day = start.astimezone(tz).date()
    edges: list[datetime] = []
    while day < today and datetime(day.year, day.month, day.day, tzinfo=tz) < end:
        edges.append(datetime(day.year, day.month, day.day, tzinfo=tz))
        day += timedelta(days=1)
    if not edges:
        return {"Total": 0, "ScaleList": []}
    last = edges[-1]
    edges.append(datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1))
    points = await _queries(ctx).counts(str(p.SdkAppId), [e.astimezone(UTC) for e in edges])
    rows = [
        {
            "Time": int(pt.at.timestamp()),
            "UserNumber": pt.users,
            "UserCount": pt.entries,
            "RoomNumbers": pt.rooms,
        }
        for pt in reversed(points)
    ]
    return {"Total": len(rows), "ScaleList": rows}


# -- Dashboard (TRTCDataResult) ------------------------------------------------------------------------
def _result(columns: list[str], rows: list[list[int]]) -> dict[str, Any]:
    return {
        "Data": {
            "StatementID": 0,
            "Series": [{"Columns": columns, "Values": [{"RowValue": r} for r in rows]}],
            "Total": 1,
        }
    }


def _dash_app(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise TrtcError("InvalidParameter.SdkAppId", "`SdkAppId` is incorrect.")
    return int(value)


def _rate(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


class RealTimeParams(Params):
    SdkAppId: str = Field(min_length=1)
    StartTime: int
    EndTime: int
    RoomId: str | None = None


REALTIME_STEP = 10


def _realtime_points(ctx: ActionContext, p: RealTimeParams, max_s: int) -> list[datetime]:
    now = time.time()
    if p.StartTime <= 0 or p.EndTime < p.StartTime or p.EndTime > MAX_TS:
        raise TrtcError("InvalidParameter", "`EndTime` must be a Unix time not before `StartTime`.")
    if p.EndTime - p.StartTime > max_s:
        raise TrtcError("InvalidParameter", f"The query period exceeds {max_s // HOUR} hours.")
    if p.StartTime < now - _history_days(ctx) * DAY:
        raise TrtcError("InvalidParameter", "The start time is older than the data kept.")
    first = -(-p.StartTime // REALTIME_STEP) * REALTIME_STEP
    return [_dt(t) for t in range(first, min(p.EndTime, int(now)) + 1, REALTIME_STEP)]


async def realtime_scale(ctx: ActionContext, p: RealTimeParams) -> dict[str, Any]:
    app = _dash_app(p.SdkAppId)
    await ctx.app(app)
    points = _realtime_points(ctx, p, HOUR)
    got = await _queries(ctx).present(str(app), points, room_id=p.RoomId or None)
    return _result(
        ["time", "userCount", "roomCount"], [[int(x.at.timestamp()), x.users, x.rooms] for x in got]
    )


async def realtime_quality(ctx: ActionContext, p: RealTimeParams) -> dict[str, Any]:
    app = _dash_app(p.SdkAppId)
    await ctx.app(app)
    points = _realtime_points(ctx, p, 12 * HOUR)
    if not points:
        return _result(["time", "videoFreezeRate", "audioFreezeRate"], [])
    got = await _queries(ctx).quality(
        str(app),
        "t",
        points[0],
        points[-1] + timedelta(seconds=REALTIME_STEP),
        room_id=p.RoomId or None,
        columns=("video_frozen", "video_samples", "audio_frozen", "audio_samples"),
    )
    rows = []
    for t in points:
        c = got.get(t, {})
        rows.append(
            [
                int(t.timestamp()),
                _rate(c.get("video_frozen", 0), c.get("video_samples", 0)),
                _rate(c.get("audio_frozen", 0), c.get("audio_samples", 0)),
            ]
        )
    return _result(["time", "videoFreezeRate", "audioFreezeRate"], rows)


class MarketParams(Params):
    SdkAppId: str = Field(min_length=1)
    StartTime: str
    EndTime: str
    Period: str


def _date(value: str, name: str) -> date:
    try:
        got = date.fromisoformat(value) if len(value) == 10 else date.fromisoformat("x")
        if not 1970 <= got.year <= 9998:
            raise ValueError
    except ValueError:
        raise TrtcError("InvalidParameter", f"`{name}` must be a date, YYYY-MM-DD.") from None
    return got


def _market_edges(p: MarketParams, max_days: int) -> list[datetime]:
    if p.Period not in ("d", "h"):
        raise TrtcError("InvalidParameter", "`Period` must be d or h.")
    first, last = _date(p.StartTime, "StartTime"), _date(p.EndTime, "EndTime")
    if last < first:
        raise TrtcError("InvalidParameter", "`EndTime` is before `StartTime`.")
    if (last - first).days + 1 > max_days:
        raise TrtcError("InvalidParameter", f"The query period exceeds {max_days} days.")
    lo = datetime(first.year, first.month, first.day, tzinfo=UTC)
    hi = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    step = timedelta(days=1) if p.Period == "d" else timedelta(hours=1)
    edges = [lo]
    while edges[-1] < hi:
        edges.append(edges[-1] + step)
    return edges


async def market_scale(ctx: ActionContext, p: MarketParams) -> dict[str, Any]:
    app = _dash_app(p.SdkAppId)
    await ctx.app(app)
    edges = _market_edges(p, 60)
    got = await _queries(ctx).counts(str(app), edges)
    return _result(
        ["time", "peakCurrentUsers", "peakCurrentChannels", "userCount", "roomCount"],
        [[int(x.at.timestamp()), x.peak_users, x.peak_rooms, x.users, x.rooms] for x in got],
    )


async def market_quality(ctx: ActionContext, p: MarketParams) -> dict[str, Any]:
    app = _dash_app(p.SdkAppId)
    await ctx.app(app)
    edges = _market_edges(p, 30)
    hours = await _queries(ctx).quality(str(app), "h", edges[0], edges[-1])
    rows = []
    for lo, c in zip(edges, regroup(hours, edges), strict=False):
        rows.append(
            [
                int(lo.timestamp()),
                _rate(c.get("video_frozen", 0), c.get("video_samples", 0)),
                _rate(c.get("audio_frozen", 0), c.get("audio_samples", 0)),
                _rate(c.get("rtt_high", 0), c.get("rtt_samples", 0)),
                _rate(c.get("joins_ok", 0), c.get("joins", 0)),
                _rate(c.get("joins_fast", 0), c.get("joins_timed", 0)),
            ]
        )
    return _result(
        [
            "time",
            "videoFreezeRate",
            "audioFreezeRate",
            "networkDelay",
            "joinSuccessRate",
            "joinSuccessIn5sRate",
        ],
        rows,
    )


def register(registry: ActionRegistry) -> None:
    for name, model, handler in (
        ("DescribeRoomInfo", DescribeRoomInfoParams, describe_room_info),
        ("DescribeUserInfo", DescribeUserInfoParams, describe_user_info),
        ("DescribeCallDetailInfo", DescribeCallDetailInfoParams, describe_call_detail_info),
        ("DescribeUserEvent", DescribeUserEventParams, describe_user_event),
        ("DescribeScaleInfo", DescribeScaleInfoParams, describe_scale_info),
        ("DescribeTRTCRealTimeScaleData", RealTimeParams, realtime_scale),
        ("DescribeTRTCRealTimeQualityData", RealTimeParams, realtime_quality),
        ("DescribeTRTCMarketScaleData", MarketParams, market_scale),
        ("DescribeTRTCMarketQualityData", MarketParams, market_quality),
    ):
        registry.add("trtc", Action(name, model, handler, rate_per_s=20))
