"""Native API: event callbacks with their payload and delivery state, and redelivery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from roomcast.api.native.common import ERRORS, PREFIX, NativeRoute, TenantDep
from roomcast.services.callback_admin import CallbackAdmin, CallbackView


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["native: callbacks"], route_class=NativeRoute, responses=ERRORS)

    @router.get("/callbacks", response_model=list[CallbackView])
    async def list_callbacks(
        t: TenantDep,
        app: Annotated[str | None, Query(description="Only this app (sdk_app_id or app_id).")] = None,
        state: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
        payload: Annotated[bool, Query(description="Include each callback's body.")] = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[CallbackView]:
        """Callbacks of the account's apps, newest first: where, what, attempts, last error."""
        keys = [str(i) for i in await t.sdk_app_ids(app)]
        return await CallbackAdmin(t.rt.db.sessions).list(
            app_keys=keys, state=state, limit=limit, with_body=payload
        )

    @router.get("/callbacks/{event_id}", response_model=CallbackView)
    async def get_callback(event_id: str, t: TenantDep) -> CallbackView:
        """One callback with its body as sent."""
        keys = [str(i) for i in await t.sdk_app_ids()]
        return await CallbackAdmin(t.rt.db.sessions).get(event_id, app_keys=keys)

    @router.post("/callbacks/{event_id}/redeliver", response_model=CallbackView)
    async def redeliver(event_id: str, request: Request, t: TenantDep) -> CallbackView:
        """Send a callback again now (the same body and event id), with a fresh retry window."""
        keys = [str(i) for i in await t.sdk_app_ids()]
        view = await CallbackAdmin(t.rt.db.sessions).redeliver(event_id, app_keys=keys)
        stack = getattr(request.app.state, "recording", None)
        if stack is not None:
            stack.outbox.notify()
        return view

    return router
