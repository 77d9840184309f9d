"""Request parameters: flattened GET/form pairs to nested values, and validation into models.

Validation failures become the API 3.0 codes the SDKs expect: ``MissingParameter[.X]``,
``InvalidParameter[.X]`` and ``UnknownParameter``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from roomcast.api.trtc.errors import TrtcError, specific

M = TypeVar("M", bound=BaseModel)

# Common parameters of v1 requests and SDK extras: not part of any action's input.
COMMON_PARAMS = frozenset(
    {
        "Action",
        "Version",
        "Region",
        "Timestamp",
        "Nonce",
        "SecretId",
        "Signature",
        "SignatureMethod",
        "Token",
        "RequestClient",
        "Language",
    }
)


class Params(BaseModel):
    """Base of every action's input model: unknown names are refused like the vendor does."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


MAX_NAME_DEPTH = 16
"""Dotted levels in a GET/form parameter name; deeper than any action's documented input."""


def _bad_name(name: str, why: str) -> TrtcError:
    shown = name if len(name) <= 64 else name[:61] + "..."
    top = name.split(".", 1)[0]
    return TrtcError(specific("InvalidParameter", top), f"The parameter name `{shown}` is invalid: {why}.")


def unflatten(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``UserIds.0=a&UserIds.1=b&A.B=c`` -> ``{"UserIds": ["a", "b"], "A": {"B": "c"}}``.

    Names must be well formed: no empty level, at most :data:`MAX_NAME_DEPTH` levels, no name given
    twice, no name that is both a value and a structure (``A=1&A.B=2``), list indexes 0 to n-1.
    """
    root: dict[str, Any] = {}
    for name, value in pairs:
        if name in COMMON_PARAMS:
            continue
        parts = name.split(".")
        if len(parts) > MAX_NAME_DEPTH:
            raise _bad_name(name, f"more than {MAX_NAME_DEPTH} levels")
        if any(not p for p in parts):
            raise _bad_name(name, "empty level")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise _bad_name(name, "given both as a value and as a structure")
            node = child
        if parts[-1] in node:
            raise _bad_name(name, "given twice or both as a value and as a structure")
        node[parts[-1]] = value
    return {k: _lists(v, k) for k, v in root.items()}


def _lists(node: Any, path: str) -> Any:
    """Numeric-keyed levels become lists (keys must then be 0 to n-1, as the SDKs number them)."""
    if not isinstance(node, dict):
        return node
    converted = {k: _lists(v, f"{path}.{k}" if path else k) for k, v in node.items()}
    if converted and all(k.isascii() and k.isdigit() for k in converted):
        if sorted(converted, key=int) != [str(i) for i in range(len(converted))]:
            raise _bad_name(path + ".N", "list items must be numbered 0, 1, 2, ... without gaps")
        return [converted[str(i)] for i in range(len(converted))]
    return converted


def _loc_name(loc: tuple[int | str, ...]) -> tuple[str, str]:
    """(top-level field, dotted path) of a pydantic error location."""
    path = ".".join(str(p) for p in loc)
    leaf = next((str(p) for p in reversed(loc) if isinstance(p, str)), path)
    return leaf, path


def parse(
    model: type[M],
    data: dict[str, Any],
    invalid_code: str | None = None,
    *,
    field_codes: bool = True,
    type_code: str | None = None,
) -> M:
    """Validate ``data``; ``invalid_code`` replaces the generic code for bad values (an action's
    documented one, e.g. ``InvalidParameter.OutOfRange``), unless a field-specific code exists.

    ``field_codes=False``: no field-specific codes (a service, like TIW, that documents none);
    ``type_code``: the code for a value of the wrong type (TIW's ``BodyParameterTypeUnmatched``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        leaf, path = _loc_name(tuple(err["loc"]))
        kind = err["type"]
        if kind == "missing":
            raise TrtcError(
                specific("MissingParameter", leaf) if field_codes else "MissingParameter",
                f"The request is missing a required parameter `{path}`.",
            ) from None
        if kind == "extra_forbidden":
            raise TrtcError("UnknownParameter", f"The parameter `{path}` is not recognized.") from None
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        code = specific("InvalidParameter", leaf) if field_codes else "InvalidParameter"
        if type_code is not None and (kind.endswith("_type") or kind.endswith("_parsing")):
            code = type_code
        elif code == "InvalidParameter" and invalid_code is not None:
            code = invalid_code
        raise TrtcError(code, f"The value of parameter `{path}` is invalid: {msg}.") from None
