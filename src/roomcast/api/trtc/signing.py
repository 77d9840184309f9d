"""Tencent Cloud API 3.0 request signatures: TC3-HMAC-SHA256 and the legacy v1 HmacSHA1/HmacSHA256.

Pure functions, no I/O. The behaviour mirrors what ``tencentcloud-sdk-python-common`` actually
sends (``AbstractClient._get_tc3_signature`` / ``_format_sign_string``); where the vendor docs and
the SDK disagree, the SDK wins, and where the docs describe a stricter canonical form than the SDK
uses (lower-cased header values) both forms are accepted.

Typical gateway flow::

    auth = parse_tc3_authorization(headers.get("Authorization"))
    key = lookup(auth.secret_id)                    # -> AuthFailure.SecretIdNotFound if absent
    verify_tc3(request, key, auth=auth)             # raises SignatureError

Header values given as ``str`` are treated as the ISO-8859-1 decoding of the wire bytes (what
ASGI servers and ``http.server`` hand out); values that cannot be encoded that way are taken as
Unicode text and UTF-8 encoded, as the SDK does before hashing.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qsl

from roomcast.api.authheader import AuthorizationHeaderError, find_header, split_authorization, wire_bytes

__all__ = [
    "DEFAULT_WINDOW_S",
    "TC3_ALGORITHM",
    "TENCENT_ERROR_CODES",
    "UNSIGNED_PAYLOAD",
    "HttpRequest",
    "SignatureError",
    "SignatureReason",
    "TC3Authorization",
    "V1Request",
    "check_timestamp",
    "flatten_params",
    "parse_tc3_authorization",
    "parse_v1_form",
    "parse_v1_params",
    "sign_tc3",
    "sign_v1",
    "tc3_canonical_request",
    "tc3_date",
    "tc3_signature",
    "tc3_string_to_sign",
    "v1_signature",
    "v1_string_to_sign",
    "verify_tc3",
    "verify_v1",
]

TC3_ALGORITHM: Final = "TC3-HMAC-SHA256"
TC3_TERMINATOR: Final = "tc3_request"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
#: "If it differs from server time by more than 5 minutes, a signature expiration error may occur."
DEFAULT_WINDOW_S: Final = 300.0
V1_HMAC_SHA1: Final = "HmacSHA1"
V1_HMAC_SHA256: Final = "HmacSHA256"
#: Headers the docs make mandatory in ``SignedHeaders``.
REQUIRED_SIGNED_HEADERS: Final = frozenset({"content-type", "host"})

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_SCOPE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_INT = re.compile(r"-?\d{1,19}")
_V1_RESERVED = frozenset({"Signature"})


class SignatureReason(enum.Enum):
    """Why a signature was rejected; map it to a vendor error code with :data:`TENCENT_ERROR_CODES`."""

    MISSING = "missing"  # no Authorization header / Signature param, or a required field absent
    MALFORMED = "malformed"  # present but unparsable (bad header syntax, non-integer timestamp, ...)
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"  # not TC3-HMAC-SHA256
    EXPIRED = "expired"  # timestamp outside the allowed window
    SCOPE_MISMATCH = "scope_mismatch"  # credential-scope date/service inconsistent with the request
    MISMATCH = "mismatch"  # signature does not match what was sent (or the wrong secret)


#: Suggested API 3.0 error codes (section 1.5/1.8 of the TRTC spec).
TENCENT_ERROR_CODES: Final[Mapping[SignatureReason, str]] = MappingProxyType(
    {
        SignatureReason.MISSING: "AuthFailure.InvalidAuthorization",
        SignatureReason.MALFORMED: "AuthFailure.InvalidAuthorization",
        SignatureReason.UNSUPPORTED_ALGORITHM: "AuthFailure.InvalidAuthorization",
        SignatureReason.EXPIRED: "AuthFailure.SignatureExpire",
        SignatureReason.SCOPE_MISMATCH: "AuthFailure.SignatureFailure",
        SignatureReason.MISMATCH: "AuthFailure.SignatureFailure",
    }
)


class SignatureError(Exception):
    """A request failed authentication. The message never contains secrets or expected signatures."""

    def __init__(self, reason: SignatureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"SignatureError({self.reason.value!r}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The parts of an HTTP request that a signature covers.

    ``query`` is the raw query string exactly as received (no leading ``?``, not decoded): TC3 signs
    the query the client sent byte for byte. ``headers`` may use any key case.
    """

    method: str
    headers: Mapping[str, str]
    body: bytes = b""
    query: str = ""
    path: str = "/"

    def header(self, name: str) -> str | None:
        return find_header(self.headers, name)


