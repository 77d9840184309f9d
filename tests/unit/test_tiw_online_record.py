"""TIW online recording without a server: RecordControl to user filters, the recorded timeline,
the documented checks, and the AutoStopTimeout / 90-minute-pause watchdog."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from roomcast.api.tiw import online_record as orc
from roomcast.api.tiw.params import StartOnlineRecordParams, check, controls, mix_layout
from roomcast.api.trtc.errors import TrtcError
from roomcast.domain.task import Task, TaskFile, TaskState
from roomcast.media import sink as msink


def params(**fields: Any) -> StartOnlineRecordParams:
    return StartOnlineRecordParams.model_validate(
        {"SdkAppId": 1, "RoomId": 12, "RecordUserId": "tic_record_user_12_x", "RecordUserSig": "s", **fields}
    )


def test_record_control_to_filters() -> None:
    c = controls(params())
    assert c.whiteboard and c.substream and c.users.video.admits("anyone")
    c = controls(
        params(
            RecordControl={
                "Enabled": True,
                "DisableRecord": True,
                "StreamControls": [
                    {"StreamId": "teach", "DisableRecord": False, "DisableAudio": True},
                    {"StreamId": "tic_record_user", "DisableRecord": False},
                ],
            }
        )
    )
    assert c.whiteboard and not c.substream  # the global switch, except where a control says
    assert c.users.video.admits("teacher1") and not c.users.video.admits("student")
    assert not c.users.audio.admits("teacher1") and not c.users.audio.admits("student")
    c = controls(params(RecordControl={"Enabled": False, "DisableRecord": True}))
    assert c.users.video.admits("x")  # not enabled: ignored


def test_checks() -> None:
    def code(**fields: Any) -> str:
        with pytest.raises(TrtcError) as err:
            check(params(**fields))
        return err.value.code

    assert code(RoomId=0) == "InvalidParameter.RecordParameter"
    assert code(RecordUserId="tic_record_user_13_x") == "InvalidParameter.RecordParameter"
    assert code(RecordUserId="tic_record_user_12_" + "x" * 60) == "InvalidParameter.RecordParameter"
    assert code(Whiteboard={"Width": 1}) == "InvalidParameter.RecordParameter"
    assert code(Whiteboard={"InitParam": "[1]"}) == "InvalidParameter.RecordParameter"
    assert code(Whiteboard={"InitParam": '{"ratio": "wide"}'}) == "InvalidParameter.RecordParameter"
    assert code(RecordMode="VIDEO_GENERATION_MODE") == "InvalidParameter.RecordParameter"
    assert code(RecordControl={"Enabled": True, "PullSmallVideo": True}) == "InvalidParameter.RecordParameter"
    custom = {
        "Canvas": {"LayoutParams": {"Width": 100, "Height": 100}},
        "InputStreamList": [{"LayoutParams": {"X": 50, "Y": 0, "Width": 60, "Height": 10}}],
    }
    mix = {"Enabled": True, "Custom": custom}
    assert code(MixStream=mix, Extras=["MIX_STREAM"]) == "InvalidParameter.RecordParameter"  # outside
    check(params(MixStream={"Enabled": True, "ModelId": 1, "TeacherId": "t"}, Extras=["MIX_STREAM"]))
    layout = mix_layout(params(MixStream={"Enabled": True, "ModelId": 1, "TeacherId": "t"}))
    assert (layout.width, layout.height, layout.teacher) == (1320, 1224, "t")
    assert all(s.rect.x + s.rect.width <= 1320 and s.rect.y + s.rect.height <= 1224 for s in layout.slots)


def test_timeline() -> None:
    spans = orc.spans_of(1000, 10_000, [(3000, 5000), (8000, 12_000)])
    assert spans == [(1000, 3000), (5000, 8000)]
    assert orc.play_ms(spans, 1000) == 0
    assert orc.play_ms(spans, 4000) == 2000  # inside a pause: where the pause starts
    assert orc.play_ms(spans, 6000) == 3000
    assert orc.spans_of(1000, 1000, []) == []


# ------------------------------------------------------------------------------------ watchdog


def task(**request: Any) -> Task:
    return Task(
        task_id="t1",
        sdk_app_id=1,
        kind="recording",
        dialect="tiw",
        room_id="12",
        state=TaskState.RUNNING,
        created_at=datetime.fromtimestamp(0, UTC),
        started_at=datetime.fromtimestamp(0, UTC),
        spec={},
        request={
            "params": {
                "SdkAppId": 1,
                "RoomId": 12,
                "RecordUserId": "tic_record_user_12_x",
                "AutoStopTimeout": 300,
            },
            "board_room": "12",
            "pauses": [],
            **request,
        },
    )


@dataclass
class FakeTasks:
    current: Task

    async def get(self, sdk_app_id: int, task_id: str) -> Task:
        return self.current

    async def update_spec(self, task_id: str, spec: dict[str, Any], request: dict[str, Any]) -> None:
        self.current = replace(self.current, request=request)


@dataclass
class FakeService:
    tasks: FakeTasks
    stopped: list[msink.EndReason] = field(default_factory=list)

    def running(self, dialect: str) -> list[Task]:
        return [self.tasks.current] if not self.stopped else []

    async def stop(self, app: Any, task_id: str, reason: msink.EndReason) -> None:
        self.stopped.append(reason)


@dataclass
class FakeRuntime:
    tracks: list[str] = field(default_factory=list)
    last_op: int | None = None

    @property
    def tenancy(self) -> Any:
        rt = self

        class T:
            async def get_app(self, sdk_app_id: int) -> Any:
                return rt

        return T()

    @property
    def sfu(self) -> Any:
        rt = self

        class S:
            def list_tracks(self, app: str, room: str) -> list[str]:
                return rt.tracks

        return S()

    @property
    def whiteboard(self) -> Any:
        rt = self

        class W:
            async def last_op_ms(self, app: str, room: str) -> int | None:
                return rt.last_op

        return W()


async def test_autostop_counts_media_and_board_activity() -> None:
    svc = FakeService(FakeTasks(task()))
    rt = FakeRuntime(tracks=["t"])
    watch = orc.AutoStop(svc, rt)  # type: ignore[arg-type]
    await watch.tick(200_000)  # a publisher now
    rt.tracks = []
    rt.last_op = 450_000  # and a board operation later
    await watch.tick(700_000)
    assert svc.stopped == []  # 250 s since the last operation
    await watch.tick(750_001)
    assert svc.stopped == [msink.EndReason.IDLE]
    assert svc.tasks.current.request["finish_reason"] == "AUTO"


async def test_autostop_forces_a_long_pause() -> None:
    svc = FakeService(FakeTasks(task(pauses=[[1000, None]])))
    watch = orc.AutoStop(svc, FakeRuntime())  # type: ignore[arg-type]
    await watch.tick(1000 + 60 * 60 * 1000)
    assert svc.stopped == []  # paused an hour: no AUTO while paused
    await watch.tick(1000 + 91 * 60 * 1000)
    assert svc.stopped == [msink.EndReason.MAX_DURATION]
    assert svc.tasks.current.request["finish_reason"] == "FORCE_STOP"
    assert svc.tasks.current.request["pauses"][0][1] is not None


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def piece(key: str, user: str | None, stream: str, begin: int, end: int) -> TaskFile:
    return TaskFile(
        key=key,
        track_type="audio_video",
        content_type="video/mp4",
        begin_at=at(begin),
        end_at=at(end),
        duration_ms=end - begin,
        size=100,
        width=320,
        height=240,
        state="stored",
        user_id=user,
        stream=stream,
    )


def test_result_lists_times_interrupts_and_splices() -> None:
    t0 = 1_700_000_000_000
    base = task(pauses=[[t0 + 10_000, t0 + 15_000]], stop_ms=t0 + 30_000)
    base = replace(
        base,
        state=TaskState.EXITED,
        started_at=at(t0),
        request={**base.request, "params": {**base.request["params"], "Concat": {"Enabled": True}}},
    )
    files = [
        piece("t/a_camera_0.mp4", "alice", "camera", t0, t0 + 10_000),  # cut by the pause
        piece("t/a_camera_1.mp4", "alice", "camera", t0 + 15_000, t0 + 20_000),
        piece("t/a_camera_2.mp4", "alice", "camera", t0 + 24_000, t0 + 30_000),  # her network dropped
        piece("t/a_spliced.mp4", "alice", "camera:spliced", t0, t0 + 25_000),
        piece("t/wb.mp4", None, "whiteboard", t0, t0 + 25_000),
        piece("t/b_camera_0.mp4", "bob", "camera", t0 + 16_000, t0 + 30_000),
    ]
    r = orc.result(base, files, lambda key: f"http://x/{key}")
    assert r["Status"] == "FINISHED" and r["TotalTime"] == 25_000
    listed = {(v["UserId"], v["VideoType"], v["VideoPlayTime"]) for v in r["VideoInfos"]}
    # alice's pieces are replaced by her spliced video; bob (one piece) is listed as recorded.
    assert listed == {("alice", 0, 0), ("", 2, 0), ("bob", 0, 11_000)}
    assert r["Interrupts"] == [{"UserId": "alice", "Count": 1}]
    assert r["OmittedDurations"] == [
        {"VideoTime": 10_000, "PauseTime": t0 + 10_000, "ResumeTime": t0 + 15_000}
    ]
    assert all(v["VideoUrl"].startswith("http://x/t/") for v in r["VideoInfos"])
