"""Tenants (accounts), their API keys and their apps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class KeyStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class AppState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"


MAX_APPS_PER_ACCOUNT = 20
"""Default per-tenant app quota (SparkRTC documents 20)."""


@dataclass(frozen=True)
class Account:
    account_id: str
    project_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    secret_id: str
    account_id: str
    status: KeyStatus
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Credentials:
    """A key pair as handed out once at creation, or looked up to verify a signature."""

    account_id: str
    project_id: str
    secret_id: str
    secret_key: str = field(repr=False)
    status: KeyStatus = KeyStatus.ACTIVE


@dataclass(frozen=True)
class App:
    app_id: str
    sdk_app_id: int
    account_id: str
    name: str
    state: AppState
    app_key: str = field(repr=False)
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    auth_enabled: bool = True
    auth_expire_s: int = 300
    auth_updated_at: datetime | None = None
    callback_url: str | None = None
    callback_key: str | None = field(default=None, repr=False)
    callback_events: tuple[str, ...] = ()
    callback_updated_at: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self.state is AppState.ENABLED
