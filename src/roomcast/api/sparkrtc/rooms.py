"""SparkRTC room management: A24 batch-remove-users and A25 dismiss (both answer 202)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from roomcast.api.sparkrtc.apps import _app_ref
from roomcast.api.sparkrtc.errors import SparkError, invalid
from roomcast.api.sparkrtc.gateway import SparkRoute, authenticate, json_body
from roomcast.domain.errors import InvalidArgument, NotFound
from roomcast.runtime import Runtime

MAX_USERS = 100  # not documented; a bound keeps one call from holding the room for long
ROOM_ID_MAX = 128


class BatchRemoveUsersReq(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_ids: list[str] = Field(min_length=1, max_length=MAX_USERS)


def _room_id(room_id: str) -> str:
    if not room_id or len(room_id) > ROOM_ID_MAX:
        raise invalid("room_id")
    return room_id


def build_router() -> APIRouter:
    router = APIRouter(route_class=SparkRoute, tags=["sparkrtc"])

    @router.post("/v2/apps/{app_id}/rooms/{room_id}/batch-remove-users", status_code=202)
    async def batch_remove_users(request: Request, app_id: str, room_id: str) -> Response:
        caller = await authenticate(request, "room")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        req = await json_body(request, BatchRemoveUsersReq)
        try:
            await rt.rooms.remove_users(
                str(app.sdk_app_id),
                _room_id(room_id),
                req.user_ids,
                reason="removed by the server API",
                limit=MAX_USERS,
            )
        except NotFound:
            # A24 documents no 404: an unknown room is a bad parameter.
            raise invalid("room does not exist") from None
        except InvalidArgument as exc:
            raise invalid(exc.message) from None
        return Response(status_code=202)

    @router.post("/v2/apps/{app_id}/rooms/{room_id}/dismiss", status_code=202)
    async def dismiss(request: Request, app_id: str, room_id: str) -> Response:
        caller = await authenticate(request, "room")
        rt: Runtime = request.app.state.runtime
        app = await rt.tenancy.get_app(_app_ref(app_id), caller.account_id)
        try:
            await rt.rooms.dismiss(
                str(app.sdk_app_id), _room_id(room_id), reason="dismissed by the server API"
            )
        except NotFound:
            raise SparkError(404, "RTC.00001003", "InvalidParameterValue: the room cannot be found") from None
        return Response(status_code=202)

    return router
