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


def unflatten(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``UserIds.0=a&UserIds.1=b&A.B=c`` -> ``{"UserIds": ["a", "b"], "A": {"B": "c"}}``."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        if name in COMMON_PARAMS:
            continue
        parts = name.split(".")
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
        # numeric-keyed dicts become lists below
    out: dict[str, Any] = _lists(root)
    return out


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def _loc_name(loc: tuple[int | str, ...]) -> tuple[str, str]:
    """(top-level field, dotted path) of a pydantic error location."""
    path = ".".join(str(p) for p in loc)
    leaf = next((str(p) for p in reversed(loc) if isinstance(p, str)), path)
    return leaf, path


def parse(model: type[M], data: dict[str, Any], invalid_code: str | None = None) -> M:
    """Validate ``data``; ``invalid_code`` replaces the generic code for bad values (an action's
    documented one, e.g. ``InvalidParameter.OutOfRange``), unless a field-specific code exists."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        leaf, path = _loc_name(tuple(err["loc"]))
        kind = err["type"]
        if kind == "missing":
            raise TrtcError(
                specific("MissingParameter", leaf), f"The request is missing a required parameter `{path}`."
            ) from None
        if kind == "extra_forbidden":
            raise TrtcError("UnknownParameter", f"The parameter `{path}` is not recognized.") from None
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        code = specific("InvalidParameter", leaf)
        if code == "InvalidParameter" and invalid_code is not None:
            code = invalid_code
        raise TrtcError(code, f"The value of parameter `{path}` is invalid: {msg}.") from None
