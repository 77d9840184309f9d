"""The authentication seam between signalling and whatever issues tokens.

Signalling never checks tokens itself: it calls an injected
:class:`Authenticator` (signed join tokens, JWT, ...) with the bearer/join token and the
claims the client made, and gets back an :class:`Identity` or an
:class:`~roomcast.rtc.errors.AuthError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .errors import AuthError

__all__ = ["AuthError", "Authenticator", "Identity", "Permission", "StaticTokenAuthenticator"]


class Permission(enum.StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    DRAW = "draw"  # change the room's whiteboard (everyone may see it)


ALL_PERMISSIONS = frozenset(Permission)


@dataclass(frozen=True)
class Identity:
    app_key: str
    room_id: str
    user_id: str
    permissions: frozenset[Permission] = field(default=ALL_PERMISSIONS)
    hidden: bool = False  # e.g. a recorder bot: not announced, not counted toward room limits
    client_ip: str | None = None  # filled in by signalling, for the session record
    user_agent: str | None = None
    join_started: float | None = None  # Unix time the client started joining (signalling connect)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


@runtime_checkable
class Authenticator(Protocol):
    async def authenticate(self, token: str, *, app_id: str, room_id: str, user_id: str) -> Identity:
        """Return the identity the token grants for these claims, or raise AuthError."""
        ...


class StaticTokenAuthenticator:
    """Accepts one fixed token for any claims. For tests and local bots only."""

    def __init__(self, token: str, permissions: frozenset[Permission] = ALL_PERMISSIONS) -> None:
        self._token = token
        self._permissions = permissions

    async def authenticate(self, token: str, *, app_id: str, room_id: str, user_id: str) -> Identity:
        if token != self._token or not app_id or not room_id or not user_id:
            raise AuthError("invalid token")
        return Identity(app_key=app_id, room_id=room_id, user_id=user_id, permissions=self._permissions)
