"""Tencent UserSig (TLSSigAPIv2): generation and verification.

A UserSig is ``base64url'(zlib(json))`` where the JSON holds ``TLS.ver`` ("2.0"),
``TLS.identifier``, ``TLS.sdkappid``, ``TLS.expire``, ``TLS.time``, optionally ``TLS.userbuf``
(standard base64) and ``TLS.sig``: base64 of HMAC-SHA256(key, content) with content::

    TLS.identifier:<user>\\nTLS.sdkappid:<app>\\nTLS.time:<t>\\nTLS.expire:<s>\\n[TLS.userbuf:<b64>\\n]

"base64url'" is Tencent's own alphabet: standard base64 with ``+ / =`` replaced by ``* - _``.
:func:`gen_usersig` reproduces the official Python ``TLSSigAPIv2`` output byte for byte (same key
order, ``json.dumps`` defaults, zlib default level). Pure stdlib, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import time
import zlib
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_EXPIRE_S",
    "UserSigError",
    "UserSigErrorReason",
    "UserSigInfo",
    "gen_usersig",
    "verify_usersig",
]

VERSION: Final = "2.0"
#: The SDK's default validity (180 days).
DEFAULT_EXPIRE_S: Final = 180 * 86400
#: Generous bounds that keep a hostile input from costing much (real sigs are ~200-400 chars).
MAX_SIG_CHARS: Final = 16_384
MAX_JSON_BYTES: Final = 65_536

_TO_STD = str.maketrans("*-_", "+/=")
_FROM_STD = str.maketrans("+/=", "*-_")


class UserSigErrorReason(enum.Enum):
    MALFORMED = "malformed"  # not a decodable TLSSigAPIv2 token
    WRONG_APP = "wrong_app"  # issued for another SDKAppID
    WRONG_USER = "wrong_user"  # issued for another user ID
    BAD_SIGNATURE = "bad_signature"  # HMAC does not verify with this app's key
    EXPIRED = "expired"  # TLS.time + TLS.expire is in the past


class UserSigError(Exception):
    """UserSig rejected; ``reason`` says why. The message never contains the key or the sig."""

    def __init__(self, reason: UserSigErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"UserSigError({self.reason.value!r}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class UserSigInfo:
    """The verified content of a UserSig."""

    sdk_app_id: int
    user_id: str
    issued_at: int
    expire_s: int
    userbuf: bytes | None
    version: str = VERSION

    @property
    def expires_at(self) -> int:
        return self.issued_at + self.expire_s


def _content(user_id: str, sdk_app_id: int, issued_at: int, expire_s: int, userbuf_b64: str | None) -> bytes:
    text = (
        f"TLS.identifier:{user_id}\nTLS.sdkappid:{sdk_app_id}\nTLS.time:{issued_at}\nTLS.expire:{expire_s}\n"
    )
    if userbuf_b64 is not None:
        text += f"TLS.userbuf:{userbuf_b64}\n"
    return text.encode("utf-8")


def _hmac_b64(key: str, content: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), content, hashlib.sha256).digest()).decode("ascii")


def gen_usersig(
    sdk_app_id: int,
    key: str,
    user_id: str,
    expire_s: int = DEFAULT_EXPIRE_S,
    userbuf: bytes | None = None,
    now: float | None = None,
) -> str:
    """Generate a UserSig valid for ``expire_s`` seconds from ``now`` (default: the current time)."""
    if expire_s < 0:
        raise ValueError("expire_s must not be negative")
    issued_at = int(time.time() if now is None else now)
    doc: dict[str, object] = {
        "TLS.ver": VERSION,
        "TLS.identifier": str(user_id),
        "TLS.sdkappid": int(sdk_app_id),
        "TLS.expire": int(expire_s),
        "TLS.time": issued_at,
    }
    userbuf_b64 = None if userbuf is None else base64.b64encode(userbuf).decode("ascii")
    if userbuf_b64 is not None:
        doc["TLS.userbuf"] = userbuf_b64
    doc["TLS.sig"] = _hmac_b64(
        key, _content(str(user_id), int(sdk_app_id), issued_at, int(expire_s), userbuf_b64)
    )
    compressed = zlib.compress(json.dumps(doc).encode("utf-8"))
    return base64.b64encode(compressed).decode("ascii").translate(_FROM_STD)


def _malformed(message: str) -> UserSigError:
    return UserSigError(UserSigErrorReason.MALFORMED, message)


def _int_field(doc: dict[str, object], name: str) -> int:
    value = doc.get(name)
    # Some ports write numbers as strings; accept plain decimal digits either way.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise _malformed(f"{name} is missing or not an integer")


def _decode(sig: str) -> dict[str, object]:
    if not isinstance(sig, str) or not sig or len(sig) > MAX_SIG_CHARS or not sig.isascii():
        raise _malformed("UserSig is empty, too long or not ASCII")
    text = sig.strip().translate(_TO_STD)
    text += "=" * (-len(text) % 4)  # tolerate stripped padding
    try:
        compressed = base64.b64decode(text, validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(compressed, MAX_JSON_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            raise _malformed("UserSig payload is truncated or too large")
        doc = json.loads(raw.decode("utf-8"))
    except UserSigError:
        raise
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError, RecursionError):
        raise _malformed("UserSig is not valid base64/zlib/JSON") from None
    if not isinstance(doc, dict):
        raise _malformed("UserSig payload is not a JSON object")
    return doc


def verify_usersig(
    sig: str,
    sdk_app_id: int,
    key: str,
    user_id: str,
    now: float | None = None,
) -> UserSigInfo:
    """Verify ``sig`` for this app and user; return its content or raise :class:`UserSigError`.

    Checks in order: format (MALFORMED), SDKAppID (WRONG_APP), identifier (WRONG_USER), HMAC
    (BAD_SIGNATURE), then expiry (EXPIRED: ``now > TLS.time + TLS.expire``), so that an expiry
    verdict is only given for a genuine token.
    """
    doc = _decode(sig)
    if doc.get("TLS.ver") != VERSION:
        raise _malformed("unsupported TLS.ver")
    identifier = doc.get("TLS.identifier")
    signature = doc.get("TLS.sig")
    if not isinstance(identifier, str) or not isinstance(signature, str):
        raise _malformed("TLS.identifier or TLS.sig missing")
    app = _int_field(doc, "TLS.sdkappid")
    issued_at = _int_field(doc, "TLS.time")
    expire_s = _int_field(doc, "TLS.expire")
    userbuf_b64 = doc.get("TLS.userbuf")
    if userbuf_b64 is not None and not isinstance(userbuf_b64, str):
        raise _malformed("TLS.userbuf is not a string")
    userbuf: bytes | None = None
    if userbuf_b64 is not None:
        try:
            userbuf = base64.b64decode(userbuf_b64, validate=True)
        except (binascii.Error, ValueError):
            raise _malformed("TLS.userbuf is not base64") from None

    if app != int(sdk_app_id):
        raise UserSigError(UserSigErrorReason.WRONG_APP, "UserSig was issued for another SDKAppID")
    if identifier != str(user_id):
        raise UserSigError(UserSigErrorReason.WRONG_USER, "UserSig was issued for another user")
    expected = _hmac_b64(key, _content(identifier, app, issued_at, expire_s, userbuf_b64))
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
        raise UserSigError(UserSigErrorReason.BAD_SIGNATURE, "UserSig signature does not verify")
    current = time.time() if now is None else now
    if current > issued_at + expire_s:
        raise UserSigError(UserSigErrorReason.EXPIRED, "UserSig has expired")
    return UserSigInfo(
        sdk_app_id=app, user_id=identifier, issued_at=issued_at, expire_s=expire_s, userbuf=userbuf
    )
