"""Huawei Cloud AK/SK request signatures (``SDK-HMAC-SHA256``), as ``huaweicloudsdkcore`` signs them.

Pure functions, no I/O. Mirrors ``huaweicloudsdkcore.signer.signer.Signer``:

* CanonicalURI: the path percent-decoded, split on ``/``, each segment ``quote(safe="~")``, with a
  trailing ``/`` appended;
* CanonicalQueryString: pairs sorted by name then value, both ``quote(safe="~")``;
* CanonicalHeaders: every header named in ``SignedHeaders`` (the SDK signs all the headers it sets,
  User-Agent included), ``name:value.strip()``;
* payload: ``sha256("")`` for an empty body, else the ``X-Sdk-Content-Sha256`` header value when
  present (the SDK sends ``UNSIGNED-PAYLOAD`` for non-JSON bodies), else ``sha256(body)``;
* signature: ``hex(HMAC-SHA256(SK, "SDK-HMAC-SHA256\\n" + X-Sdk-Date + "\\n" + sha256hex(canonical)))``,
  the SK used directly (no key derivation).

Header values given as ``str`` are treated as the ISO-8859-1 decoding of the wire bytes (what
ASGI servers and ``http.server`` hand out); the SDK sends UTF-8 bytes the same way.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, unquote

from roomcast.api.authheader import AuthorizationHeaderError, find_header, split_authorization, wire_bytes

__all__ = [
    "ALGORITHM",
    "DEFAULT_WINDOW_S",
    "SDK_DATE_FORMAT",
    "UNSIGNED_PAYLOAD",
    "HttpRequest",
    "SdkAuthorization",
    "SignatureError",
    "SignatureReason",
    "canonical_query_string",
    "canonical_request",
    "canonical_uri",
    "check_sdk_date",
    "format_sdk_date",
    "parse_authorization",
    "parse_sdk_date",
    "sign",
    "signature",
    "string_to_sign",
    "verify",
]

ALGORITHM: Final = "SDK-HMAC-SHA256"
SDK_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
#: The SparkRTC doc only says "check clock skew"; Huawei's API gateway allows 15 minutes.
DEFAULT_WINDOW_S: Final = 900.0
#: Headers that must be covered by the signature (sparkrtc spec 1.4: X-Sdk-Date signed, Host mandatory).
REQUIRED_SIGNED_HEADERS: Final = frozenset({"host", "x-sdk-date"})
_EMPTY_HASH: Final = hashlib.sha256(b"").hexdigest()
_CONTENT_HASH_HEADER: Final = "X-Sdk-Content-Sha256"

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_SDK_DATE = re.compile(r"\d{8}T\d{6}Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^`|~0-9a-z-]+")  # lower-case, and no "_" (the SDK skips those)


class SignatureReason(enum.Enum):
    """Why a request was rejected, for the gateway to map to an HTTP status and error body."""

    MISSING = "missing"  # no Authorization or no X-Sdk-Date
    MALFORMED = "malformed"  # unparsable Authorization / X-Sdk-Date, required header not signed
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"  # e.g. SDK-HMAC-SM3, V11-HMAC-SHA256
    EXPIRED = "expired"  # X-Sdk-Date outside the window
    MISMATCH = "mismatch"  # signature does not match (tampered request or wrong SK)


class SignatureError(Exception):
    """A request failed AK/SK authentication. The message never contains secrets."""

    def __init__(self, reason: SignatureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"SignatureError({self.reason.value!r}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The parts of an HTTP request that the signature covers.

    ``path`` and ``query`` are raw, as received (percent-encoded, no ``?``).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    query: str = ""

    def header(self, name: str) -> str | None:
        return find_header(self.headers, name)


@dataclass(frozen=True, slots=True)
class SdkAuthorization:
    """A parsed ``Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex``."""

    access_key: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)
    algorithm: str = ALGORITHM

    def header_value(self) -> str:
        return (
            f"{self.algorithm} Access={self.access_key}, "
            f"SignedHeaders={';'.join(self.signed_headers)}, Signature={self.signature}"
        )


def _quote(value: str) -> str:
    return quote(value, safe="~")


def _unquote(value: str) -> str:
    try:
        return unquote(value, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise SignatureError(SignatureReason.MALFORMED, "URL is not valid percent-encoded UTF-8") from None


# --------------------------------------------------------------------------------------------------
# X-Sdk-Date


def format_sdk_date(when: datetime | float | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ`` in UTC (default: now)."""
    if when is None:
        when = time.time()
    if isinstance(when, int | float):
        when = datetime.fromtimestamp(when, UTC)
    elif when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime(SDK_DATE_FORMAT)


