"""Native API: usage per app and day (participant and recording minutes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from roomcast.api.native.common import ERRORS, PREFIX, NativeRoute, TenantDep
from roomcast.services.usage_queries import DayUsage, UsageQueries


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["native: usage"], route_class=NativeRoute, responses=ERRORS)

    @router.get("/usage", response_model=list[DayUsage])
    async def usage(
        t: TenantDep,
        app: Annotated[str | None, Query(description="Only this app (sdk_app_id or app_id).")] = None,
        days: Annotated[int, Query(ge=1, le=31, description="The last N UTC days, today included.")] = 7,
    ) -> list[DayUsage]:
        """Participant minutes, sessions started and recording minutes per app and day."""
        return await UsageQueries(t.rt.db.sessions).daily(await t.sdk_app_ids(app), days)

    return router