@dataclass(frozen=True, slots=True)
class TC3Authorization:
    """A parsed ``Authorization: TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""

    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)
    algorithm: str = TC3_ALGORITHM

    @property
    def credential_scope(self) -> str:
        return f"{self.date}/{self.service}/{TC3_TERMINATOR}"

    @property
    def signed_headers_str(self) -> str:
        return ";".join(self.signed_headers)

    def header_value(self) -> str:
        """Render as the SDK does (``, `` separators)."""
        return (
            f"{self.algorithm} Credential={self.secret_id}/{self.credential_scope}, "
            f"SignedHeaders={self.signed_headers_str}, Signature={self.signature}"
        )


@dataclass(frozen=True, slots=True)
class V1Request:
    """The signature-relevant common parameters of a v1 (HmacSHA1/HmacSHA256) request."""

    secret_id: str
    signature: str = field(repr=False)
    #: The algorithm the server verifies with: HmacSHA256 only if SignatureMethod says exactly so.
    signature_method: str
    timestamp: int
    nonce: str
    token: str | None
    #: Every parameter except ``Signature``, in received order.
    params: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------------------------------
# shared helpers


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac_sha256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def check_timestamp(timestamp: int, *, now: float | None = None, window_s: float = DEFAULT_WINDOW_S) -> None:
    """Raise ``SignatureError(EXPIRED)`` if ``timestamp`` is more than ``window_s`` from ``now``.

    Both directions count: a clock running ahead is as suspicious as a replayed request.
    """
    if abs(_now(now) - timestamp) > window_s:
        raise SignatureError(SignatureReason.EXPIRED, f"timestamp is outside the {window_s:g}s window")


def _parse_timestamp(value: str | None, name: str) -> int:
    if value is None or value == "":
        raise SignatureError(SignatureReason.MISSING, f"{name} is missing")
    text = value.strip()
    if not _INT.fullmatch(text):
        raise SignatureError(SignatureReason.MALFORMED, f"{name} is not an integer")
    return int(text)


# --------------------------------------------------------------------------------------------------
# TC3-HMAC-SHA256


def tc3_date(timestamp: int) -> str:
    """The credential-scope date: the UTC date of ``X-TC-Timestamp`` (never local time)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def parse_tc3_authorization(value: str | None) -> TC3Authorization:
    """Parse a TC3 Authorization header. Raises MISSING, UNSUPPORTED_ALGORITHM or MALFORMED."""
    try:
        fields = split_authorization(value, TC3_ALGORITHM, ("Credential", "SignedHeaders", "Signature"))
    except AuthorizationHeaderError as exc:
        raise SignatureError(SignatureReason[exc.problem.name], exc.message) from None
    credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
    parts = credential.split("/")
    if len(parts) != 4 or parts[3] != TC3_TERMINATOR or not parts[0] or not parts[2]:
        raise SignatureError(
            SignatureReason.MALFORMED, "Credential must be SecretId/Date/service/tc3_request"
        )
    secret_id, date, service, _ = parts
    if not _SCOPE_DATE.fullmatch(date):
        raise SignatureError(SignatureReason.MALFORMED, "credential-scope date is not YYYY-MM-DD")
    headers = tuple(signed.split(";"))
    if (
        not all(_HEADER_NAME.fullmatch(h) for h in headers)
        or len({h.lower() for h in headers}) != len(headers)
        or not {h.lower() for h in headers} >= REQUIRED_SIGNED_HEADERS
    ):
        raise SignatureError(
            SignatureReason.MALFORMED, "SignedHeaders must list distinct headers incl. content-type;host"
        )
    if not _HEX64.fullmatch(signature):
        raise SignatureError(SignatureReason.MALFORMED, "Signature is not 64 hex digits")
    return TC3Authorization(
        secret_id=secret_id, date=date, service=service, signed_headers=headers, signature=signature.lower()
    )


