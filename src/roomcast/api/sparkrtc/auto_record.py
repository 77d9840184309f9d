"""SparkRTC automatic recording (A12, A13): with ``AUTO_INDIVIDUAL_RECORD`` and a rule, every user
who publishes in a room opened after the switch is recorded by an individual job, with no API
call. Camera (and microphone) -> ``{appid}_{roomid}_{userid}_av_m``; a shared screen, without
audio -> ``{appid}_{roomid}_{userid}_v_a``. The jobs are ordinary individual jobs (A21 shows
them, A22 stops them, callbacks as for any job). Switching off starts no new ones; running ones
go on until their publisher has been gone ``max_idle_time`` (30 s).

"Created after the switch" (A12: "takes effect only for newly created rooms") compares the
switch time with the room's creation as its users see it (``services.room_lineage``): a room
that reopened because its node restarted or was taken over keeps the creation time of its first
session. So a room created before the switch stays unrecorded after a restart, and a room
created after it records users who publish after the restart too (its running automatic jobs
are tasks: the node that takes them over resumes them). A room that emptied or was dismissed
and opens again under the same id is a new room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from roomcast.api.sparkrtc import jobs
from roomcast.api.sparkrtc.apps import _app_ref
from roomcast.api.sparkrtc.errors import SparkError, combination
from roomcast.api.sparkrtc.gateway import SparkRoute, authenticate, json_body, utc_text
from roomcast.api.sparkrtc.jobs import DIALECT, IndividualJobReq, start_individual
from roomcast.domain.errors import RoomcastError
from roomcast.domain.tenancy import App
from roomcast.log import event
from roomcast.rtc.events import EventBus, RoomClosed, RoomEvent, RoomOpened, TrackPublished
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.services.record_rules import AutoRecord, RecordRuleService
from roomcast.services.recordings import RecordingService
from roomcast.services.room_lineage import room_created_at

log = logging.getLogger("roomcast.api.sparkrtc")

AUTO_OFF = "AUTO_RECORD_OFF"
AUTO_INDIVIDUAL = "AUTO_INDIVIDUAL_RECORD"


class AutoRecordReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mode: Literal["AUTO_RECORD_OFF", "AUTO_INDIVIDUAL_RECORD"]
    record_rule_id: str | None = Field(default=None, max_length=64)


def render_auto_record(auto: AutoRecord, app: App) -> dict[str, Any]:
    return {
        "mode": AUTO_INDIVIDUAL if auto.rule_id else AUTO_OFF,
        "record_rule_id": auto.rule_id or "",
        "update_time": utc_text(auto.updated_at or app.created_at),
    }


def build_router() -> APIRouter:
    router = APIRouter(route_class=SparkRoute, tags=["sparkrtc"])

    @router.put("/v2/apps/{app_id}/auto-record-mode")
    async def set_auto_record(request: Request, app_id: str) -> Response:
        caller = await authenticate(request, "auto_record")
        req = await json_body(request, AutoRecordReq)
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        if req.mode == AUTO_INDIVIDUAL and not req.record_rule_id:
            raise combination("AUTO_INDIVIDUAL_RECORD needs a record_rule_id")
        rule_id = req.record_rule_id if req.mode == AUTO_INDIVIDUAL else None
        auto = await RecordRuleService(rt.db.sessions).set_auto_record(app.app_id, rule_id)
        return JSONResponse({"app_id": app.app_id, "auto_record_mode": render_auto_record(auto, app)})

    @router.get("/v2/apps/{app_id}/auto-record-mode")
    async def show_auto_record(request: Request, app_id: str) -> Response:
        caller = await authenticate(request, "auto_record")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        auto = await RecordRuleService(rt.db.sessions).auto_record(app.app_id)
        return JSONResponse({"app_id": app.app_id, "auto_record_mode": render_auto_record(auto, app)})

    return router


class AutoRecorder:
    """Starts the automatic recordings of the rooms this node opens."""

    def __init__(self, rt: Runtime, service: RecordingService) -> None:
        self._rt = rt
        self._service = service
        self._opened: dict[tuple[str, str], float] = {}
        self._lock = asyncio.Lock()

    def attach(self, events: EventBus) -> None:
        events.add_handler(self.on_event, types=(RoomOpened, RoomClosed, TrackPublished))

    def on_event(self, ev: RoomEvent) -> Awaitable[None] | None:
        key = (ev.app_key, ev.room_id)
        if isinstance(ev, RoomOpened):
            self._opened[key] = ev.at
        elif isinstance(ev, RoomClosed):
            self._opened.pop(key, None)
        elif isinstance(ev, TrackPublished):
            opened_at = self._opened.get(key)
            if opened_at is None:  # opened before this recorder listened: the SFU knows when
                room = self._rt.sfu.get_room(*key) if self._rt.sfu is not None else None
                opened_at = room.created_at if room is not None else None
            if opened_at is not None:
                return self._published(ev, opened_at)
        return None

    async def _published(self, ev: TrackPublished, opened_at: float) -> None:
        if not ev.app_key.isdigit():
            return
        try:
            app = await self._rt.tenancy.get_app(int(ev.app_key))
            rules = RecordRuleService(self._rt.db.sessions)
            auto = await rules.auto_record(app.app_id)
            if not app.enabled or auto.rule_id is None or auto.updated_at is None:
                return
            opened = datetime.fromtimestamp(opened_at, UTC)
            created = await room_created_at(self._rt.db.sessions, ev.app_key, ev.room_id, opened)
            if created < auto.updated_at:
                return  # the room existed before the switch (perhaps on a node now gone)
            screen = ev.kind is TrackKind.SCREEN
            video_type: Literal["CAMERASTREAM", "SCREENSTREAM"] = "SCREENSTREAM" if screen else "CAMERASTREAM"
            async with self._lock:  # audio and camera arrive together: one job
                for other in await self._service.tasks.active_in_room(app.sdk_app_id, ev.room_id):
                    r = other.request
                    if (
                        other.dialect == DIALECT
                        and r.get("user_id") == ev.user_id
                        and r.get("video_type") == video_type
                    ):
                        return
                rule = await rules.get(app.app_id, auto.rule_id)
                req = IndividualJobReq(
                    room_id=ev.room_id, user_id=ev.user_id, is_record_audio=not screen, video_type=video_type
                )
                task = await start_individual(
                    self._service, app, ev.room_id, req, rule, auto="v_a" if screen else "av_m"
                )
            event(log, "sparkrtc.auto_record", task_id=task.task_id, room_id=ev.room_id, user_id=ev.user_id)
        except (RoomcastError, SparkError) as exc:
            event(log, "sparkrtc.auto_record_failed", room_id=ev.room_id, user_id=ev.user_id, error=str(exc))


def register(service: RecordingService, rt: Runtime, events: EventBus) -> None:
    """Wire SparkRTC into the recording stack: its callbacks and automatic recording."""
    jobs.register_dialect(service)
    AutoRecorder(rt, service).attach(events)
