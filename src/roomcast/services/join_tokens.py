"""Room-join tokens: Tencent UserSig (TLSSigAPIv2) and a native JWT, both signed with the app key.

The SFU's signalling calls :class:`JoinAuthenticator` for every join (WebSocket, WHIP, WHEP). A
join names an app by its ``sdk_app_id`` (digits) or its ``app_id``; the room namespace inside the
SFU is always the ``sdk_app_id`` so both spellings reach the same room.

Native JWT (HS256, key = app key) claims:
``iss`` = sdk_app_id, ``sub`` = user id, ``room`` = room id (absent or ``"*"``: any room),
``exp``/``iat``, optional ``perm`` (list of ``publish``/``subscribe``/``draw``, default all three: a
list without ``draw`` lets the user see the whiteboard but not change it) and
``hidden`` (a recorder or relay bot that others do not see).
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from roomcast.domain.errors import NotFound
from roomcast.domain.tenancy import App
from roomcast.rtc.auth import ALL_PERMISSIONS, Identity, Permission
from roomcast.rtc.errors import AuthError
from roomcast.rtc.usersig import UserSigError, gen_usersig, verify_usersig
from roomcast.services.tenancy import TenancyService

MAX_EXPIRE_S = 180 * 86400
USER_ID_MAX = 128
ROOM_ID_MAX = 128


def issue_usersig(app: App, user_id: str, expire_s: int = 86400) -> str:
    return gen_usersig(app.sdk_app_id, app.app_key, user_id, expire_s)


def issue_jwt(
    app: App,
    user_id: str,
    *,
    room_id: str | None = None,
    expire_s: int = 86400,
    permissions: frozenset[Permission] = ALL_PERMISSIONS,
    hidden: bool = False,
    now: float | None = None,
) -> str:
    iat = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": str(app.sdk_app_id),
        "sub": user_id,
        "room": room_id or "*",
        "iat": iat,
        "exp": iat + expire_s,
        "perm": sorted(p.value for p in permissions),
    }
    if hidden:
        claims["hidden"] = True
    return jwt.encode(claims, app.app_key, algorithm="HS256")


def _looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


class JoinAuthenticator:
    """Checks join tokens against the app's key; implements :class:`roomcast.rtc.auth.Authenticator`."""

    def __init__(self, tenancy: TenancyService, *, now: Any = time.time) -> None:
        self._tenancy = tenancy
        self._now = now

    async def _app(self, app_id: str) -> App:
        if not app_id:
            raise AuthError("app id is missing")
        ref: str | int = int(app_id) if app_id.isdigit() and len(app_id) <= 10 else app_id
        try:
            app = await self._tenancy.get_app(ref)
        except NotFound:
            raise AuthError("unknown app") from None
        if not app.enabled:
            raise AuthError("the app is disabled")
        return app

    async def authenticate(self, token: str, *, app_id: str, room_id: str, user_id: str) -> Identity:
        if not user_id or len(user_id) > USER_ID_MAX or any(ord(c) < 32 for c in user_id):
            raise AuthError("invalid user id")
        if not room_id or len(room_id) > ROOM_ID_MAX or any(ord(c) < 32 for c in room_id):
            raise AuthError("invalid room id")
        if not token:
            raise AuthError("a join token is required")
        app = await self._app(app_id)
        permissions = ALL_PERMISSIONS
        hidden = False
        if _looks_like_jwt(token):
            try:
                claims = jwt.decode(
                    token,
                    app.app_key,
                    algorithms=["HS256"],
                    options={"require": ["exp", "sub", "iss"]},
                    leeway=5,
                )
            except jwt.ExpiredSignatureError:
                raise AuthError("the token has expired") from None
            except jwt.PyJWTError:
                raise AuthError("the token is not valid for this app") from None
            if claims.get("iss") != str(app.sdk_app_id) or claims.get("sub") != user_id:
                raise AuthError("the token was issued for another app or user")
            if claims.get("room", "*") not in ("*", room_id):
                raise AuthError("the token was issued for another room")
            perm = claims.get("perm")
            if perm is not None:
                try:
                    permissions = frozenset(Permission(p) for p in perm)
                except (ValueError, TypeError):
                    raise AuthError("the token carries unknown permissions") from None
            hidden = bool(claims.get("hidden", False))
        else:
            try:
                verify_usersig(token, app.sdk_app_id, app.app_key, user_id, now=self._now())
            except UserSigError as exc:
                raise AuthError(f"UserSig rejected: {exc.reason.value}") from None
        return Identity(
            app_key=str(app.sdk_app_id),
            room_id=room_id,
            user_id=user_id,
            permissions=permissions,
            hidden=hidden,
        )