def _tc3_payload_hash(request: HttpRequest, *, allow_unsigned_payload: bool) -> str:
    # SDK: a GET hashes "" whatever the body; X-TC-Content-SHA256: UNSIGNED-PAYLOAD hashes that literal.
    if request.header("X-TC-Content-SHA256") == UNSIGNED_PAYLOAD:
        if not allow_unsigned_payload:
            raise SignatureError(SignatureReason.UNSUPPORTED_ALGORITHM, "unsigned payload is not accepted")
        return _sha256_hex(UNSIGNED_PAYLOAD.encode())
    if request.method.upper() == "GET":
        return _sha256_hex(b"")
    return _sha256_hex(request.body)


def tc3_canonical_request(
    request: HttpRequest,
    signed_headers: Sequence[str],
    *,
    lowercase_values: bool = False,
    allow_unsigned_payload: bool = True,
) -> bytes:
    """Build the TC3 CanonicalRequest (UTF-8/wire bytes, ready to hash).

    The query is signed for GET only and exactly as sent (the SDK signs its own ``urlencode`` output,
    not an RFC 3986 re-encoding); POST always has an empty CanonicalQueryString. Header values are
    trimmed; ``lowercase_values`` applies the docs' extra lower-casing, which the SDK does not do.
    """
    method = request.method.upper()
    query = request.query if method == "GET" else ""
    lines: list[bytes] = []
    for name in signed_headers:
        value = request.header(name)
        if value is None:
            raise SignatureError(SignatureReason.MISMATCH, f"signed header {name.lower()!r} is not present")
        value = value.strip()
        if lowercase_values:
            value = value.lower()
        lines.append(name.lower().encode("ascii") + b":" + wire_bytes(value) + b"\n")
    payload_hash = _tc3_payload_hash(request, allow_unsigned_payload=allow_unsigned_payload)
    return b"\n".join(
        [
            method.encode("ascii"),
            wire_bytes(request.path or "/"),
            wire_bytes(query),
            b"".join(lines),
            ";".join(h.lower() for h in signed_headers).encode("ascii"),
            payload_hash.encode("ascii"),
        ]
    )


