"""A local IAM stand-in: ``POST /v3/auth/tokens`` issues tokens that SparkRTC calls accept.

The password method's user is an API key pair: ``user.name`` = SecretId/AK, ``user.password`` =
SecretKey/SK; ``domain.name`` (optional) must then be the account's name or account id. Scope may be
the project (by id = X-Project-Id, or by any name: a self-hosted node has one project per tenant)
or the domain. Tokens are self-contained (HMAC-signed, so they survive restarts), valid for 24 h,
and stop working as soon as their key is revoked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from roomcast.api.sparkrtc.errors import SparkError, unauthorized
from roomcast.domain.tenancy import Credentials, KeyStatus
from roomcast.runtime import Runtime

TOKEN_TTL_S = 24 * 3600
IAM_BODY_LIMIT = 64 * 1024
_PREFIX = "MII"


@dataclass(frozen=True)
class TokenClaims:
    account_id: str
    project_id: str
    secret_id: str
    issued_at: int
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(rt: Runtime) -> bytes:
    return rt.box.derive("sparkrtc-iam-token")


def issue_token(rt: Runtime, creds: Credentials, now: float | None = None) -> tuple[str, TokenClaims]:
    issued = int(now if now is not None else time.time())
    claims = TokenClaims(creds.account_id, creds.project_id, creds.secret_id, issued, issued + TOKEN_TTL_S)
    payload = json.dumps(
        {
            "a": claims.account_id,
            "p": claims.project_id,
            "k": claims.secret_id,
            "i": issued,
            "e": claims.expires_at,
        },
        separators=(",", ":"),
    ).encode()
    sig = hmac.new(_key(rt), payload, hashlib.sha256).digest()
    return f"{_PREFIX}{_b64(payload)}.{_b64(sig)}", claims


async def verify_token(rt: Runtime, token: str, now: float | None = None) -> Credentials:
    """The key pair a token was issued for, if the token is genuine, unexpired and its key active."""
    try:
        if not token.startswith(_PREFIX):
            raise ValueError
        body, sig = token[len(_PREFIX) :].split(".", 1)
        payload = _unb64(body)
        if not hmac.compare_digest(hmac.new(_key(rt), payload, hashlib.sha256).digest(), _unb64(sig)):
            raise ValueError
        data = json.loads(payload)
        expires = int(data["e"])
        secret_id = str(data["k"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise unauthorized("invalid token") from None
    if (now if now is not None else time.time()) >= expires:
        raise unauthorized("token expired")
    creds = await rt.tenancy.lookup_credentials(secret_id)
    if creds is None or creds.status is not KeyStatus.ACTIVE:
        raise unauthorized("token key revoked")
    return creds


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "000Z"


def iam_bad_request(msg: str) -> SparkError:
    return SparkError(400, "IAM.0011", f"Request parameter error: {msg}")


def _field(parent: dict[str, Any], name: str, kind: type, *, required: bool = False, path: str = "") -> Any:
    """``parent[name]`` if it has type ``kind``; absent is None (or an error if ``required``)."""
    value = parent.get(name)
    if value is None:
        if required:
            raise iam_bad_request(f"{path}{name} is missing")
        return None
    if not isinstance(value, kind):
        raise iam_bad_request(f"{path}{name} must be {'an object' if kind is dict else 'a string'}")
    return value


async def password_auth(rt: Runtime, body: Any) -> tuple[str, dict[str, Any]]:
    """Check an IAM ``auth`` request; return the token and the response body."""
    if not isinstance(body, dict):
        raise iam_bad_request("the body must be a JSON object")
    auth = _field(body, "auth", dict, required=True)
    identity = _field(auth, "identity", dict, required=True, path="auth.")
    if identity.get("methods") != ["password"]:
        raise iam_bad_request('auth.identity.methods must be ["password"]')
    password = _field(identity, "password", dict, required=True, path="auth.identity.")
    user = _field(password, "user", dict, required=True, path="auth.identity.password.")
    name = _field(user, "name", str, required=True, path="auth.identity.password.user.")
    secret = _field(user, "password", str, required=True, path="auth.identity.password.user.")
    domain = _field(user, "domain", dict, path="auth.identity.password.user.")
    domain_name = _field(domain or {}, "name", str, path="auth.identity.password.user.domain.")
    scope = _field(auth, "scope", dict, path="auth.")
    scoped = _field(scope or {}, "project", dict, path="auth.scope.")
    pid = _field(scoped or {}, "id", str, path="auth.scope.project.")
    pname = _field(scoped or {}, "name", str, path="auth.scope.project.")
    creds = await rt.tenancy.lookup_credentials(name)
    if (
        creds is None
        or creds.status is not KeyStatus.ACTIVE
        or not hmac.compare_digest(creds.secret_key.encode(), secret.encode())
    ):
        raise SparkError(401, "IAM.0002", "The username or password is wrong.")
    account = await rt.tenancy.get_account(creds.account_id)
    if domain_name not in (None, account.name, account.account_id):
        raise SparkError(401, "IAM.0002", "The username or password is wrong.")
    project: dict[str, Any] | None = None
    if scoped is not None:
        if pid is not None and pid != account.project_id:
            raise iam_bad_request("unknown project")
        project = {"id": account.project_id, "name": pname or account.project_id}
    token, claims = issue_token(rt, creds)
    result: dict[str, Any] = {
        "token": {
            "expires_at": _iso(claims.expires_at),
            "issued_at": _iso(claims.issued_at),
            "methods": ["password"],
            "user": {
                "id": creds.secret_id,
                "name": creds.secret_id,
                "domain": {"id": account.account_id, "name": account.name},
            },
            "domain": {"id": account.account_id, "name": account.name},
            "catalog": [],
            "roles": [{"id": "0", "name": "rtc_adm"}],
        }
    }
    if project is not None:
        result["token"]["project"] = {**project, "domain": {"id": account.account_id, "name": account.name}}
        del result["token"]["domain"]
    return token, result