def parse_sdk_date(value: str | None) -> datetime:
    """Parse ``X-Sdk-Date`` (UTC). Raises MISSING or MALFORMED."""
    if value is None or not value.strip():
        raise SignatureError(SignatureReason.MISSING, "X-Sdk-Date is missing")
    text = value.strip()
    if not _SDK_DATE.fullmatch(text):
        raise SignatureError(SignatureReason.MALFORMED, "X-Sdk-Date is not YYYYMMDDTHHMMSSZ")
    try:
        return datetime.strptime(text, SDK_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError(SignatureReason.MALFORMED, "X-Sdk-Date is not a valid date") from None


def check_sdk_date(
    value: str | datetime, *, now: float | None = None, window_s: float = DEFAULT_WINDOW_S
) -> datetime:
    """Raise ``SignatureError(EXPIRED)`` if the date is more than ``window_s`` from ``now`` either way."""
    when = parse_sdk_date(value) if isinstance(value, str) else value
    current = time.time() if now is None else now
    if abs(current - when.timestamp()) > window_s:
        raise SignatureError(SignatureReason.EXPIRED, f"X-Sdk-Date is outside the {window_s:g}s window")
    return when


# --------------------------------------------------------------------------------------------------
# canonical form


def parse_authorization(value: str | None) -> SdkAuthorization:
    """Parse an SDK-HMAC-SHA256 Authorization header. Raises MISSING, UNSUPPORTED_ALGORITHM, MALFORMED."""
    try:
        fields = split_authorization(value, ALGORITHM, ("Access", "SignedHeaders", "Signature"))
    except AuthorizationHeaderError as exc:
        raise SignatureError(SignatureReason[exc.problem.name], exc.message) from None
    access, signed, sig = fields["Access"], fields["SignedHeaders"], fields["Signature"]
    if not access:
        raise SignatureError(SignatureReason.MALFORMED, "Access is empty")
    headers = tuple(signed.split(";"))
    if not all(_HEADER_NAME.fullmatch(h) for h in headers) or len(set(headers)) != len(headers):
        raise SignatureError(SignatureReason.MALFORMED, "SignedHeaders must be distinct lower-case names")
    if not set(headers) >= REQUIRED_SIGNED_HEADERS:
        raise SignatureError(SignatureReason.MALFORMED, "SignedHeaders must include host and x-sdk-date")
    if not _HEX64.fullmatch(sig):
        raise SignatureError(SignatureReason.MALFORMED, "Signature is not 64 hex digits")
    return SdkAuthorization(access_key=access, signed_headers=headers, signature=sig.lower())


def canonical_uri(path: str) -> str:
    """Decode, split on ``/``, ``quote(safe="~")`` each segment, and end with ``/``."""
    uri = "/".join(_quote(segment) for segment in _unquote(path or "/").split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query_string(query: str) -> str:
    """Decode the raw query, sort by (name, value) and re-encode with ``quote(safe="~")``."""
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((_unquote(name), _unquote(value)))
    pairs.sort()
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs)


def _payload_hash(request: HttpRequest, *, allow_unsigned_payload: bool) -> str:
    if not request.body:
        return _EMPTY_HASH
    declared = request.header(_CONTENT_HASH_HEADER)
    if declared is None:
        return hashlib.sha256(request.body).hexdigest()
    if declared == UNSIGNED_PAYLOAD:
        if not allow_unsigned_payload:
            raise SignatureError(SignatureReason.UNSUPPORTED_ALGORITHM, "unsigned payload is not accepted")
        return declared
    # The SDK signs the header value verbatim; any value other than UNSIGNED-PAYLOAD must be the
    # real body hash, otherwise the body would be unprotected.
    actual = hashlib.sha256(request.body).hexdigest()
    if not hmac.compare_digest(declared.strip().lower().encode("latin-1", "replace"), actual.encode()):
        raise SignatureError(SignatureReason.MISMATCH, "X-Sdk-Content-Sha256 does not match the body")
    return declared


def canonical_request(
    request: HttpRequest, signed_headers: Sequence[str], *, allow_unsigned_payload: bool = True
) -> bytes:
    """The CanonicalRequest as UTF-8/wire bytes, ready to hash."""
    lines: list[bytes] = []
    for name in signed_headers:
        value = request.header(name)
        if value is None:
            raise SignatureError(SignatureReason.MISMATCH, f"signed header {name!r} is not present")
        lines.append(name.lower().encode("ascii") + b":" + wire_bytes(value.strip()) + b"\n")
    return b"\n".join(
        [
            request.method.upper().encode("ascii"),
            canonical_uri(request.path).encode("ascii"),
            canonical_query_string(request.query).encode("ascii"),
            b"".join(lines),
            ";".join(h.lower() for h in signed_headers).encode("ascii"),
            _payload_hash(request, allow_unsigned_payload=allow_unsigned_payload).encode("latin-1"),
        ]
    )


def string_to_sign(sdk_date: str, canonical: bytes) -> str:
    return f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical).hexdigest()}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------------
