"""Who calls the native API: an account, by one of its key pairs or by a console session.

A key pair is sent as HTTP Basic credentials (``secret_id:secret_key``). The console signs in
once with a key pair (``POST /api/v1/session``) and then sends an HttpOnly, SameSite=Strict
cookie; sessions live in the server's memory (a restart signs everyone out) and end after
:data:`SESSION_TTL_S` or when the key is revoked.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi import Request

from roomcast.domain.errors import Unauthenticated
from roomcast.domain.tenancy import KeyStatus
from roomcast.runtime import Runtime

SESSION_COOKIE = "roomcast_session"
SESSION_TTL_S = 12 * 3600


@dataclass(frozen=True)
class Principal:
    account_id: str
    project_id: str
    secret_id: str


@dataclass
class _Session:
    secret_id: str
    expires: float


class SessionStore:
    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}

    def open(self, secret_id: str) -> str:
        now = time.monotonic()
        for sid in [k for k, v in self._sessions.items() if v.expires <= now]:
            del self._sessions[sid]
        token = secrets.token_urlsafe(32)
        self._sessions[token] = _Session(secret_id, now + SESSION_TTL_S)
        return token

    def secret_id(self, token: str) -> str | None:
        s = self._sessions.get(token)
        if s is None or s.expires <= time.monotonic():
            return None
        return s.secret_id

    def close(self, token: str) -> None:
        self._sessions.pop(token, None)


def sessions(request: Request) -> SessionStore:
    store: SessionStore | None = getattr(request.app.state, "native_sessions", None)
    if store is None:
        store = SessionStore()
        request.app.state.native_sessions = store
    return store


def basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    secret_id, sep, secret_key = decoded.partition(":")
    return (secret_id, secret_key) if sep and secret_id else None


async def check_key(rt: Runtime, secret_id: str, secret_key: str) -> Principal:
    """The account behind an active key pair; the same error for every kind of mismatch."""
    creds = await rt.tenancy.lookup_credentials(secret_id)
    if (
        creds is None
        or creds.status is not KeyStatus.ACTIVE
        or not hmac.compare_digest(creds.secret_key.encode(), secret_key.encode())
    ):
        raise Unauthenticated("the secret id or secret key is wrong (or the key is revoked)", subject="key")
    return Principal(creds.account_id, creds.project_id, creds.secret_id)


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the calling account (401 without valid credentials)."""
    rt: Runtime = request.app.state.runtime
    basic = basic_credentials(request.headers.get("authorization", ""))
    if basic is not None:
        return await check_key(rt, *basic)
    token = request.cookies.get(SESSION_COOKIE)
    secret_id = sessions(request).secret_id(token) if token else None
    if secret_id is not None:
        creds = await rt.tenancy.lookup_credentials(secret_id)
        if creds is not None and creds.status is KeyStatus.ACTIVE:
            return Principal(creds.account_id, creds.project_id, creds.secret_id)
    raise Unauthenticated("sign in: HTTP Basic with a key pair, or a console session", subject="session")
