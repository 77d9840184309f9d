"""GET/form parameter names to nested values: well-formed names only, each error naming the field."""

from __future__ import annotations

import pytest

from roomcast.api.trtc.errors import TrtcError
from roomcast.api.trtc.params import MAX_NAME_DEPTH, unflatten


def test_nested_names_and_lists() -> None:
    pairs = [("UserIds.0", "a"), ("UserIds.1", "b"), ("A.B.0.C", "c"), ("N", "1")]
    assert unflatten(pairs) == {"UserIds": ["a", "b"], "A": {"B": [{"C": "c"}]}, "N": "1"}
    assert unflatten([("0", "x")]) == {"0": "x"}  # the top level is never a list
    assert unflatten([("Action", "X"), ("Nonce", "1")]) == {}


@pytest.mark.parametrize(
    ("pairs", "code", "named"),
    [
        ([("UserIds.0", "a"), ("UserIds.2", "b")], "InvalidParameter.UserIds", "UserIds"),
        ([("UserIds.1", "a")], "InvalidParameter.UserIds", "UserIds"),
        ([("UserIds.0", "a"), ("UserIds.00", "b")], "InvalidParameter.UserIds", "UserIds"),
        ([("UserIds", "a"), ("UserIds.0", "b")], "InvalidParameter.UserIds", "UserIds.0"),
        ([("UserIds.0", "a"), ("UserIds", "b")], "InvalidParameter.UserIds", "UserIds"),
        ([("RoomId", "1"), ("RoomId", "2")], "InvalidParameter.RoomId", "RoomId"),
        ([("A..B", "1")], "InvalidParameter", "A..B"),
        ([(".".join(["A"] * (MAX_NAME_DEPTH + 1)), "1")], "InvalidParameter", "A.A"),
    ],
)
def test_malformed_names(pairs: list[tuple[str, str]], code: str, named: str) -> None:
    with pytest.raises(TrtcError) as ei:
        unflatten(pairs)
    assert ei.value.code == code and named in ei.value.message


def test_odd_digits_are_not_list_indexes() -> None:
    # "²".isdigit() is True but int("²") fails: such keys stay names, and validation refuses them.
    assert unflatten([("UserIds.0", "a"), ("UserIds.²", "b")]) == {"UserIds": {"0": "a", "²": "b"}}
