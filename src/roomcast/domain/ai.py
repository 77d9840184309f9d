"""AI robots as tasks: what a transcription or a conversation robot does, vendor-neutral.

The spec is stored as versioned JSON in the task row. Keys (``api_key``) are sealed by the service
before the spec is stored and opened when a task is resumed; they are never logged.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from roomcast.domain.errors import InvalidArgument

KIND_TRANSCRIPTION = "transcription"
KIND_CONVERSATION = "conversation"
SPEC_VERSION = 1
SECRET_FIELDS = frozenset({"api_key"})

OFFLINE_ASR = "pocketsphinx"
OFFLINE_ASR_LANGUAGES = frozenset({"en", "en-US", "en-us"})
OFFLINE_TTS = "espeak"


class AsrEngine(enum.StrEnum):
    OFFLINE = "pocketsphinx"
    OPENAI = "openai"  # an OpenAI-compatible /v1/audio/transcriptions endpoint


class TtsEngine(enum.StrEnum):
    OFFLINE = "espeak"
    OPENAI = "openai"  # an OpenAI-compatible /v1/audio/speech endpoint


class InterruptMode(enum.IntEnum):
    SERVER = 0  # the robot stops talking when the user talks long enough
    CLIENT = 1  # only a client's interrupt message stops it


@dataclass(frozen=True)
class AsrConfig:
    engine: AsrEngine = AsrEngine.OFFLINE
    language: str | None = None  # None: the engine's own (offline: en-US)
    url: str | None = None
    model: str | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class LlmConfig:
    url: str
    model: str
    api_key: str = ""
    streaming: bool = True
    system_prompt: str | None = None
    history: int = 10  # earlier rounds sent along (user + assistant pairs)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class TtsConfig:
    engine: TtsEngine = TtsEngine.OFFLINE
    voice: str | None = None  # offline: an espeak-ng voice (default en-us+f3)
    speed: float = 1.0  # 1.0 = normal
    volume: float = 1.0  # gain
    url: str | None = None
    model: str | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class TranscriptionSpec:
    robot_user_id: str
    target_user_id: str | None = None  # None: every speaker in the room
    max_idle_s: int = 60
    session_id: str | None = None
    asr: AsrConfig = field(default_factory=AsrConfig)
    vad_silence_ms: int = 800


@dataclass(frozen=True)
class ConversationSpec:
    robot_user_id: str
    target_user_id: str | None
    llm: LlmConfig | None
    max_idle_s: int = 60
    session_id: str | None = None
    asr: AsrConfig = field(default_factory=AsrConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    welcome: str | None = None
    interrupt_mode: InterruptMode = InterruptMode.SERVER
    interrupt_ms: int = 500
    vad_silence_ms: int = 1000


AiSpec = TranscriptionSpec | ConversationSpec


def check_asr(asr: AsrConfig) -> None:
    if asr.engine is AsrEngine.OFFLINE and asr.language and asr.language not in OFFLINE_ASR_LANGUAGES:
        raise InvalidArgument(
            f"the offline recognizer knows en-US only, not {asr.language}; configure an "
            "OpenAI-compatible transcription endpoint for other languages",
            subject="asr_language",
        )
    if asr.engine is AsrEngine.OPENAI and not asr.url:
        raise InvalidArgument("a transcription endpoint needs its URL", subject="asr")


def spec_to_json(spec: AiSpec) -> dict[str, Any]:
    kind = KIND_TRANSCRIPTION if isinstance(spec, TranscriptionSpec) else KIND_CONVERSATION
    return {"v": SPEC_VERSION, "kind": kind, **dataclasses.asdict(spec)}


def _sub(cls: Any, data: Any) -> Any:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidArgument("bad stored AI spec", subject="spec")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def spec_from_json(data: dict[str, Any]) -> AiSpec:
    if data.get("v") != SPEC_VERSION:
        raise InvalidArgument(f"unknown AI spec version {data.get('v')!r}", subject="spec")
    body = {k: v for k, v in data.items() if k not in ("v", "kind")}
    asr = _sub(AsrConfig, body.pop("asr", None)) or AsrConfig()
    asr = dataclasses.replace(asr, engine=AsrEngine(asr.engine))
    if data.get("kind") == KIND_TRANSCRIPTION:
        spec: AiSpec = _sub(TranscriptionSpec, {**body, "asr": asr})
        return spec
    tts = _sub(TtsConfig, body.pop("tts", None)) or TtsConfig()
    tts = dataclasses.replace(tts, engine=TtsEngine(tts.engine))
    llm = _sub(LlmConfig, body.pop("llm", None))
    conv: ConversationSpec = _sub(ConversationSpec, {**body, "asr": asr, "tts": tts, "llm": llm})
    return dataclasses.replace(conv, interrupt_mode=InterruptMode(conv.interrupt_mode))


# -- the JSON carried in custom messages (cmd_id 1), documented in docs/signalling.md ----------
CMD_ID = 1
INTERRUPT_CMD_ID = 2
MSG_SUBTITLE = 10000
MSG_STATE = 10001
MSG_ERROR = 10002
MSG_METRIC = 10020
MSG_CLIENT_INTERRUPT = 20001


class RobotState(enum.IntEnum):
    LISTENING = 1
    THINKING = 2
    SPEAKING = 3
    INTERRUPTED = 4


def metric(sender: str, name: str, value_ms: float, round_id: str, at_ms: int) -> dict[str, Any]:
    """A conversation round's latency (``asr_latency``, ``llm_first_token``,
    ``tts_first_frame_latency``, ``interruption``)."""
    return {
        "type": MSG_METRIC,
        "sender": sender,
        "receiver": [],
        "payload": {"metric": name, "value": int(value_ms), "roundid": round_id, "timestamp": at_ms},
    }


def clock(ms: float) -> str:
    s = max(0, int(ms // 1000))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def subtitle(
    sender: str, text: str, start_ms: float, end_ms: float, round_id: str, *, end: bool
) -> dict[str, Any]:
    return {
        "type": MSG_SUBTITLE,
        "sender": sender,
        "receiver": [],
        "payload": {
            "text": text,
            "start_time": clock(start_ms),
            "end_time": clock(end_ms),
            "start_ms": int(start_ms),
            "end_ms": int(end_ms),
            "roundid": round_id,
            "end": end,
        },
    }
