"""Shared body parsing: depth limit, RFC 8259 only, text that can be encoded again."""

from __future__ import annotations

import pytest

from roomcast.api.body import MAX_DEPTH, BodyError, BodyProblem, parse_json, parse_json_object


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_limit() -> None:
    assert parse_json(nested(MAX_DEPTH)) is not None
    for depth in (MAX_DEPTH + 1, 5000, 100_000):
        with pytest.raises(BodyError) as ei:
            parse_json(nested(depth))
        assert ei.value.problem is BodyProblem.TOO_DEEP
    with pytest.raises(BodyError):
        parse_json(b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"NaN", BodyProblem.NOT_JSON),
        (b'{"a": Infinity}', BodyProblem.NOT_JSON),
        (b"\xff\xfe", BodyProblem.NOT_JSON),
        (b"{", BodyProblem.NOT_JSON),
        (b'{"a": "\\ud800"}', BodyProblem.BAD_TEXT),
        (b'{"\\udfff": 1}', BodyProblem.BAD_TEXT),
        (b"[1]", BodyProblem.NOT_OBJECT),
    ],
)
def test_refused_documents(raw: bytes, problem: BodyProblem) -> None:
    with pytest.raises(BodyError) as ei:
        parse_json_object(raw)
    assert ei.value.problem is problem


def test_accepted_documents() -> None:
    assert parse_json_object(b"  ") == {}
    assert parse_json_object('{"name": "é😀"}'.encode()) == {"name": "é😀"}
