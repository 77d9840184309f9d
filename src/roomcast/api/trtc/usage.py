"""TRTC usage statistics (part B section 3): DescribeTrtcUsage, DescribeRecordingUsage,
DescribeMixTranscodingUsage, DescribeRelayUsage and DescribeTrtcRoomUsage, from the usage ledger.

Dates are days of ``stats_timezone``; a period of one day (StartTime = EndTime) answers in
5-minute buckets, a longer one (up to 31 days, both ends included) in days. A StartTime after
EndTime is taken as the same period the other way round, as the vendor's examples do.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.params import Params
from roomcast.stats.ledger import HOUR, MINUTE, UsageLedger
from roomcast.stats.tiers import TIERS

MAX_DAYS = 31
FIVE_MIN = timedelta(minutes=5)
ROOM_CSV_HEADER = "RoomId,Audio,SD,hd,FullHD,2K,4K\n"
TRANSCODE_KEYS = ["Audio"] + [f"{t}{c}" for c in ("H264", "H265") for t in TIERS[1:]]


def _date(value: str, name: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        got = date.fromisoformat(value)
        if not 1970 <= got.year <= 9998:
            raise ValueError
        return got
    except ValueError:
        raise TrtcError("InvalidParameter", f"`{name}` must be a date, YYYY-MM-DD.") from None


async def _apps(ctx: ActionContext, sdk_app_id: int | None) -> list[str]:
    if sdk_app_id is not None:
        await ctx.app(sdk_app_id)
        return [str(sdk_app_id)]
    _, apps = await ctx.runtime.tenancy.list_apps(ctx.account_id)
    return [str(a.sdk_app_id) for a in apps]


async def usage_list(
    ctx: ActionContext, start: str, end: str, sdk_app_id: int | None, product: str, keys: list[str]
) -> dict[str, Any]:
    first, last = _date(start, "StartTime"), _date(end, "EndTime")
    if last < first:
        first, last = last, first
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise TrtcError(
            "InvalidParameter.QueryScaleOversize", "The query period exceeds the limit (31 days)."
        )
    apps = await _apps(ctx, sdk_app_id)
    tz = ZoneInfo(ctx.runtime.settings.stats_timezone)
    lo = datetime(first.year, first.month, first.day, tzinfo=tz)
    hi = datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1)
    if days == 1:
        step, span = FIVE_MIN, MINUTE
    else:
        step, span = timedelta(days=1), HOUR
    rows = await UsageLedger(ctx.runtime.db.sessions).read(
        apps, product, span, lo.astimezone(UTC), hi.astimezone(UTC)
    )
    sums: dict[datetime, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        local = r.start.astimezone(tz)
        if days == 1:
            bucket = lo + FIVE_MIN * ((local - lo) // FIVE_MIN)
        else:
            bucket = datetime(local.year, local.month, local.day, tzinfo=tz)
        sums[bucket][r.tier] += r.seconds / 60
    out = []
    at = lo
    while at < hi:
        got = sums.get(at, {})
        out.append(
            {
                "TimeKey": at.strftime("%Y-%m-%d %H:%M:%S"),
                "UsageValue": [round(got.get(k, 0.0), 2) for k in keys],
            }
        )
        at = (
            (at + step).astimezone(tz)
            if days == 1
            else datetime.combine(at.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        )
    return {"UsageKey": keys, "UsageList": out}


class UsageParams(Params):
    StartTime: str
    EndTime: str
    SdkAppId: int | None = None


class RecordingUsageParams(UsageParams):
    MixType: str


async def trtc_usage(ctx: ActionContext, p: UsageParams) -> dict[str, Any]:
    return await usage_list(ctx, p.StartTime, p.EndTime, p.SdkAppId, "rtc", list(TIERS))


async def recording_usage(ctx: ActionContext, p: RecordingUsageParams) -> dict[str, Any]:
    products = {"single": "record_single", "multi": "record_mixed"}
    if p.MixType not in products:
        raise TrtcError("InvalidParameter", "`MixType` must be single or multi.")
    return await usage_list(ctx, p.StartTime, p.EndTime, p.SdkAppId, products[p.MixType], list(TIERS))


async def mix_transcoding_usage(ctx: ActionContext, p: UsageParams) -> dict[str, Any]:
    return await usage_list(ctx, p.StartTime, p.EndTime, p.SdkAppId, "transcode", TRANSCODE_KEYS)


async def relay_usage(ctx: ActionContext, p: UsageParams) -> dict[str, Any]:
    return await usage_list(ctx, p.StartTime, p.EndTime, p.SdkAppId, "relay", list(TIERS))


class RoomUsageParams(Params):
    SdkAppid: int
    StartTime: str
    EndTime: str


def _minute(value: str, name: str, tz: ZoneInfo) -> datetime:
    try:
        if len(value) != 16:
            raise ValueError
        got = datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=tz)
        if not 1970 <= got.year <= 9998:
            raise ValueError
        return got
    except ValueError:
        raise TrtcError("InvalidParameter", f"`{name}` must be YYYY-MM-DD HH:MM.") from None


def _minutes(seconds: float) -> str:
    return str(round(seconds / 60))


async def trtc_room_usage(ctx: ActionContext, p: RoomUsageParams) -> dict[str, Any]:
    try:
        await ctx.app(p.SdkAppid)
    except TrtcError:
        raise TrtcError("FailedOperation.SdkAppIdNotExist", "The application ID does not exist.") from None
    tz = ZoneInfo(ctx.runtime.settings.stats_timezone)
    lo, hi = _minute(p.StartTime, "StartTime", tz), _minute(p.EndTime, "EndTime", tz)
    if hi < lo:
        raise TrtcError("InvalidParameter", "`EndTime` is before `StartTime`.")
    if hi - lo > timedelta(hours=24):
        raise TrtcError("InvalidParameter", "The query period exceeds 24 hours.")
    rows = await UsageLedger(ctx.runtime.db.sessions).per_room(
        str(p.SdkAppid), "rtc", lo.astimezone(UTC), hi.astimezone(UTC)
    )
    rooms: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        rooms[r.room_id][r.tier] += r.seconds
    lines = [ROOM_CSV_HEADER]
    for room in sorted(rooms):
        values = ",".join(_minutes(rooms[room].get(t, 0.0)) for t in TIERS)
        lines.append(f"{_csv(room)},{values}\n")
    return {"Data": "".join(lines)}


def _csv(text: str) -> str:
    """A CSV field (RFC 4180 quoting when needed)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def register(registry: ActionRegistry) -> None:
    for name, model, handler in (
        ("DescribeTrtcUsage", UsageParams, trtc_usage),
        ("DescribeRecordingUsage", RecordingUsageParams, recording_usage),
        ("DescribeMixTranscodingUsage", UsageParams, mix_transcoding_usage),
        ("DescribeRelayUsage", UsageParams, relay_usage),
    ):
        registry.add("trtc", Action(name, model, handler, rate_per_s=5))
    registry.add(
        "trtc",
        Action("DescribeTrtcRoomUsage", RoomUsageParams, trtc_room_usage, rate_per_s=1, rate_period_s=15),
    )
