"""Native API: tasks of every kind with their state and files, and file downloads.

Files in roomcast's media library keep their ``url`` (``/media/<key>``, a capability link that
plays in a browser) after the task ends, until they expire; ``.../download`` serves the same file
as an attachment to a signed-in caller.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from roomcast.api.native.common import ERRORS, PREFIX, NativeRoute, TenantDep
from roomcast.domain.errors import NotFound
from roomcast.services.ai import TranscriptLine, transcript
from roomcast.services.task_queries import TaskView


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["native: tasks"], route_class=NativeRoute, responses=ERRORS)

    @router.get("/tasks", response_model=list[TaskView])
    async def list_tasks(
        t: TenantDep,
        app: Annotated[str | None, Query(description="Only this app (sdk_app_id or app_id).")] = None,
        room: Annotated[str | None, Query(description="Only this room.")] = None,
        kind: Annotated[str | None, Query(description="Only this kind, e.g. recording.")] = None,
        running: Annotated[bool, Query(description="Only tasks that have not ended.")] = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[TaskView]:
        """Tasks of the account's apps, newest first (files are listed by ``GET /tasks/{id}``)."""
        q = t.tasks()
        ids = await t.sdk_app_ids(app)
        return await q.list(sdk_app_ids=ids, room_id=room, kind=kind, unfinished=running, limit=limit)

    @router.get("/tasks/{task_id}", response_model=TaskView)
    async def get_task(task_id: str, t: TenantDep) -> TaskView:
        """One task with its state (idle, running, stopping, exited and why) and its files."""
        found = await t.tasks().get(task_id, sdk_app_ids=await t.sdk_app_ids())
        if found is None:
            raise NotFound(f"task {task_id} does not exist", subject="task")
        return found

    @router.get(
        "/tasks/{task_id}/files/{index}/download",
        response_class=FileResponse,
        responses={200: {"content": {"application/octet-stream": {}}, "description": "The file."}},
    )
    async def download(task_id: str, index: int, t: TenantDep) -> FileResponse:
        """A file of the task (0-based, in the order of ``files``) as an attachment, while it is in
        the media library."""
        q = t.tasks()
        found = await q.get(task_id, sdk_app_ids=await t.sdk_app_ids())
        if found is None:
            raise NotFound(f"task {task_id} does not exist", subject="task")
        if not 0 <= index < len(found.files):
            raise NotFound(f"task {task_id} has no file {index}", subject="file")
        f = found.files[index]
        path = q.library_path(f.object_key) if f.storage == "library" and f.object_key else None
        if path is None:
            raise NotFound("the file is not in roomcast's media library (see its storage)", subject="file")
        return FileResponse(path, media_type=f.content_type, filename=path.name)

    @router.get("/tasks/{task_id}/transcript", response_model=list[TranscriptLine])
    async def get_transcript(task_id: str, t: TenantDep) -> list[TranscriptLine]:
        """The final sentences an AI transcription or conversation task recognized, in order:
        speaker, text and times (milliseconds from the task's start)."""
        found = await t.tasks().get(task_id, sdk_app_ids=await t.sdk_app_ids())
        if found is None:
            raise NotFound(f"task {task_id} does not exist", subject="task")
        return await transcript(t.rt.db.sessions, task_id)

    return router
