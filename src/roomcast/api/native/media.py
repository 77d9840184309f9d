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


MAX_KEY_LENGTH = 1024
MAX_NAME_LENGTH = 255


def _plausible_key(key: str) -> bool:
    """A key the file system can be asked about (no NUL, no over-long name, no ``..``)."""
    parts = Path(key).parts
    return (
        bool(key)
        and len(key) <= MAX_KEY_LENGTH
        and "\x00" not in key
        and ".." not in parts
        and all(len(p.encode("utf-8", "surrogatepass")) <= MAX_NAME_LENGTH for p in parts)
    )


def build_router() -> APIRouter:
    router = APIRouter(tags=["native"])

    @router.api_route("/media/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def media(request: Request, key: str) -> Response:
        rt: Runtime = request.app.state.runtime
        root = (rt.settings.resolved_storage_dir / LIBRARY_BUCKET).resolve()
        if not _plausible_key(key):
            return JSONResponse({"error": "not found"}, status_code=404)
        path = (root / key).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return JSONResponse({"error": "not found"}, status_code=404)
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=ctype)

    return router
