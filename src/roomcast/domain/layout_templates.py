"""Layouts as data: template names and JSON parameters, resolved to layout functions.

A :class:`~roomcast.domain.recording.LayoutRef` is a template name plus JSON parameters, so a
recording spec can be stored and resolved again by any process.  This registry maps a template
name to a factory ``(params) -> LayoutFunction``.  The generic presets of
:mod:`roomcast.domain.layout` are registered here (``grid``, ``floating``, ``screen_share``,
``strip``: ``params`` are the preset's keyword arguments as JSON; ``custom``: ``slots`` plus its
keyword arguments), see :func:`preset_params`.  Each dialect registers its own templates
(``trtc.recording`` ...) when its module is imported.

Registration must not depend on start-up order: a worker process that resolves a stored spec
may never have imported the dialect that built it.  :func:`load_template_modules` imports the
known dialect modules (by name, so this module does not import ``roomcast.api``), and a lookup
of an unknown name calls it once before giving up.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from . import layout as L
from .errors import InvalidArgument
from .jsondata import decode, encode

if TYPE_CHECKING:
    from .recording import LayoutRef

__all__ = [
    "TEMPLATE_MODULES",
    "LayoutFactory",
    "LayoutFunction",
    "build_layout",
    "layout_template",
    "load_template_modules",
    "preset_params",
    "read_params",
    "register_template",
    "registered_templates",
]

LayoutFunction = Callable[[Sequence[L.Participant], L.Canvas], L.Layout]
"""A layout applied to the live participants (see :mod:`roomcast.domain.layout`)."""

LayoutFactory = Callable[[Mapping[str, Any]], LayoutFunction]
"""Builds a template's layout function from its JSON parameters; raises on bad parameters."""

TEMPLATE_MODULES: Final = (
    "roomcast.api.trtc.recording_params",
    "roomcast.api.trtc.layouts",
    "roomcast.api.sparkrtc.layouts",
    "roomcast.api.jocloud.layouts",
)
"""Modules that register dialect templates when imported."""

_registry: dict[str, LayoutFactory] = {}
_lock = threading.Lock()
_loaded = False


def register_template(name: str, factory: LayoutFactory) -> None:
    """Register ``factory`` under ``name``; registering the same factory again is a no-op
    (module reloads), another factory under a taken name is an error."""
    with _lock:
        old = _registry.get(name)
        if old is not None and old is not factory and _qualname(old) != _qualname(factory):
            raise ValueError(f"layout template {name!r} is already registered")
        _registry[name] = factory


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"


def registered_templates() -> frozenset[str]:
    with _lock:
        return frozenset(_registry)


def load_template_modules(modules: Iterable[str] = TEMPLATE_MODULES) -> None:
    """Import the modules that register templates (idempotent; call it in any process that
    resolves stored specs, or rely on the lookup's fallback)."""
    global _loaded
    names = tuple(modules)
    for name in names:
        importlib.import_module(name)
    if names == TEMPLATE_MODULES:
        _loaded = True


def layout_template(name: str) -> LayoutFactory:
    """The factory registered under ``name`` (loading the dialect modules if it is unknown)."""
    with _lock:
        factory = _registry.get(name)
    if factory is None and not _loaded:
        load_template_modules()
        with _lock:
            factory = _registry.get(name)
    if factory is None:
        raise InvalidArgument(f"unknown layout template {name!r}", subject="layout")
    return factory


def build_layout(ref: LayoutRef | None) -> LayoutFunction:
    """The layout function a :class:`LayoutRef` names (``None``: the generic grid).

    Raises :class:`InvalidArgument` (subject ``layout``) for an unknown template or parameters
    its factory refuses."""
    if ref is None:
        return L.grid
    factory = layout_template(ref.preset)
    try:
        return factory(ref.params)
    except InvalidArgument as exc:
        raise InvalidArgument(f"layout {ref.preset!r}: {exc.message}", subject="layout") from None
    except (ValueError, TypeError, KeyError, LookupError) as exc:
        raise InvalidArgument(f"layout {ref.preset!r}: bad parameters: {exc}", subject="layout") from None


def read_params(
    params: Mapping[str, Any], types: Mapping[str, Any], *, required: Iterable[str] = ()
) -> dict[str, Any]:
    """A template's JSON parameters decoded by declared type (see :mod:`.jsondata`); unknown
    and missing required keys are refused.  For factories of dialect templates."""
    for key in params:
        if key not in types:
            raise InvalidArgument(f"unknown layout parameter {key!r}", subject=f"layout.params.{key}")
    for key in required:
        if key not in params:
            raise InvalidArgument(f"layout parameter {key!r} is missing", subject=f"layout.params.{key}")
    return {k: decode(types[k], v, f"layout.params.{k}") for k, v in params.items()}


# --------------------------------------------------------------------------- generic presets

_PRESETS: Final[Mapping[str, Callable[..., L.Layout]]] = {
    "grid": L.grid,
    "floating": L.floating,
    "screen_share": L.screen_share,
    "strip": L.strip,
    "custom": L.custom,
}


def _keyword_types(fn: Callable[..., Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())[2:]  # after participants, canvas
    return {p.name: hints[p.name] for p in params}


def preset_params(preset: str, **kwargs: Any) -> dict[str, Any]:
    """The JSON parameters of a generic preset called with ``kwargs``, e.g.
    ``LayoutRef("custom", preset_params("custom", slots=[CustomSlot(...)]))``."""
    fn = _PRESETS.get(preset)
    if fn is None:
        raise InvalidArgument(f"unknown layout preset {preset!r}", subject="layout")
    types = _keyword_types(fn)
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name not in types:
            raise InvalidArgument(f"{preset} has no parameter {name!r}", subject=f"layout.params.{name}")
        out[name] = encode(types[name], value, f"layout.params.{name}")
    return out


def _preset_factory(name: str, fn: Callable[..., L.Layout]) -> LayoutFactory:
    types = _keyword_types(fn)

    def factory(params: Mapping[str, Any]) -> LayoutFunction:
        kwargs: dict[str, Any] = {}
        for key, value in params.items():
            if key not in types:
                raise InvalidArgument(f"{name} has no parameter {key!r}", subject=f"layout.params.{key}")
            kwargs[key] = decode(types[key], value, f"layout.params.{key}")
        if name == "custom":
            if "slots" not in kwargs:
                raise InvalidArgument("custom layouts need slots", subject="layout.params.slots")
            slots = kwargs.pop("slots")
            return lambda ps, canvas: L.custom(ps, canvas, slots, **kwargs)
        return lambda ps, canvas: fn(ps, canvas, **kwargs)

    factory.__qualname__ = f"preset_factory.{name}"
    return factory


for _name, _fn in _PRESETS.items():
    register_template(_name, _preset_factory(_name, _fn))
