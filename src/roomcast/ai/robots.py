"""Robots in a room: a hidden transcriber, and a visible conversation agent that talks back.

A robot joins the room as a participant (its user id is unique in the room: joining again with it
replaces, so ends, the previous robot), reads the audio it follows in-process, and sends its
results as custom messages (cmd_id 1, see docs/signalling.md). CPU work (Opus, resampling, VAD,
offline ASR, espeak-ng, encoding) runs in the robot's own worker thread; the loop moves bytes and
talks HTTP. Failures of an endpoint (ASR, LLM, TTS) are reported to the room and to the owner
(``on_error``) and the robot carries on with the next sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from roomcast.ai import listen
from roomcast.ai.asr import AsrError, OfflineRecognizer, transcribe_remote
from roomcast.ai.llm import LlmError, complete
from roomcast.ai.tts import TtsError, synthesize
from roomcast.ai.voice import VoiceTrack
from roomcast.background import Background
from roomcast.domain import ai
from roomcast.log import event
from roomcast.net.urls import UrlPolicy
from roomcast.rtc.events import LeaveReason, TrackPublished
from roomcast.rtc.participant import Participant
from roomcast.rtc.room import RoomManager, default_identity
from roomcast.rtc.track import TrackKind

log = logging.getLogger("roomcast.ai.robots")

IDLE_CHECK_S = 1.0
LLM_ATTEMPTS = 2
TTS_ATTEMPTS = 2

FinalHandler = Callable[[str, str, float, float], Awaitable[None]]
"""(speaker, text, start_ms, end_ms): a final sentence, to store with the task."""
EndHandler = Callable[[str], Awaitable[None]]
"""(reason): the robot ended by itself (idle, replaced, removed, dismissed, stopped)."""
ErrorHandler = Callable[[str], Awaitable[None]]


_LEAVE_REASONS = {
    LeaveReason.REPLACED: "replaced",
    LeaveReason.REMOVED: "removed",
    LeaveReason.DISMISSED: "room_dismissed",
    LeaveReason.SERVER_SHUTDOWN: "server_shutdown",
}


class Robot:
    """What both robots share: joining, following audio tracks, idling out, custom messages."""

    hidden = True

    def __init__(
        self,
        manager: RoomManager,
        app_key: str,
        room_id: str,
        spec: ai.AiSpec,
        *,
        task_id: str,
        t0: float,
        policy: UrlPolicy,
        on_final: FinalHandler,
        on_end: EndHandler,
        on_error: ErrorHandler,
    ) -> None:
        self.manager = manager
        self.app_key, self.room_id = app_key, room_id
        self.spec = spec
        self.task_id = task_id
        self.t0 = t0
        self.policy = policy
        self._on_final, self._on_end, self._on_error = on_final, on_end, on_error
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"ai-{task_id[:8]}")
        # Final texts are decoded apart, so a long sentence never delays the audio path.
        self.recognition = ThreadPoolExecutor(1, thread_name_prefix=f"ai-asr-{task_id[:8]}")
        self.recognizer = OfflineRecognizer()
        self.background = Background(f"robot-{task_id[:8]}")
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
        self.participant: Participant | None = None
        self.listeners: dict[str, listen.Listener] = {}
        self._last_media = time.monotonic()
        self._utterances: dict[str, int] = {}  # last utterance number per speaker (round ids)
        self._ended = False
        self.finals = 0
        self.resumed = False  # taken over after a restart: the robot does not greet again
        self.asr_latency_ms = 0.0  # from the end of the last sentence to its final text

    @property
    def user_id(self) -> str:
        return self.spec.robot_user_id

    def follows(self, user_id: str) -> bool:
        target = self.spec.target_user_id
        return user_id != self.user_id and (target is None or user_id == target)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        identity = default_identity(self.app_key, self.room_id, self.user_id, hidden=self.hidden)
        self.participant = await self.manager.join(identity)
        self.participant.on_custom = self._custom_received
        await self._joined()
        self.background.spawn("watch", self._watch())
        self.background.spawn("idle", self._idle())
        events = self.manager.events.subscribe(room=(self.app_key, self.room_id), types=(TrackPublished,))
        self.background.spawn("tracks", self._tracks(events))
        for info in self.manager.list_tracks(self.app_key, self.room_id):
            if info.kind is TrackKind.AUDIO and self.follows(info.user_id):
                self._listen(info.user_id)

    async def _joined(self) -> None:
        """Subclasses: publish, greet."""

    async def stop(self) -> None:
        """Leave the room and release everything (idempotent)."""
        self._ended = True
        for lis in list(self.listeners.values()):
            await lis.stop()
        await self.background.close()
        p = self.participant
        if p is not None and p.active:
            await p.room.leave(p, LeaveReason.LEFT, "task stopped")
        await self.http.aclose()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.recognition.shutdown(wait=False, cancel_futures=True)

    async def _end(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        event(log, "ai.robot_ended", task_id=self.task_id, reason=reason)
        await self._on_end(reason)

    async def _watch(self) -> None:
        p = self.participant
        assert p is not None
        await p.closed.wait()
        if not self._ended:
            reason = _LEAVE_REASONS.get(p.leave_reason or LeaveReason.LEFT, "removed")
            await self._end(reason)

    async def _idle(self) -> None:
        """MaxIdleTime: the task ends when nobody else has published in the room for that long."""
        while not self._ended:
            await asyncio.sleep(IDLE_CHECK_S)
            tracks = self.manager.list_tracks(self.app_key, self.room_id)
            if any(t.user_id != self.user_id for t in tracks):
                self._last_media = time.monotonic()
            if time.monotonic() - self._last_media >= self.spec.max_idle_s:
                self.background.spawn("end-idle", self._end("idle"))
                return

    async def _tracks(self, events: Any) -> None:
        try:
            async for ev in events:
                if isinstance(ev, TrackPublished) and ev.kind is TrackKind.AUDIO and self.follows(ev.user_id):
                    self._listen(ev.user_id)
        finally:
            events.close()

    def _listen(self, user_id: str) -> None:
        old = self.listeners.get(user_id)
        if old is not None and old.task is not None and not old.task.done():
            # Published again (the old track ends) or told twice about one track: listen anew
            # once the current listener is done, to whatever track the user publishes then.
            self.background.spawn(f"relisten-{user_id}", self._relisten(user_id, old.task))
            return
        lis = listen.Listener(
            self.manager,
            self.app_key,
            self.room_id,
            user_id,
            t0=self.t0,
            executor=self.executor,
            background=self.background,
            silence_ms=self.spec.vad_silence_ms,
            offline=self.spec.asr.engine is ai.AsrEngine.OFFLINE,
            handler=self._speech,
            on_packet=self._packet,
            first=self._utterances.get(user_id, 0),
        )
        self.listeners[user_id] = lis
        lis.start()

    async def _relisten(self, user_id: str, previous: asyncio.Task[Any]) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(previous)
        current = self.listeners.get(user_id)
        if current is not None and current.task is not None and current.task is not previous:
            return  # another relisten won
        tracks = self.manager.list_tracks(self.app_key, self.room_id)
        if not self._ended and any(t.user_id == user_id and t.kind is TrackKind.AUDIO for t in tracks):
            self._listen(user_id)

    def _packet(self) -> None:
        self._last_media = time.monotonic()

    # -- speech in ---------------------------------------------------------------------------------
    async def _speech(self, user: str, ev: listen.SpeechEvent) -> None:
        round_id = f"{user}-{ev.n}"
        if isinstance(ev, listen.SpeechStarted):
            self._utterances[user] = ev.n
            await self._speaking(user)
            return
        if isinstance(ev, listen.Partial):
            await self.send(ai.subtitle(user, ev.text, ev.start_ms, ev.end_ms, round_id, end=False))
            return
        try:
            if self.spec.asr.engine is ai.AsrEngine.OFFLINE:
                loop = asyncio.get_running_loop()
                text = await loop.run_in_executor(self.recognition, self.recognizer.recognize, ev.pcm)
            else:
                text = await transcribe_remote(self.http, self.policy, self.spec.asr, ev.pcm)
        except AsrError as exc:
            await self.report_error("asr", str(exc))
            return
        if not text:
            return
        self.finals += 1
        await self.send(ai.subtitle(user, text, ev.start_ms, ev.end_ms, round_id, end=True))
        await self._on_final(user, text, ev.start_ms, ev.end_ms)
        self.asr_latency_ms = (time.time() - self.t0) * 1000 - ev.end_ms
        await self._sentence(user, text)

    async def _speaking(self, user: str) -> None:
        """A followed user started to speak (conversation: maybe interrupt)."""

    async def _sentence(self, user: str, text: str) -> None:
        """A followed user said ``text`` (conversation: answer)."""

    def _custom_received(self, sender: str, cmd_id: int, data: str) -> None:
        """A participant's custom message to the robot."""

    # -- messages out -----------------------------------------------------------------------------
    async def send(self, body: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self.manager.send_custom(
                self.app_key, self.room_id, self.user_id, ai.CMD_ID, json.dumps(body, ensure_ascii=False)
            )

    async def report_error(self, source: str, message: str) -> None:
        event(
            log,
            "ai.endpoint_failed",
            level=logging.WARNING,
            task_id=self.task_id,
            source=source,
            error=message,
        )
        await self.send(
            {
                "type": ai.MSG_ERROR,
                "sender": self.user_id,
                "receiver": [],
                "payload": {"code": source, "message": message},
            }
        )
        await self._on_error(f"{source}: {message}")


class TranscriptionRobot(Robot):
    hidden = True


_SENTENCE_END = re.compile(r"(?<=[.!?。！？;])\s+")


class ConversationRobot(Robot):
    """Listens to its target, asks the LLM, speaks the answer into the room."""

    hidden = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.spec, ai.ConversationSpec)
        self.conv: ai.ConversationSpec = self.spec
        self.voice = VoiceTrack(self.executor)
        self.history: list[dict[str, str]] = []
        self._turn: asyncio.Task[None] | None = None
        self._round_id = 0
        self.state = ai.RobotState.LISTENING
        self.interruptions = 0
        self._first_voice: float | None = None  # this round: seconds from a sentence to its speech

    async def _joined(self) -> None:
        p = self.participant
        assert p is not None
        await p.room.add_local_track(p, TrackKind.AUDIO, "audio/opus", self.voice, None)
        if self.conv.welcome and not self.resumed:
            self.background.spawn("welcome", self._say_text(self.conv.welcome, self._next_round()))

    async def stop(self) -> None:
        self.voice.stop()
        await super().stop()

    def update(self, spec: ai.ConversationSpec) -> None:
        self.spec = self.conv = spec

    def _next_round(self) -> str:
        self._round_id += 1
        return f"{self.user_id}-{self._round_id}"

    async def _state(self, state: ai.RobotState, round_id: str) -> None:
        self.state = state
        await self.send(
            {
                "type": ai.MSG_STATE,
                "sender": self.user_id,
                "receiver": [],
                "payload": {"roundid": round_id, "timestamp": int(time.time() * 1000), "state": int(state)},
            }
        )

    # -- interruption -----------------------------------------------------------------------------
    async def interrupt(self, why: str) -> bool:
        """Cut what the robot is saying or preparing; True if there was something."""
        busy = self._turn is not None and not self._turn.done()
        cut = self.voice.interrupt()
        if busy:
            assert self._turn is not None
            self._turn.cancel()
        if cut or busy:
            self.interruptions += 1
            event(log, "ai.interrupted", task_id=self.task_id, why=why)
            round_id = f"{self.user_id}-{self._round_id}"
            await self._state(ai.RobotState.INTERRUPTED, round_id)
            await self.send(ai.metric(self.user_id, "interruption", 0, round_id, int(time.time() * 1000)))
            return True
        return False

    async def _speaking(self, user: str) -> None:
        if self.conv.interrupt_mode is not ai.InterruptMode.SERVER:
            return
        lis = self.listeners.get(user)
        if lis is None:
            return
        # Watch this utterance: interrupt once the user has spoken InterruptSpeechDuration.
        self.background.spawn(f"barge-in-{user}", self._barge_in(lis))

    async def _barge_in(self, lis: listen.Listener) -> None:
        while lis.voiced_ms > 0:
            if lis.voiced_ms >= self.conv.interrupt_ms:
                if self.voice.speaking or (self._turn is not None and not self._turn.done()):
                    await self.interrupt("user speech")
                return
            await asyncio.sleep(0.05)

    def _custom_received(self, sender: str, cmd_id: int, data: str) -> None:
        if cmd_id != ai.INTERRUPT_CMD_ID or not self.follows(sender):
            return
        try:
            body = json.loads(data)
        except ValueError:
            return
        if isinstance(body, dict) and body.get("type") == ai.MSG_CLIENT_INTERRUPT:
            self.background.spawn("client-interrupt", self.interrupt("client"))

    # -- a turn -------------------------------------------------------------------------------------
    async def _sentence(self, user: str, text: str) -> None:
        if self.conv.llm is None:
            return
        if self._turn is not None and not self._turn.done():
            if self.conv.interrupt_mode is ai.InterruptMode.SERVER:
                await self.interrupt("new sentence")
            else:
                return  # mode 1: the robot finishes; the sentence is not answered
        self._turn = self.background.spawn("turn", self._answer(text))

    async def _answer(self, text: str) -> None:
        llm = self.conv.llm
        assert llm is not None
        round_id = self._next_round()
        await self._state(ai.RobotState.THINKING, round_id)
        messages: list[dict[str, str]] = []
        if llm.system_prompt:
            messages.append({"role": "system", "content": llm.system_prompt})
        messages += self.history[-2 * llm.history :] if llm.history > 0 else []
        messages.append({"role": "user", "content": text})
        answer = ""
        start_ms = (time.time() - self.t0) * 1000
        asked = time.monotonic()
        first_token: float | None = None
        self._first_voice = None
        for attempt in range(LLM_ATTEMPTS):
            answer = ""
            pending = ""
            try:
                async for piece in complete(self.http, self.policy, llm, messages):
                    if first_token is None:
                        first_token = time.monotonic() - asked
                    answer += piece
                    pending += piece
                    parts = _SENTENCE_END.split(pending)
                    for sentence in parts[:-1]:
                        await self._speak(sentence, round_id, answer, start_ms)
                    pending = parts[-1]
                if pending.strip():
                    await self._speak(pending, round_id, answer, start_ms)
                break
            except LlmError as exc:
                if answer or attempt == LLM_ATTEMPTS - 1:
                    await self.report_error("llm", str(exc))
                    await self._state(ai.RobotState.LISTENING, round_id)
                    return
                await asyncio.sleep(1.0)
        self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        end_ms = (time.time() - self.t0) * 1000
        await self.send(ai.subtitle(self.user_id, answer.strip(), start_ms, end_ms, round_id, end=True))
        if answer.strip():  # the transcript keeps both sides
            await self._on_final(self.user_id, answer.strip(), start_ms, end_ms)
        at = int(time.time() * 1000)
        for name, value in (
            ("asr_latency", self.asr_latency_ms),
            ("llm_first_token", (first_token or 0.0) * 1000),
            ("tts_first_frame_latency", (self._first_voice or 0.0) * 1000),
        ):
            await self.send(ai.metric(self.user_id, name, value, round_id, at))
        await self.voice.drained()
        await self._state(ai.RobotState.LISTENING, round_id)

    async def _speak(self, sentence: str, round_id: str, so_far: str, start_ms: float) -> None:
        sentence = sentence.strip()
        if not sentence:
            return
        began = time.monotonic()
        for attempt in range(TTS_ATTEMPTS):
            try:
                samples = await synthesize(
                    self.conv.tts, sentence, executor=self.executor, client=self.http, policy=self.policy
                )
                break
            except TtsError as exc:
                if attempt == TTS_ATTEMPTS - 1:
                    await self.report_error("tts", str(exc))
                    return
                await asyncio.sleep(0.5)
        if self._first_voice is None:
            self._first_voice = time.monotonic() - began
        await self.voice.say(samples)
        if self.state is not ai.RobotState.SPEAKING:
            await self._state(ai.RobotState.SPEAKING, round_id)
        now_ms = (time.time() - self.t0) * 1000
        await self.send(ai.subtitle(self.user_id, so_far.strip(), start_ms, now_ms, round_id, end=False))

    async def _say_text(self, text: str, round_id: str) -> None:
        start_ms = (time.time() - self.t0) * 1000
        await self._speak(text, round_id, text, start_ms)
        await self.send(
            ai.subtitle(self.user_id, text, start_ms, (time.time() - self.t0) * 1000, round_id, end=True)
        )
        await self.voice.drained()
        if not self.voice.speaking:
            await self._state(ai.RobotState.LISTENING, round_id)

    async def push_text(self, text: str, *, interrupt: bool, stop_after: bool) -> None:
        """ControlAIConversation ServerPushText: say ``text`` now (cutting in) or after the rest."""
        if interrupt:
            await self.interrupt("server push")
        round_id = self._next_round()
        task = self.background.spawn("push", self._say_text(text, round_id))
        if stop_after:
            self.background.spawn("stop-after-play", self._stop_after_play(task))

    async def _stop_after_play(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await self.voice.drained()
        await self._end("stopped")
