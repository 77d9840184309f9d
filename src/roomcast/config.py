"""Settings: defaults that just work, then a TOML file, then ``ROOMCAST_*`` variables, then CLI flags.

The data directory holds everything a node owns: the SQLite database (unless a URL is given), the
local object store, the media library and the secret key that encrypts credentials at rest.
"""

from __future__ import annotations

import os
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "ROOMCAST_CONFIG"


class Settings(BaseSettings):
    """Everything configurable about one roomcast node."""

    model_config = SettingsConfigDict(env_prefix="ROOMCAST_", extra="forbid", validate_default=True)

    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    database_url: str | None = None
    """SQLAlchemy async URL; ``None`` means an SQLite file in the data directory."""
    redis_url: str | None = None
    """Redis URL (``redis://host:6379/0``). With it and a PostgreSQL ``database_url``, every node
    started with the same two URLs is part of one service: rooms are placed on nodes, joins and
    room calls are routed to the room's node, throttling is shared. ``None``: a single node."""
    redis_key_prefix: str = "roomcast"
    """Prefix of every Redis key and channel (several services may share one Redis)."""
    rpc_timeout_s: float = Field(default=5.0, gt=0)
    """How long a call sent to another node (moderation, task start) may take."""
    storage_dir: Path | None = None
    """Local object store; ``None`` means ``<data_dir>/storage``."""
    public_url: str | None = None
    """Base URL clients use to reach this node (media library links); derived from host/port if unset."""
    s3_endpoint: str | None = None
    """Send every S3-compatible storage target to this endpoint (self-hosted MinIO/Ceph, tests)."""
    log_level: str = "info"
    log_format: str = "json"
    """``json`` (one object per line) or ``text``."""
    dev_mode: bool = False
    """Lets the browser client fetch join tokens without a signed request. Never in production."""
    signature_window_s: int = Field(default=300, ge=1)
    """How far a signed request's timestamp may be from the server clock."""
    max_participants_per_room: int = Field(default=50, ge=1)
    max_rooms: int = Field(default=1000, ge=1)
    empty_room_grace_s: float = Field(default=30.0, ge=0)
    """How long an empty room stays open (a quick rejoin keeps its session)."""
    stats_interval_s: float = Field(default=5.0, ge=0)
    """How often per-track quality samples are taken (0 turns sampling off)."""
    stats_flush_s: float = Field(default=5.0, gt=0)
    """How often usage minutes, quality counts and derived events are written."""
    stats_timezone: str = "UTC"
    """IANA time zone whose midnights start the days of daily statistics (scale per day, usage
    per day); whole-hour offsets only (usage is kept in hour buckets). Tencent uses Asia/Shanghai."""
    max_recordings: int = Field(default=100, ge=0)
    """Concurrent recording tasks per node (beyond: the vendor's "restricted concurrency" error)."""
    recording_capacity: float | None = Field(default=None, gt=0)
    """CPU cores recordings may use (admission control); default 80 % of the machine's cores."""
    library_janitor_interval_s: float = Field(default=60.0, gt=0)
    """How often expired media-library files are deleted."""
    ice_host_addresses: list[str] | None = None
    """Host ICE candidates to offer (e.g. ["127.0.0.1"] on a loopback-only box); default: all."""
    node_lease_s: float = Field(default=15.0, ge=1)
    """A node's heartbeat lease: past it, another node takes over its tasks, uploads and sessions."""
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    """SIGTERM: how long finalizing recordings and running uploads may take before the process exits
    (what is left stays queued in the database for the next start)."""
    max_ingests: int = Field(default=20, ge=0)
    """Concurrent stream ingest tasks per node (beyond: the vendor's "restricted concurrency" error)."""
    ingest_retries: int = Field(default=3, ge=0)
    """A failing ingest source is reopened this many times (backoff 1, 2, 4, 8 s) before the task
    ends as failed; a source that played 5 s resets the count."""
    upload_max_attempts: int = Field(default=8, ge=1)
    """Transient upload errors retry with backoff this many times; then the file is kept in the
    media library (backup storage) and reported with its library URL."""
    max_ai_robots: int = Field(default=20, ge=0)
    """Concurrent AI transcription and conversation robots per node."""
    asr_url: str | None = None
    """An OpenAI-compatible speech-to-text endpoint (the full ``.../v1/audio/transcriptions`` URL)
    for AI robots; unset: offline pocketsphinx (en-US)."""
    asr_model: str | None = None
    """The model name sent to ``asr_url`` (default ``whisper-1``)."""
    asr_api_key: str | None = None
    """The key sent to ``asr_url`` as a bearer token."""
    allow_private_urls: bool = False
    """Let tenant-supplied URLs (images, callback URLs) reach loopback, private, link-local and
    metadata addresses. Off in production; tests turn it on."""
    url_fetch_timeout_s: float = Field(default=5.0, gt=0)
    """Time limit for fetching a tenant-supplied image."""
    url_fetch_max_bytes: int = Field(default=10_000_000, ge=1024)
    """Size limit for a tenant-supplied image."""
    retention_samples_days: float = Field(default=14.0, ge=0)
    """Per-track quality samples and client telemetry older than this are deleted (0: keep
    forever). The call-quality APIs answer for this many days back."""
    retention_aggregates_days: float = Field(default=400.0, ge=0)
    """Usage and quality buckets older than this are deleted (0: keep forever)."""
    retention_events_days: float = Field(default=30.0, ge=0)
    """Room events and closed room/user sessions older than this are deleted (0: keep forever)."""
    retention_callbacks_days: float = Field(default=7.0, ge=0)
    """Delivered or abandoned callbacks older than this are deleted (0: keep forever)."""
    retention_uploads_days: float = Field(default=7.0, ge=0)
    """Finished upload rows older than this are deleted (0: keep forever)."""
    retention_interval_s: float = Field(default=3600.0, gt=0)
    """How often the retention job runs."""
    tiw_s3_bucket: str | None = None
    """TIW online recordings go to this S3-compatible bucket (written with the node's own S3
    credentials, ``AWS_ACCESS_KEY_ID``...); unset: the media library."""
    tiw_s3_vendor: str = "tencent"
    tiw_s3_region: str | None = None
    tiw_s3_prefix: str = ""

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be debug, info, warning or error")
        return v

    @field_validator("log_format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v not in {"json", "text"}:
            raise ValueError("log_format must be json or text")
        return v

    @model_validator(mode="after")
    def _cluster(self) -> Settings:
        if self.redis_url and not (self.database_url or "").startswith("postgresql"):
            raise ValueError("redis_url (several nodes) needs a PostgreSQL database_url shared by the nodes")
        return self

    @field_validator("stats_timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            zone = ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"stats_timezone: unknown time zone {v!r}") from None
        probes = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 7)]
        if any((p.astimezone(zone).utcoffset() or timedelta()) % timedelta(hours=1) for p in probes):
            raise ValueError("stats_timezone: only zones with whole-hour offsets are supported")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # CLI flags (init) beat the environment, which beats the TOML file (passed as init too,
        # see load_settings), which beats the defaults.
        return (init_settings, env_settings)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'roomcast.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "storage").resolve()

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir.resolve() / "secret.key"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
        return f"http://{host}:{self.port}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ValueError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from exc
    # Accept both a flat file and one with a [roomcast] table.
    section = raw.get("roomcast", raw)
    if not isinstance(section, dict):
        raise ValueError(f"config file {path}: [roomcast] must be a table")
    return dict(section)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from a TOML file (or ``$ROOMCAST_CONFIG``), the environment and overrides.

    ``overrides`` are CLI flags; ``None`` values are ignored so unset flags fall through.
    """
    file_values: dict[str, Any] = {}
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is not None:
        file_values = _read_toml(path)
    env_keys = {k[len("ROOMCAST_") :].lower() for k in os.environ if k.startswith("ROOMCAST_")}
    # The environment must win over the file: drop file values the environment sets.
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**merged)