# sign / verify


def sign(
    request: HttpRequest,
    *,
    access_key: str,
    secret_key: str,
    signed_headers: Sequence[str] | None = None,
) -> str:
    """Return the ``Authorization`` value for ``request``.

    The request must already carry ``Host`` and ``X-Sdk-Date`` (see :func:`format_sdk_date`). By
    default every header is signed except names containing ``_``, as the SDK does.
    """
    sdk_date = request.header("X-Sdk-Date")
    if sdk_date is None or request.header("Host") is None:
        raise ValueError("the request needs Host and X-Sdk-Date headers before signing")
    parse_sdk_date(sdk_date)
    if signed_headers is None:
        names = sorted({k.lower() for k in request.headers if "_" not in k and k.lower() != "authorization"})
    else:
        names = sorted({h.lower() for h in signed_headers})
    canonical = canonical_request(request, names)
    sig = signature(secret_key, string_to_sign(sdk_date.strip(), canonical))
    return SdkAuthorization(access_key=access_key, signed_headers=tuple(names), signature=sig).header_value()


def verify(
    request: HttpRequest,
    secret_key: str,
    *,
    auth: SdkAuthorization | None = None,
    now: float | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    allow_unsigned_payload: bool = True,
) -> SdkAuthorization:
    """Verify an SDK-HMAC-SHA256 request; return the parsed Authorization.

    ``auth`` is the result of :func:`parse_authorization` when the caller already parsed the header
    to look up the SK for ``auth.access_key``. Checks, in order: header syntax, X-Sdk-Date format,
    time window, signature.
    """
    if auth is None:
        auth = parse_authorization(request.header("Authorization"))
    when = check_sdk_date(parse_sdk_date(request.header("X-Sdk-Date")), now=now, window_s=window_s)
    canonical = canonical_request(request, auth.signed_headers, allow_unsigned_payload=allow_unsigned_payload)
    # The SDK re-formats the parsed date; the strict format check makes that the header text itself.
    expected = signature(secret_key, string_to_sign(format_sdk_date(when), canonical))
    if not hmac.compare_digest(expected.encode("ascii"), auth.signature.encode("ascii")):
        raise SignatureError(SignatureReason.MISMATCH, "signature does not match the request")
    return auth