def tc3_string_to_sign(timestamp: int, credential_scope: str, canonical_request: bytes) -> str:
    return f"{TC3_ALGORITHM}\n{timestamp}\n{credential_scope}\n{_sha256_hex(canonical_request)}"


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """Derive the signing key (``"TC3"+SecretKey`` -> date -> service -> tc3_request) and sign."""
    k_date = _hmac_sha256(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac_sha256(k_date, service)
    k_signing = _hmac_sha256(k_service, TC3_TERMINATOR)
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_tc3(
    request: HttpRequest,
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    signed_headers: Sequence[str] = ("content-type", "host"),
) -> str:
    """Return the ``Authorization`` header value for ``request``, signing like the SDK.

    The request must already carry ``Content-Type`` and ``Host`` (and the caller must send
    ``X-TC-Timestamp: <timestamp>``; if the request has that header it must agree).
    """
    declared = request.header("X-TC-Timestamp")
    if declared is not None and declared.strip() != str(timestamp):
        raise ValueError("X-TC-Timestamp header disagrees with the timestamp argument")
    headers = tuple(h.lower() for h in signed_headers)
    date = tc3_date(timestamp)
    scope = f"{date}/{service}/{TC3_TERMINATOR}"
    canonical = tc3_canonical_request(request, headers)
    signature = tc3_signature(secret_key, date, service, tc3_string_to_sign(timestamp, scope, canonical))
    return TC3Authorization(
        secret_id=secret_id, date=date, service=service, signed_headers=headers, signature=signature
    ).header_value()


def verify_tc3(
    request: HttpRequest,
    secret_key: str,
    *,
    auth: TC3Authorization | None = None,
    now: float | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    expected_service: str | None = None,
    allow_unsigned_payload: bool = True,
) -> TC3Authorization:
    """Verify a TC3-HMAC-SHA256 request and return its parsed Authorization.

    ``auth`` is the result of :func:`parse_tc3_authorization` when the caller already parsed the
    header to look the key up. The service is taken from the credential scope (the SDK always uses
    the product name, e.g. ``trtc``, whatever host it talks to); pass ``expected_service`` to pin it.
    Checks, in order: header syntax, service, X-TC-Timestamp, scope date == UTC date of the
    timestamp, time window, signature.
    """
    if auth is None:
        auth = parse_tc3_authorization(request.header("Authorization"))
    if expected_service is not None and auth.service != expected_service:
        raise SignatureError(SignatureReason.SCOPE_MISMATCH, "credential-scope service does not match")
    timestamp = _parse_timestamp(request.header("X-TC-Timestamp"), "X-TC-Timestamp")
    try:
        date = tc3_date(timestamp)
    except (OverflowError, ValueError, OSError):
        raise SignatureError(SignatureReason.MALFORMED, "X-TC-Timestamp is out of range") from None
    if auth.date != date:
        raise SignatureError(
            SignatureReason.SCOPE_MISMATCH, "credential-scope date is not the UTC date of X-TC-Timestamp"
        )
    check_timestamp(timestamp, now=now, window_s=window_s)
    wanted = auth.signature.encode("ascii")
    variants = (False, True)  # SDK form (values as sent) first, then the docs' lower-cased form
    seen: set[bytes] = set()
    for lowercase in variants:
        canonical = tc3_canonical_request(
            request,
            auth.signed_headers,
            lowercase_values=lowercase,
            allow_unsigned_payload=allow_unsigned_payload,
        )
        if canonical in seen:
            continue
        seen.add(canonical)
        expected = tc3_signature(
            secret_key,
            auth.date,
            auth.service,
            tc3_string_to_sign(timestamp, auth.credential_scope, canonical),
        )
        if hmac.compare_digest(expected.encode("ascii"), wanted):
            return auth
    raise SignatureError(SignatureReason.MISMATCH, "signature does not match the request")


# --------------------------------------------------------------------------------------------------
# v1: HmacSHA1 / HmacSHA256 over the request parameters


def parse_v1_form(raw: str | bytes, *, max_fields: int = 10_000) -> list[tuple[str, str]]:
    """Decode a v1 query string or ``application/x-www-form-urlencoded`` body (UTF-8, ``+`` = space).

    A ``str`` is taken as the ISO-8859-1 decoding of the wire bytes when that round-trips to valid
    UTF-8 (raw, un-escaped UTF-8 then decodes correctly), else as text.
    """
    try:
        if isinstance(raw, bytes):
            text = raw.decode("utf-8")
        else:
            try:
                text = raw.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                text = raw
        return parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=max_fields
        )
    except (UnicodeDecodeError, ValueError):
        raise SignatureError(SignatureReason.MALFORMED, "request parameters cannot be decoded") from None


def _v1_sign_key(name: str) -> str:
    # The SDK replaces "_" by "." in parameter names when building the string to sign (only there).
    return name.replace("_", ".")


