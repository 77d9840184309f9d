"""Videos made from a finished recording and the room's whiteboard: the whiteboard video, each
user's pieces spliced into one video, and the mixed class video (whiteboard and cameras).

A dialect (TIW online recording) describes what it wants with a :class:`ClassVideoPlan` (no
vendor names) and the recorded spans (wall-clock ms, pauses left out); :meth:`ClassVideos.make`
renders in worker threads and queues each video for upload like a recorded file
(:meth:`RecordingService.queue_file`), so it is stored, reported and listed with the task.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roomcast.domain.layout import Rect
from roomcast.domain.task import Task, TaskFile
from roomcast.media.class_video import (
    BOARD,
    ClassLayout,
    Clip,
    Slot,
    compose_class_video,
    probe_video_size,
)
from roomcast.media.images import ImageFetcher
from roomcast.media.whiteboard import BoardRenderer, VideoResult, write_board_video
from roomcast.services.recordings import RecordingService
from roomcast.services.whiteboard import WhiteboardService
from roomcast.storage.target import StorageTarget

log = logging.getLogger("roomcast.class_videos")

__all__ = [
    "BOARD",
    "MIX",
    "SPLICED",
    "WHITEBOARD",
    "ClassLayout",
    "ClassVideoPlan",
    "ClassVideos",
    "Slot",
    "recorded_clips",
]

SPLICED = ":spliced"
"""Suffix of the ``stream`` of a spliced video (``camera:spliced``, ``screen:spliced``)."""
WHITEBOARD = "whiteboard"
MIX = "mix"

Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class ClassVideoPlan:
    board_room: str
    board_width: int
    board_height: int
    ratio: tuple[int, int]
    whiteboard: bool = True
    """Make the whiteboard video."""
    splice: bool = False
    """One whiteboard / mixed video over all spans, and each user's pieces spliced (with the
    filler image, black without one, where a user has no video); otherwise one per span."""
    filler_url: str | None = None
    mix: ClassLayout | None = None
    """The mixed video's layout (None: no mixed video)."""
    mix_user_id: str | None = None
    mix_audio: bool = True
    screen_source: str = "{user}:screen"
    """How a user's screen share is named for the mix layout's slots."""


def _ms(at: datetime | None) -> int | None:
    return int(at.timestamp() * 1000) if at is not None else None


def recorded_clips(files: list[TaskFile]) -> list[TaskFile]:
    """The users' video files still on this node's disk (their local copies were kept)."""
    return [
        f
        for f in files
        if f.key.endswith(".mp4")
        and f.user_id
        and (f.stream or "camera") in ("camera", "screen")
        and f.local_path
        and Path(f.local_path).exists()
    ]


