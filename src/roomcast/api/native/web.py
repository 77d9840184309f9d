"""The browser client (static files at ``/`` and ``/static``), its dev-mode token helper, and the
console page (``/console``, a client of the native API).

``POST /api/dev/token`` hands out join tokens without a signed request, so a developer can try
rooms from the browser at once. It exists only when ``dev_mode`` is on; in production tokens come
from the application's own backend (``roomcast token`` or the vendor SDK's UserSig code).

``GET /api/rooms/{app}/{room}/status`` tells a participant (by its join token) whether the room is
being recorded, for the client's recording indicator.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from roomcast.domain.errors import NotFound
from roomcast.rtc.errors import AuthError
from roomcast.runtime import Runtime
from roomcast.services.join_tokens import JoinAuthenticator, issue_jwt
from roomcast.services.task_queries import TaskQueries

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
DEV_TOKEN_TTL_S = 4 * 3600


class DevTokenReq(BaseModel):
    app_id: str = Field(min_length=1, max_length=64)
    room_id: str = Field(min_length=1, max_length=128)
    user_id: str = Field(min_length=1, max_length=128)


async def index(request: Request) -> Response:
    page = WEB_DIR / "index.html"
    if not page.is_file():
        return JSONResponse({"error": "the browser client is not installed"}, status_code=404)
    return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


async def console(request: Request) -> Response:
    page = WEB_DIR / "console" / "index.html"
    if not page.is_file():
        return JSONResponse({"error": "the console is not installed"}, status_code=404)
    return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


def mount(app: FastAPI) -> None:
    """Serve the client: ``GET /`` (through the API 3.0 router, which shares that path) and assets."""
    app.state.web_index = index
    if WEB_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.add_api_route("/console", console, methods=["GET"], include_in_schema=False)
    app.include_router(build_router())


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["native"])

    @router.get("/config")
    async def config(request: Request) -> dict[str, object]:
        rt: Runtime = request.app.state.runtime
        return {"dev_mode": rt.settings.dev_mode, "signalling": "/rtc/ws"}

    @router.post("/dev/token")
    async def dev_token(request: Request, req: DevTokenReq) -> Response:
        rt: Runtime = request.app.state.runtime
        if not rt.settings.dev_mode:
            return JSONResponse(
                {"error": "dev mode is off: get tokens from your application"}, status_code=404
            )
        ref: str | int = int(req.app_id) if req.app_id.isdigit() and len(req.app_id) <= 10 else req.app_id
        try:
            app = await rt.tenancy.get_app(ref)
        except NotFound:
            return JSONResponse({"error": "unknown app"}, status_code=404)
        token = issue_jwt(app, req.user_id, room_id=req.room_id, expire_s=DEV_TOKEN_TTL_S)
        return JSONResponse({"token": token, "app_id": str(app.sdk_app_id), "expires_in": DEV_TOKEN_TTL_S})

    @router.get("/rooms/{app_id}/{room_id}/status")
    async def room_status(
        request: Request,
        app_id: str,
        room_id: str,
        user: str = Query(min_length=1, max_length=128, description="The caller's user id."),
    ) -> Response:
        """Whether any recording task includes the room. Needs the caller's join token for the
        room as ``Authorization: Bearer <token>`` (what the client joined with)."""
        rt: Runtime = request.app.state.runtime
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        try:
            who = await JoinAuthenticator(rt.tenancy).authenticate(
                token, app_id=app_id, room_id=room_id, user_id=user
            )
        except AuthError as exc:
            return JSONResponse({"error": str(exc) or "unauthorized"}, status_code=401)
        queries = TaskQueries(
            rt.db.sessions,
            storage_dir=rt.settings.resolved_storage_dir,
            public_url=rt.settings.resolved_public_url,
        )
        count = (await queries.recording_rooms(int(who.app_key))).get(room_id, 0)
        return JSONResponse({"recording": count > 0, "recordings": count})

    return router