def parse_v1_params(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> V1Request:
    """Extract and check the v1 common parameters (SecretId, Signature, Timestamp, Nonce, ...).

    Raises MISSING for an absent Signature/SecretId/Timestamp/Nonce and MALFORMED for duplicate
    parameters (ambiguous to sign) or non-integer Timestamp/Nonce.
    """
    items = list(params.items()) if isinstance(params, Mapping) else list(params)
    values: dict[str, str] = {}
    sign_names: set[str] = set()
    for name, value in items:
        if name in values or _v1_sign_key(name) in sign_names:
            raise SignatureError(SignatureReason.MALFORMED, f"parameter {name!r} appears more than once")
        values[name] = value
        sign_names.add(_v1_sign_key(name))
    signature = values.get("Signature")
    if not signature:
        raise SignatureError(SignatureReason.MISSING, "Signature is missing")
    secret_id = values.get("SecretId")
    if not secret_id:
        raise SignatureError(SignatureReason.MISSING, "SecretId is missing")
    timestamp = _parse_timestamp(values.get("Timestamp"), "Timestamp")
    nonce = values.get("Nonce")
    if not nonce:
        raise SignatureError(SignatureReason.MISSING, "Nonce is missing")
    if not _INT.fullmatch(nonce):
        raise SignatureError(SignatureReason.MALFORMED, "Nonce is not an integer")
    method = V1_HMAC_SHA256 if values.get("SignatureMethod") == V1_HMAC_SHA256 else V1_HMAC_SHA1
    return V1Request(
        secret_id=secret_id,
        # A base64 signature never holds a space: a bare "+" decoded as space by form decoding.
        signature=signature.replace(" ", "+"),
        signature_method=method,
        timestamp=timestamp,
        nonce=nonce,
        token=values.get("Token"),
        params=tuple((k, v) for k, v in items if k not in _V1_RESERVED),
    )


def v1_string_to_sign(
    method: str, host: str, params: Mapping[str, str] | Iterable[tuple[str, str]], path: str = "/"
) -> str:
    """``METHOD + host + path + "?" + k=v&...``: keys ASCII-sorted (``_`` -> ``.``), raw (unencoded) values.

    ``Signature`` is excluded. Nested/array parameters are expected already flattened as the SDK
    sends them (``Filters.0.Name``, ``AgentParams.UserId``).
    """
    items = params.items() if isinstance(params, Mapping) else params
    flat = {_v1_sign_key(k): v for k, v in items if k not in _V1_RESERVED}
    query = "&".join(f"{k}={flat[k]}" for k in sorted(flat))
    return f"{method.upper()}{host}{path}?{query}"


def v1_signature(secret_key: str, string_to_sign: str, signature_method: str | None) -> str:
    """Base64 HMAC; HmacSHA256 only when ``signature_method`` is exactly ``HmacSHA256``, else HmacSHA1."""
    digest = hashlib.sha256 if signature_method == V1_HMAC_SHA256 else hashlib.sha1
    mac = hmac.new(secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), digest).digest()
    return base64.b64encode(mac).decode("ascii")


def flatten_params(params: Mapping[str, object]) -> dict[str, str]:
    """Flatten nested dicts/lists the way the SDK does for v1 and for every GET (``A.0.B``).

    Scalars are rendered with ``str()`` as ``urlencode`` does (so ``True`` becomes ``"True"``).
    """
    out: dict[str, str] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}" if prefix else str(i), v)
        elif value is not None:
            out[prefix] = str(value)

    walk("", params)
    return out


def sign_v1(
    method: str,
    host: str,
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    secret_key: str,
    *,
    path: str = "/",
) -> str:
    """Return the base64 ``Signature`` for ``params`` (which must already hold SecretId, Timestamp,
    Nonce, SignatureMethod, ...). URL-encode it when sending."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    sig_method = next((v for k, v in pairs if k == "SignatureMethod"), None)
    return v1_signature(secret_key, v1_string_to_sign(method, host, pairs, path), sig_method)


def verify_v1(
    method: str,
    host: str,
    request: V1Request,
    secret_key: str,
    *,
    path: str = "/",
    now: float | None = None,
    window_s: float = DEFAULT_WINDOW_S,
) -> V1Request:
    """Verify a parsed v1 request (see :func:`parse_v1_params`). ``host`` is the Host header as sent,
    port included (the SDK signs its endpoint, which is what it puts in Host)."""
    check_timestamp(request.timestamp, now=now, window_s=window_s)
    expected = v1_signature(
        secret_key, v1_string_to_sign(method, host, request.params, path), request.signature_method
    )
    if not hmac.compare_digest(expected.encode("ascii"), request.signature.encode("utf-8")):
        raise SignatureError(SignatureReason.MISMATCH, "signature does not match the request")
    return request
