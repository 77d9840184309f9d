"""Typed values to and from JSON data, driven by type hints.

:func:`encode` / :func:`decode` walk a declared type (a frozen dataclass, an enum, a union, a
tuple, a frozenset, a mapping, a plain JSON scalar) so that stored documents (a recording spec,
layout template parameters) need no hand-written field lists.  The mapping:

- dataclass -> object of its fields (all of them); a missing field takes its default, an unknown
  one is refused;
- a union of several dataclasses (``Rect | RelRect``) -> the member's object plus ``"type"``,
  the class name in snake case (``"rel_rect"``);
- enum -> its value; frozenset -> sorted list; tuple / Sequence -> list; Mapping -> object;
- ``Any`` / ``object`` -> any JSON value (checked, copied);
- float accepts an integer; NaN and infinities are refused (``json.dumps`` would write them as
  non-standard tokens).

Every malformed input raises :class:`InvalidArgument` whose ``subject`` is the dotted path of
the offending value (list items by index, e.g. ``spec.users.audio.allow.0``), never ``KeyError``
or ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, Final

from .errors import InvalidArgument

__all__ = ["TYPE_TAG", "decode", "encode", "json_value", "type_tag"]

TYPE_TAG: Final = "type"
"""The key naming the member of a union of dataclasses."""

_SEQUENCES: Final = frozenset({tuple, list, Sequence, typing.Sequence})
_SETS: Final = frozenset({frozenset, set})
_MAPPINGS: Final = frozenset({dict, Mapping, typing.Mapping})


def _fail(path: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{path or 'value'}: {message}", subject=path)


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def type_tag(cls: type) -> str:
    """``RelRect`` -> ``"rel_rect"``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


@cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _members(tp: Any) -> tuple[Any, ...]:
    """The encodable members of a union (``None`` and callables left out)."""
    return tuple(
        a
        for a in typing.get_args(tp)
        if a is not type(None) and typing.get_origin(a) not in (Callable, typing.Callable)
    )


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def json_value(value: Any, path: str = "") -> Any:
    """A checked deep copy of a JSON value (dicts with string keys, lists, scalars).

    Tuples become lists; anything else (sets, objects, NaN) is refused."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(path, "must be a finite number")
        return value
    if isinstance(value, list | tuple):
        return [json_value(v, _join(path, i)) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _fail(path, f"object keys must be strings, got {k!r}")
            out[k] = json_value(v, _join(path, k))
        return out
    raise _fail(path, f"not a JSON value: {type(value).__name__}")


# ------------------------------------------------------------------------------------- encode


def encode(tp: Any, value: Any, path: str = "") -> Any:
    """``value`` (of declared type ``tp``) as JSON data."""
    if tp is Any or tp is object:
        return json_value(value, path)
    if _is_union(tp):
        if value is None:
            return None
        members = _members(tp)
        for member in members:
            if _instance_of(value, member):
                out = encode(member, value, path)
                if len([m for m in members if _is_dataclass_type(m)]) > 1:
                    out = {TYPE_TAG: type_tag(member), **out}
                return out
        raise _fail(path, f"{type(value).__name__} is not one of {tp}")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in _SEQUENCES:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise _fail(path, "must be a sequence")
        if origin is tuple and args and args[-1] is not Ellipsis:
            return [encode(a, v, _join(path, i)) for i, (a, v) in enumerate(zip(args, value, strict=True))]
        item = args[0] if args else Any
        return [encode(item, v, _join(path, i)) for i, v in enumerate(value)]
    if origin in _SETS:
        item = args[0] if args else Any
        return sorted((encode(item, v, path) for v in value), key=_sort_key)
    if origin in _MAPPINGS:
        item = args[1] if len(args) == 2 else Any
        if not isinstance(value, Mapping):
            raise _fail(path, "must be a mapping")
        return {str(k): encode(item, v, _join(path, str(k))) for k, v in value.items()}
    if _is_dataclass_type(tp):
        if not isinstance(value, tp):
            raise _fail(path, f"must be a {tp.__name__}")
        hints = _field_types(tp)
        return {
            f.name: encode(hints[f.name], getattr(value, f.name), _join(path, f.name))
            for f in dataclasses.fields(tp)
        }
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if not isinstance(value, tp):
            raise _fail(path, f"must be a {tp.__name__}")
        return json_value(value.value, path)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return json_value(float(value), path)
    if tp in (int, str, bool, type(None)) and type(value) is tp:
        return value
    raise _fail(path, f"cannot encode {type(value).__name__} as {tp}")


def _sort_key(v: Any) -> tuple[str, str]:
    return (type(v).__name__, str(v))


def _instance_of(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if origin in _SEQUENCES:
        return isinstance(value, Sequence) and not isinstance(value, str)
    if origin in _SETS:
        return isinstance(value, frozenset | set)
    if origin in _MAPPINGS:
        return isinstance(value, Mapping)
    if origin is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(origin, type) and isinstance(value, origin)


# ------------------------------------------------------------------------------------- decode


def decode(tp: Any, data: Any, path: str = "") -> Any:
    """JSON ``data`` as a value of type ``tp``; :class:`InvalidArgument` naming the path if not."""
    if tp is Any or tp is object:
        return json_value(data, path)
    if _is_union(tp):
        if data is None and type(None) in typing.get_args(tp):
            return None
        members = _members(tp)
        classes = [m for m in members if _is_dataclass_type(m)]
        if len(classes) > 1:
            return _decode_tagged(classes, [m for m in members if m not in classes], data, path)
        if len(members) == 1:
            return decode(members[0], data, path)
        first: InvalidArgument | None = None
        for member in members:
            try:
                return decode(member, data, path)
            except InvalidArgument as exc:
                first = first or exc
        raise first or _fail(path, f"must be {tp}")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in _SEQUENCES or origin in _SETS:
        if not isinstance(data, list):
            raise _fail(path, "must be a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(data) != len(args):
                raise _fail(path, f"must have {len(args)} items")
            return tuple(
                decode(a, v, _join(path, i)) for i, (a, v) in enumerate(zip(args, data, strict=True))
            )
        item = args[0] if args else Any
        items = [decode(item, v, _join(path, i)) for i, v in enumerate(data)]
        if origin in _SETS:
            return frozenset(items)
        return items if origin is list else tuple(items)
    if origin in _MAPPINGS:
        if not isinstance(data, dict):
            raise _fail(path, "must be an object")
        item = args[1] if len(args) == 2 else Any
        return {_key(k, path): decode(item, v, _join(path, str(k))) for k, v in data.items()}
    if _is_dataclass_type(tp):
        return _decode_dataclass(tp, data, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except (ValueError, TypeError):
            allowed = ", ".join(repr(m.value) for m in tp)
            raise _fail(path, f"must be one of {allowed}") from None
    if tp is bool:
        if not isinstance(data, bool):
            raise _fail(path, "must be true or false")
        return data
    if tp is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise _fail(path, "must be an integer")
        return data
    if tp is float:
        if not isinstance(data, int | float) or isinstance(data, bool):
            raise _fail(path, "must be a number")
        return json_value(float(data), path)
    if tp is str:
        if not isinstance(data, str):
            raise _fail(path, "must be a string")
        return data
    if tp is type(None):
        if data is not None:
            raise _fail(path, "must be null")
        return None
    raise _fail(path, f"cannot decode {tp}")


def _key(k: Any, path: str) -> str:
    if not isinstance(k, str):
        raise _fail(path, "object keys must be strings")
    return k


def _decode_tagged(classes: list[type], others: list[Any], data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        if others:
            return decode(typing.Union[tuple(others)], data, path)  # noqa: UP007
        raise _fail(path, "must be an object")
    tag = data.get(TYPE_TAG)
    by_tag = {type_tag(c): c for c in classes}
    cls = by_tag.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise _fail(_join(path, TYPE_TAG), f"must be one of {', '.join(sorted(by_tag))}")
    return _decode_dataclass(cls, {k: v for k, v in data.items() if k != TYPE_TAG}, path)


def _decode_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise _fail(path, "must be an object")
    hints = _field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in data:
        if name not in fields:
            raise _fail(_join(path, str(name)), "unknown field")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = decode(hints[name], data[name], _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _fail(_join(path, name), "missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise _fail(path, str(exc)) from None
