"""Shared parts of the native API (``/api/v1``): errors as JSON, the caller's tenant context."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from roomcast.api.native.auth import Principal, principal
from roomcast.domain.errors import ErrorKind, RoomcastError
from roomcast.domain.tenancy import App
from roomcast.runtime import Runtime
from roomcast.services.task_queries import TaskQueries

PREFIX = "/api/v1"
CONSOLE_HEADER = "x-roomcast-console"
"""Sent by the console: a 401 then carries no ``WWW-Authenticate`` (no browser login dialog)."""

STATUS = {
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FAILED_PRECONDITION: 409,
    ErrorKind.LIMIT_EXCEEDED: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    subject: str = ""


class ErrorOut(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Invalid argument"},
    401: {"model": ErrorOut, "description": "No or wrong credentials"},
    404: {"model": ErrorOut, "description": "Not found (also another tenant's object)"},
}


def error_response(exc: RoomcastError, request: Request) -> JSONResponse:
    status = STATUS.get(exc.kind, 500)
    body = {"error": {"code": exc.kind.value, "message": exc.message, "subject": exc.subject}}
    headers = {}
    if status == 401 and CONSOLE_HEADER not in request.headers:
        headers["WWW-Authenticate"] = 'Basic realm="roomcast"'
    return JSONResponse(body, status_code=status, headers=headers)


class NativeRoute(APIRoute):
    """Domain errors become ``{"error": {"code", "message", "subject"}}`` with an HTTP status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RoomcastError as exc:
                return error_response(exc, request)

        return route


def app_ref(ref: str) -> str | int:
    """A number of up to 10 digits is an sdk_app_id; anything else an app_id."""
    return int(ref) if ref.isdigit() and len(ref) <= 10 else ref


@dataclass(frozen=True)
class Tenant:
    """The runtime and the calling account; every lookup is limited to that account's apps."""

    rt: Runtime
    who: Principal

    async def app(self, ref: str) -> App:
        return await self.rt.tenancy.get_app(app_ref(ref), account_id=self.who.account_id)

    async def apps(self) -> list[App]:
        _, apps = await self.rt.tenancy.list_apps(self.who.account_id)
        return apps

    def tasks(self) -> TaskQueries:
        return TaskQueries(
            self.rt.db.sessions,
            storage_dir=self.rt.settings.resolved_storage_dir,
            public_url=self.rt.settings.resolved_public_url,
        )

    async def sdk_app_ids(self, only: str | None = None) -> list[int]:
        if only is not None:
            return [(await self.app(only)).sdk_app_id]
        return [a.sdk_app_id for a in await self.apps()]


async def tenant(request: Request, who: Annotated[Principal, Depends(principal)]) -> Tenant:
    return Tenant(request.app.state.runtime, who)


TenantDep = Annotated[Tenant, Depends(tenant)]
