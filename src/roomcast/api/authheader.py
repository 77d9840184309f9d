"""What the TC3 and SDK-HMAC-SHA256 signatures share: the ``Authorization`` header's shape
(``ALGORITHM Key=value, Key=value, ...``) and how header text maps back to the bytes signed."""

from __future__ import annotations

import enum
from collections.abc import Mapping


class HeaderProblem(enum.Enum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"


class AuthorizationHeaderError(Exception):
    def __init__(self, problem: HeaderProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


def split_authorization(value: str | None, algorithm: str, required: tuple[str, ...]) -> dict[str, str]:
    """The ``Key=value`` fields of an ``Authorization`` header using ``algorithm``.

    Every name in ``required`` must be present; a repeated or empty name is malformed.
    """
    if value is None or not value.strip():
        raise AuthorizationHeaderError(HeaderProblem.MISSING, "Authorization header is missing")
    name, _, rest = value.strip().partition(" ")
    if name != algorithm:
        if "=" in name or not rest:
            raise AuthorizationHeaderError(HeaderProblem.MALFORMED, "Authorization header is malformed")
        raise AuthorizationHeaderError(HeaderProblem.UNSUPPORTED_ALGORITHM, "unsupported signature algorithm")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or not key or key in fields:
            raise AuthorizationHeaderError(HeaderProblem.MALFORMED, "Authorization header is malformed")
        fields[key] = val.strip()
    missing = [k for k in required if k not in fields]
    if missing:
        raise AuthorizationHeaderError(
            HeaderProblem.MALFORMED, f"Authorization needs {', '.join(required[:-1])} and {required[-1]}"
        )
    return fields


def wire_bytes(value: str) -> bytes:
    """Header text as the bytes a client signed: ASGI hands headers over as latin-1 text."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def find_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup (the last one wins if a plain dict holds case duplicates)."""
    wanted = name.lower()
    found: str | None = None
    for key, value in headers.items():
        if key.lower() == wanted:
            found = value
    return found
