"""The media library over HTTP: ``GET /media/{key}`` plays files recorded to roomcast's own library.

Keys start with the task id (unguessable), so a library URL works like a capability link, the way
a VOD play URL does. Range requests are supported (seeking in players).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from roomcast.runtime import Runtime
from roomcast.services.recordings import LIBRARY_BUCKET

mimetypes.add_type("application/vnd.apple.mpegurl", ".m3u8")
mimetypes.add_type("video/mp2t", ".ts")
mimetypes.add_type("audio/mp4", ".m4a")


def build_router() -> APIRouter:
    router = APIRouter(tags=["native"])

    @router.api_route("/media/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def media(request: Request, key: str) -> Response:
        rt: Runtime = request.app.state.runtime
        root = (rt.settings.resolved_storage_dir / LIBRARY_BUCKET).resolve()
        path = (root / key).resolve()
        if not key or ".." in Path(key).parts or not path.is_relative_to(root) or not path.is_file():
            return JSONResponse({"error": "not found"}, status_code=404)
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=ctype)

    return router
