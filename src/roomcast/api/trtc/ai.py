"""TRTC AI actions: Start/Describe/StopAITranscription and Start/Describe/Stop/Update/
ControlAIConversation, on :class:`roomcast.services.ai.AiService`.

Choices where the docs leave room (see docs/ai-status.md): LLMConfig is an OpenAI-compatible
chat-completions endpoint (LLMType ``openai``; SystemPrompt, History, Timeout as in Tencent's
guides); TTSConfig is ``{"TTSType": "openai", "APIUrl", "APIKey", "Model", "Voice", "Speed",
"Volume"}`` (an OpenAI-compatible /v1/audio/speech) or ``{"TTSType": "espeak", "Voice"}`` (offline,
also the default without TTSConfig); the cloud-only ``tencent`` TTS answers NotAbility. Speech
recognition is offline pocketsphinx (en-US) unless the server sets a transcription endpoint, or
the request does: RecognizeConfig.Model / STTConfig.CustomParam may hold
``{"STTType": "openai", "APIUrl", "APIKey", "Model"}``. Fields the SDK knows but roomcast does
not act on (avatars, translation, voice print, hot words, ...) are accepted and ignored.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.gateway import Action, ActionContext, ActionRegistry
from roomcast.api.trtc.params import Params
from roomcast.domain import ai
from roomcast.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from roomcast.domain.task import Task, TaskState
from roomcast.rtc.errors import AuthError
from roomcast.services.ai import AiService
from roomcast.services.join_tokens import JoinAuthenticator

DIALECT = "trtc"
STATUS = {
    TaskState.IDLE: "Preparing",
    TaskState.RUNNING: "InProgress",
    TaskState.STOPPING: "Stopped",
    TaskState.EXITED: "Stopped",
}
LANGUAGES = frozenset(
    [
        "zh",
        "zh-TW",
        "zh-dialect",
        "en",
        "vi",
        "ja",
        "ko",
        "id",
        "th",
        "pt",
        "tr",
        "ar",
        "es",
        "hi",
        "fr",
        "ms",
        "fil",
        "de",
        "it",
        "ru",
        "sv",
        "da",
        "no",
        "en-US",
        "zh-CN",
    ]
)
TASK_NOT_EXIST = "FailedOperation.TaskNotExist"


class _Loose(BaseModel):
    """Nested SDK structures: documented fields typed, newer SDK fields accepted."""

    model_config = ConfigDict(extra="allow")


class AgentConfigModel(_Loose):
    UserId: str = Field(min_length=1, max_length=128)
    UserSig: str = Field(min_length=1)
    TargetUserId: str | None = Field(default=None, max_length=128)
    MaxIdleTime: int = Field(default=60, ge=1, le=86400)
    WelcomeMessage: str | None = Field(default=None, max_length=2000)
    InterruptMode: int = Field(default=0, ge=0, le=1)
    InterruptSpeechDuration: int = Field(default=500, ge=0, le=10000)


class STTConfigModel(_Loose):
    Language: str | None = None
    AlternativeLanguage: list[str] | None = Field(default=None, max_length=3)
    VadSilenceTime: int = Field(default=1000, ge=240, le=2000)
    CustomParam: str | None = None

    _lang = field_validator("Language")(classmethod(lambda cls, v: _language(v)))


class TranscriptionParamsModel(_Loose):
    UserId: str = Field(min_length=1, max_length=128)
    UserSig: str = Field(min_length=1)
    MaxIdleTime: int = Field(default=60, ge=1, le=86400)
    TranscriptionMode: int = Field(default=0, ge=0, le=1)
    TargetUserId: str | None = Field(default=None, max_length=128)


class RecognizeConfigModel(_Loose):
    Language: str | None = None
    AlternativeLanguage: list[str] | None = Field(default=None, max_length=3)
    Model: str | None = None

    _lang = field_validator("Language")(classmethod(lambda cls, v: _language(v)))


class ServerPushTextModel(_Loose):
    Text: str | None = Field(default=None, max_length=2000)
    Interrupt: bool = False
    StopAfterPlay: bool = False


def _language(v: str | None) -> str | None:
    if v is not None and v not in LANGUAGES:
        raise ValueError(f"unknown language {v!r}")
    return v


class StartAIConversationParams(Params):
    SdkAppId: int
    RoomId: str = Field(min_length=1, max_length=64)
    AgentConfig: AgentConfigModel
    SessionId: str | None = Field(default=None, max_length=256)
    RoomIdType: int = Field(default=0, ge=0, le=1)
    STTConfig: STTConfigModel | None = None
    LLMConfig: str | None = None
    TTSConfig: str | None = None
    AvatarConfig: Any = None
    ExperimentalParams: str | None = None


class DescribeAIConversationParams(Params):
    SdkAppId: int | None = None
    TaskId: str | None = None
    SessionId: str | None = None


class TaskIdParams(Params):
    TaskId: str = Field(max_length=256)


class UpdateAIConversationParams(Params):
    TaskId: str = Field(max_length=256)
    WelcomeMessage: str | None = Field(default=None, max_length=2000)
    InterruptMode: int | None = Field(default=None, ge=0, le=1)
    InterruptSpeechDuration: int | None = Field(default=None, ge=0, le=10000)
    LLMConfig: str | None = None
    TTSConfig: str | None = None


class ControlAIConversationParams(Params):
    TaskId: str = Field(max_length=256)
    Command: str
    ServerPushText: ServerPushTextModel | None = None


class StartAITranscriptionParams(Params):
    SdkAppId: int
    RoomId: str = Field(min_length=1, max_length=64)
    TranscriptionParams: TranscriptionParamsModel
    SessionId: str | None = Field(default=None, max_length=256)
    RoomIdType: int = Field(default=0, ge=0, le=1)
    RecognizeConfig: RecognizeConfigModel | None = None
    TranslationConfig: Any = None


class DescribeAITranscriptionParams(Params):
    TaskId: str = Field(max_length=256)
    SdkAppId: int | None = None
    SessionId: str | None = None


# -- JSON configs ----------------------------------------------------------------------------------
def _json_object(text: str, field: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise TrtcError("InvalidParameterValue", f"`{field}` is not a JSON object.") from None
    if not isinstance(data, dict):
        raise TrtcError("InvalidParameterValue", f"`{field}` is not a JSON object.")
    return data


def _str(data: dict[str, Any], key: str, field: str, *, required: bool = False) -> str | None:
    v = data.get(key)
    if v is None or v == "":
        if required:
            raise TrtcError("InvalidParameterValue", f"`{field}.{key}` is required.")
        return None
    if not isinstance(v, str):
        raise TrtcError("InvalidParameterValue", f"`{field}.{key}` must be a string.")
    return v


def _num(data: dict[str, Any], key: str, field: str, default: float, lo: float, hi: float) -> float:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise TrtcError("InvalidParameterValue", f"`{field}.{key}` must be a number from {lo} to {hi}.")
    return float(v)


def llm_config(text: str) -> ai.LlmConfig:
    d = _json_object(text, "LLMConfig")
    kind = (_str(d, "LLMType", "LLMConfig") or "openai").lower()
    if kind != "openai":
        raise TrtcError(
            "FailedOperation.NotAbility", f"LLMType {kind} is not served; use an OpenAI-compatible one."
        )
    streaming = d.get("Streaming", True)
    if not isinstance(streaming, bool):
        raise TrtcError("InvalidParameterValue", "`LLMConfig.Streaming` must be a boolean.")
    return ai.LlmConfig(
        url=_str(d, "APIUrl", "LLMConfig", required=True) or "",
        model=_str(d, "Model", "LLMConfig", required=True) or "",
        api_key=_str(d, "APIKey", "LLMConfig") or "",
        streaming=streaming,
        system_prompt=_str(d, "SystemPrompt", "LLMConfig"),
        history=int(_num(d, "History", "LLMConfig", 10, 0, 50)),
        timeout_s=_num(d, "Timeout", "LLMConfig", 30, 1, 300),
    )


def tts_config(text: str | None) -> ai.TtsConfig:
    if text is None:
        return ai.TtsConfig()
    d = _json_object(text, "TTSConfig")
    kind = (_str(d, "TTSType", "TTSConfig") or "espeak").lower()
    speed = _num(d, "Speed", "TTSConfig", 1.0, 0.25, 4.0)
    volume = _num(d, "Volume", "TTSConfig", 1.0, 0.0, 10.0)
    if kind == "espeak":
        return ai.TtsConfig(voice=_str(d, "Voice", "TTSConfig"), speed=speed, volume=volume or 1.0)
    if kind == "openai":
        return ai.TtsConfig(
            engine=ai.TtsEngine.OPENAI,
            url=_str(d, "APIUrl", "TTSConfig", required=True),
            model=_str(d, "Model", "TTSConfig"),
            api_key=_str(d, "APIKey", "TTSConfig"),
            voice=_str(d, "Voice", "TTSConfig") or (str(d["VoiceType"]) if "VoiceType" in d else None),
            speed=speed,
            volume=volume or 1.0,
        )
    raise TrtcError("FailedOperation.NotAbility", f"TTSType {kind} is not served; use openai or espeak.")


def asr_config(language: str | None, custom: str | None) -> ai.AsrConfig | None:
    """The request's recognizer: an endpoint given as JSON, else None (the server's) with a language."""
    if custom and custom.lstrip().startswith("{"):
        d = _json_object(custom, "STTConfig")
        kind = (_str(d, "STTType", "STTConfig") or "openai").lower()
        if kind != "openai":
            raise TrtcError("FailedOperation.NotAbility", f"STTType {kind} is not served.")
        return ai.AsrConfig(
            engine=ai.AsrEngine.OPENAI,
            language=language,
            url=_str(d, "APIUrl", "STTConfig", required=True),
            model=_str(d, "Model", "STTConfig"),
            api_key=_str(d, "APIKey", "STTConfig"),
        )
    return ai.AsrConfig(language=language) if language else None


def _room_id(room_id: str, room_id_type: int) -> str:
    if room_id_type == 0 and not (room_id.isdigit() and 1 <= int(room_id) <= 4294967294):
        raise TrtcError(
            "InvalidParameterValue", "RoomId must be a number from 1 to 4294967294 when RoomIdType is 0."
        )
    return room_id


# -- handlers ----------------------------------------------------------------------------------------
def _service(ctx: ActionContext) -> AiService:
    svc: AiService | None = getattr(ctx.runtime, "ai", None)
    if svc is None:
        raise TrtcError("ResourceInsufficient.RequestRejection", "AI robots do not run on this node.")
    return svc


async def _check_sig(ctx: ActionContext, sdk_app_id: int, room_id: str, user_id: str, sig: str) -> None:
    try:
        await JoinAuthenticator(ctx.runtime.tenancy).authenticate(
            sig, app_id=str(sdk_app_id), room_id=room_id, user_id=user_id
        )
    except AuthError:
        raise TrtcError("InvalidParameter.UserSig", "UserSig is expired or wrong.") from None


def _start_errors(exc: Exception) -> TrtcError:
    if isinstance(exc, AlreadyExists):
        return TrtcError("FailedOperation.TaskExist", f"Task already exists: {exc.message}.")
    if isinstance(exc, LimitExceeded | Unavailable):
        return TrtcError("ResourceInsufficient.RequestRejection", f"Insufficient resources: {exc.message}.")
    if isinstance(exc, InvalidArgument) and exc.subject == "asr_language":
        return TrtcError("FailedOperation.NotAbility", exc.message)
    if isinstance(exc, InvalidArgument):
        return TrtcError("InvalidParameterValue", exc.message)
    if isinstance(exc, FailedPrecondition):
        return TrtcError("FailedOperation.NotAllowed", exc.message)
    raise exc


async def _start(
    ctx: ActionContext, sdk_app_id: int, room_id: str, spec: ai.AiSpec, request: dict[str, Any]
) -> dict[str, Any]:
    svc = _service(ctx)
    app = await ctx.app(sdk_app_id)
    spec = _with_asr(svc, spec)
    urls = [("LLMConfig.APIUrl", spec.llm.url)] if isinstance(spec, ai.ConversationSpec) and spec.llm else []
    if isinstance(spec, ai.ConversationSpec) and spec.tts.url:
        urls.append(("TTSConfig.APIUrl", spec.tts.url))
    if spec.asr.url:
        urls.append(("STTConfig.APIUrl", spec.asr.url))
    try:
        await ctx.runtime.url_policy.check_all(urls)
        task = await svc.start(app, room_id, spec, dialect=DIALECT, request=request)
    except (AlreadyExists, LimitExceeded, InvalidArgument, FailedPrecondition, Unavailable) as exc:
        raise _start_errors(exc) from None
    return {"TaskId": task.task_id}


def _with_asr(svc: AiService, spec: ai.AiSpec) -> ai.AiSpec:
    """The request's own recognizer (an endpoint, or a language), else the server's."""
    own = spec.asr if spec.asr.engine is ai.AsrEngine.OPENAI else (spec.asr if spec.asr.language else None)
    return dataclasses.replace(spec, asr=svc.asr_for(own))


async def start_conversation(ctx: ActionContext, p: StartAIConversationParams) -> dict[str, Any]:
    room_id = _room_id(p.RoomId, p.RoomIdType)
    a = p.AgentConfig
    await _check_sig(ctx, p.SdkAppId, room_id, a.UserId, a.UserSig)
    stt = p.STTConfig or STTConfigModel()
    spec = ai.ConversationSpec(
        robot_user_id=a.UserId,
        target_user_id=a.TargetUserId or None,
        llm=llm_config(p.LLMConfig) if p.LLMConfig else None,
        max_idle_s=a.MaxIdleTime,
        session_id=p.SessionId or None,
        asr=asr_config(stt.Language, stt.CustomParam) or ai.AsrConfig(),
        tts=tts_config(p.TTSConfig),
        welcome=a.WelcomeMessage or None,
        interrupt_mode=ai.InterruptMode(a.InterruptMode),
        interrupt_ms=a.InterruptSpeechDuration,
        vad_silence_ms=stt.VadSilenceTime,
    )
    request = {"SessionId": p.SessionId, "RoomIdType": p.RoomIdType}
    return await _start(ctx, p.SdkAppId, room_id, spec, request)


async def start_transcription(ctx: ActionContext, p: StartAITranscriptionParams) -> dict[str, Any]:
    room_id = _room_id(p.RoomId, p.RoomIdType)
    t = p.TranscriptionParams
    if t.TranscriptionMode == 1 and not t.TargetUserId:
        raise TrtcError(
            "MissingParameter", "`TranscriptionParams.TargetUserId` is required when TranscriptionMode is 1."
        )
    await _check_sig(ctx, p.SdkAppId, room_id, t.UserId, t.UserSig)
    rc = p.RecognizeConfig or RecognizeConfigModel()
    spec = ai.TranscriptionSpec(
        robot_user_id=t.UserId,
        target_user_id=t.TargetUserId if t.TranscriptionMode == 1 else None,
        max_idle_s=t.MaxIdleTime,
        session_id=p.SessionId or None,
        asr=asr_config(rc.Language, rc.Model) or ai.AsrConfig(),
    )
    request = {"SessionId": p.SessionId, "RoomIdType": p.RoomIdType}
    return await _start(ctx, p.SdkAppId, room_id, spec, request)


async def _owned(ctx: ActionContext, task: Task | None) -> Task:
    if task is None:
        raise TrtcError(TASK_NOT_EXIST, "The task does not exist.")
    try:
        await ctx.app(task.sdk_app_id)
    except TrtcError:
        raise TrtcError(TASK_NOT_EXIST, "The task does not exist.") from None
    return task


async def _by_id(ctx: ActionContext, task_id: str, kind: str) -> Task:
    if not task_id:
        raise TrtcError("InvalidParameter.TaskId", "TaskId parameter error.")
    return await _owned(ctx, await _service(ctx).find(task_id, (kind,)))


async def _describe(
    ctx: ActionContext, kind: str, task_id: str | None, sdk_app_id: int | None, session_id: str | None
) -> dict[str, Any]:
    svc = _service(ctx)
    if task_id:
        task = await _by_id(ctx, task_id, kind)
    elif sdk_app_id is not None and session_id:
        await ctx.app(sdk_app_id)
        task = await _owned(ctx, await svc.find_session(sdk_app_id, session_id, kind))
    else:
        raise TrtcError("InvalidParameter.TaskId", "Give TaskId, or SdkAppId and SessionId.")
    started = task.started_at or task.created_at
    out: dict[str, Any] = {
        "StartTime": started.strftime("%Y-%m-%d %H:%M:%S"),
        "Status": STATUS[task.state],
        "TaskId": task.task_id,
    }
    session = task.request.get("SessionId")
    if session:
        out["SessionId"] = session
    return out


async def describe_conversation(ctx: ActionContext, p: DescribeAIConversationParams) -> dict[str, Any]:
    return await _describe(ctx, ai.KIND_CONVERSATION, p.TaskId, p.SdkAppId, p.SessionId)


async def describe_transcription(ctx: ActionContext, p: DescribeAITranscriptionParams) -> dict[str, Any]:
    return await _describe(ctx, ai.KIND_TRANSCRIPTION, p.TaskId, p.SdkAppId, p.SessionId)


async def _stop(ctx: ActionContext, task_id: str, kind: str) -> dict[str, Any]:
    task = await _by_id(ctx, task_id, kind)
    if task.state in (TaskState.STOPPING, TaskState.EXITED):
        raise TrtcError(TASK_NOT_EXIST, "The task has already stopped.")
    try:
        await _service(ctx).stop(task)
    except NotFound:
        raise TrtcError(TASK_NOT_EXIST, "The task does not exist.") from None
    return {}


async def stop_conversation(ctx: ActionContext, p: TaskIdParams) -> dict[str, Any]:
    return await _stop(ctx, p.TaskId, ai.KIND_CONVERSATION)


async def stop_transcription(ctx: ActionContext, p: TaskIdParams) -> dict[str, Any]:
    return await _stop(ctx, p.TaskId, ai.KIND_TRANSCRIPTION)


async def update_conversation(ctx: ActionContext, p: UpdateAIConversationParams) -> dict[str, Any]:
    task = await _by_id(ctx, p.TaskId, ai.KIND_CONVERSATION)
    changes: dict[str, Any] = {
        "welcome": p.WelcomeMessage,
        "interrupt_mode": ai.InterruptMode(p.InterruptMode) if p.InterruptMode is not None else None,
        "interrupt_ms": p.InterruptSpeechDuration,
        "llm": llm_config(p.LLMConfig) if p.LLMConfig else None,
        "tts": tts_config(p.TTSConfig) if p.TTSConfig else None,
    }
    urls = [
        (f, c.url)
        for f, c in (("LLMConfig.APIUrl", changes["llm"]), ("TTSConfig.APIUrl", changes["tts"]))
        if c is not None and c.url
    ]
    try:
        await ctx.runtime.url_policy.check_all(urls)
        await _service(ctx).update(task, **changes)
    except InvalidArgument as exc:
        raise TrtcError("InvalidParameterValue", exc.message) from None
    except NotFound:
        raise TrtcError(TASK_NOT_EXIST, "The task does not exist or has stopped.") from None
    return {}


async def control_conversation(ctx: ActionContext, p: ControlAIConversationParams) -> dict[str, Any]:
    task = await _by_id(ctx, p.TaskId, ai.KIND_CONVERSATION)
    if p.Command != "ServerPushText":
        raise TrtcError(
            "InvalidParameterValue", f"Command {p.Command!r} is not supported; use ServerPushText."
        )
    push = p.ServerPushText
    if push is None or not push.Text:
        raise TrtcError(
            "MissingParameter", "`ServerPushText.Text` is required for the ServerPushText command."
        )
    try:
        await _service(ctx).push_text(
            task, push.Text, interrupt=push.Interrupt, stop_after=push.StopAfterPlay
        )
    except NotFound:
        raise TrtcError(TASK_NOT_EXIST, "The task does not exist or has stopped.") from None
    return {}


def register(registry: ActionRegistry) -> None:
    for name, model, handler, starts in (
        ("StartAIConversation", StartAIConversationParams, start_conversation, True),
        ("DescribeAIConversation", DescribeAIConversationParams, describe_conversation, False),
        ("StopAIConversation", TaskIdParams, stop_conversation, False),
        ("UpdateAIConversation", UpdateAIConversationParams, update_conversation, False),
        ("ControlAIConversation", ControlAIConversationParams, control_conversation, False),
        ("StartAITranscription", StartAITranscriptionParams, start_transcription, True),
        ("DescribeAITranscription", DescribeAITranscriptionParams, describe_transcription, False),
        ("StopAITranscription", TaskIdParams, stop_transcription, False),
    ):
        registry.add(DIALECT, Action(name, model, handler, rate_per_s=20, starts_task=starts))
