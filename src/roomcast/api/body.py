"""Request bodies every dialect reads the same way: a size limit while reading, and JSON parsing
with a nesting-depth limit and only what RFC 8259 allows.

Each dialect maps :class:`BodyError` onto its own code (TRTC ``RequestSizeLimitExceeded`` /
``InvalidParameter``, SparkRTC ``RTC.00001002``, JOYY 2101, ...). What is refused here never
reaches a parser or model that could fail on it internally: a body nested 100,000 levels deep,
``NaN``, or a lone surrogate (``"\\ud800"`` is valid JSON text but cannot be encoded again).
"""

from __future__ import annotations

import enum
import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

MAX_DEPTH = 32
"""Deeper than any vendor's documented request (TRTC's deepest is 6 levels)."""


class BodyProblem(enum.Enum):
    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    TOO_DEEP = "too_deep"
    NOT_OBJECT = "not_object"
    BAD_TEXT = "bad_text"
    INCOMPLETE = "incomplete"


class BodyError(Exception):
    def __init__(self, problem: BodyProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing it as soon as it passes ``limit`` bytes (declared or streamed).

    The body is kept on the request, so later ``request.body()`` calls (signature checks) see it.
    """
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        if len(cached) > limit:
            raise _too_large(limit)
        return cached
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Broken chunked encoding or a client gone mid-body: nobody hears the answer, but it is
        # the client's doing, not an internal error.
        raise BodyError(BodyProblem.INCOMPLETE, "the request body did not arrive complete") from None
    body = b"".join(chunks)
    request._body = body
    return body


def _too_large(limit: int) -> BodyError:
    return BodyError(BodyProblem.TOO_LARGE, f"the request body is larger than {limit} bytes")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode a UTF-8 JSON document; raises :class:`BodyError` for anything a parser should not take."""
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise BodyError(
            BodyProblem.TOO_DEEP, f"the JSON body is nested deeper than {max_depth} levels"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise BodyError(BodyProblem.NOT_JSON, f"the body is not valid JSON ({exc})") from None
    check_tree(data, max_depth=max_depth)
    return data


def parse_json_object(raw: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Like :func:`parse_json` but the document must be an object; an empty body is ``{}``."""
    if not raw.strip():
        return {}
    data = parse_json(raw, max_depth=max_depth)
    if not isinstance(data, dict):
        raise BodyError(BodyProblem.NOT_OBJECT, "the body must be a JSON object")
    return data


def check_tree(data: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a decoded tree nested deeper than ``max_depth`` or holding text that is not Unicode."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise BodyError(BodyProblem.TOO_DEEP, f"the body is nested deeper than {max_depth} levels")
            if isinstance(node, dict):
                for key, value in node.items():
                    _check_text(key)
                    stack.append((value, depth + 1))
            else:
                stack.extend((value, depth + 1) for value in node)
        elif isinstance(node, str):
            _check_text(node)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError(BodyProblem.BAD_TEXT, "the body holds text that is not valid Unicode") from None