class ClassVideos:
    def __init__(self, boards: WhiteboardService, settings: Any) -> None:
        self.boards = boards
        self.images = ImageFetcher.from_settings(settings)  # the node's URL policy and limits
        self.root = Path(settings.data_dir).resolve() / "recordings" / "class"

    async def _image(self, url: str | None) -> Any:
        return await self.images.fetch(url) if url else None

    async def _queue(
        self,
        svc: RecordingService,
        task: Task,
        target: StorageTarget,
        res: VideoResult,
        *,
        begin_ms: int,
        stream: str,
        user_id: str | None,
        has_audio: bool,
    ) -> None:
        f = TaskFile(
            key=f"{task.task_id}/{res.path.name}",
            track_type="audio_video" if has_audio else "video",
            content_type="video/mp4",
            begin_at=datetime.fromtimestamp(begin_ms / 1000, UTC),
            end_at=datetime.fromtimestamp((begin_ms + res.duration_ms) / 1000, UTC),
            duration_ms=res.duration_ms,
            size=res.size,
            width=res.width,
            height=res.height,
            state="uploading",
            user_id=user_id,
            stream=stream,
            local_path=str(res.path),
        )
        await svc.queue_file(task.task_id, target, res.path, f)

    async def make(
        self,
        svc: RecordingService,
        task: Task,
        files: list[TaskFile],
        target: StorageTarget,
        plan: ClassVideoPlan,
        spans: Spans,
    ) -> list[str]:
        """Make and queue the plan's videos; returns the problems the caller should report
        (the videos are made anyway, without what failed)."""
        problems: list[str] = []
        if not spans:
            return problems
        groups = [spans] if plan.splice else [[s] for s in spans]
        ops = await self.boards.ops(str(task.sdk_app_id), plan.board_room, until_ms=spans[-1][1])
        backgrounds = {str(o["url"]) for o in ops if o.get("url")}
        images = {u: img for u in backgrounds if (img := await self._image(u)) is not None}
        if len(images) < len(backgrounds):
            problems.append("some whiteboard background images could not be fetched")
        out = self.root / task.task_id
        if plan.whiteboard:
            for g in groups:
                renderer = BoardRenderer(plan.board_width, plan.board_height, plan.ratio, images=images.get)
                path = out / f"whiteboard_{g[0][0]}.mp4"
                res = await asyncio.to_thread(write_board_video, path, ops, g, renderer)
                await self._queue(
                    svc, task, target, res, begin_ms=g[0][0], stream=WHITEBOARD, user_id=None, has_audio=False
                )
        clips = await asyncio.to_thread(recorded_clips, files)
        if plan.splice:
            filler = await self._image(plan.filler_url)
            if filler is None and plan.filler_url:
                problems.append("the filler image could not be fetched; black is used")
            await self._splice(svc, task, target, clips, spans, filler, out)
        if plan.mix is not None:
            layout = plan.mix
            if not plan.whiteboard:
                layout = replace(layout, slots=tuple(s for s in layout.slots if s.source != BOARD))
            sources = [
                Clip(
                    plan.screen_source.format(user=f.user_id) if f.stream == "screen" else str(f.user_id),
                    Path(str(f.local_path)),
                    _ms(f.begin_at) or spans[0][0],
                )
                for f in clips
            ]
            for g in groups:
                path = out / f"mix_{g[0][0]}.mp4"
                res = await asyncio.to_thread(
                    compose_class_video,
                    path,
                    layout,
                    sources,
                    g,
                    board_ops=ops,
                    ratio=plan.ratio,
                    images=images,
                    audio=plan.mix_audio,
                )
                await self._queue(
                    svc,
                    task,
                    target,
                    res,
                    begin_ms=g[0][0],
                    stream=MIX,
                    user_id=plan.mix_user_id,
                    has_audio=plan.mix_audio,
                )
        return problems

    async def _splice(
        self,
        svc: RecordingService,
        task: Task,
        target: StorageTarget,
        clips: list[TaskFile],
        spans: Spans,
        filler: Any,
        out: Path,
    ) -> None:
        """Each user's stream in more than one piece: one video over the spans."""
        by_stream: dict[tuple[str, str], list[TaskFile]] = {}
        for f in clips:
            by_stream.setdefault((str(f.user_id), f.stream or "camera"), []).append(f)
        for (user, stream), segs in sorted(by_stream.items()):
            if len(segs) < 2:
                continue
            segs.sort(key=lambda f: f.begin_at)
            size = await asyncio.to_thread(probe_video_size, Path(str(segs[0].local_path)))
            if size is None:
                continue
            w, h = size[0] + size[0] % 2, size[1] + size[1] % 2
            layout = ClassLayout(w, h, (Slot(Rect(0, 0, w, h), user),), filler=True)
            sources = [Clip(user, Path(str(f.local_path)), _ms(f.begin_at) or 0) for f in segs]
            path = out / f"{user}_{stream}_spliced.mp4"
            res = await asyncio.to_thread(
                compose_class_video, path, layout, sources, spans, filler=filler, audio=True
            )
            await self._queue(
                svc,
                task,
                target,
                res,
                begin_ms=spans[0][0],
                stream=f"{stream}{SPLICED}",
                user_id=user,
                has_audio=True,
            )
