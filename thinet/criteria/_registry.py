"""The raw name -> function table behind `thinet.criteria`.

Kept free of imports from the rest of the engine so that criterion modules can
register themselves while `thinet.criteria` is still loading them.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from thinet.types import PruningError

CriterionFn = Callable[..., object]
F = TypeVar("F", bound=CriterionFn)

_REGISTRY: dict[str, CriterionFn] = {}
# prefix -> (resolve(name) -> criterion function, names() -> the names it can resolve)
_FAMILIES: dict[str, tuple[Callable[[str], CriterionFn], Callable[[], list[str]]]] = {}


def _same_definition(a: CriterionFn, b: CriterionFn) -> bool:
    # Re-importing a module (a reload, or the same file named twice in a config)
    # builds a new function object for the same definition: that is no conflict.
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None), getattr(b, "__qualname__", None))


def register_criterion(name: str) -> Callable[[F], F]:
    """Decorator registering `fn(ctx) -> Selection | LongTensor` under `name`.

    >>> import torch
    >>> from thinet.criteria import register_criterion
    >>> @register_criterion("doc_first_channels")
    ... def first_channels(ctx):
    ...     return torch.arange(ctx.n_keep)
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip() or "," in name:
        raise PruningError(f"criterion name {name!r} is invalid: use a non-empty name without spaces at the ends or commas")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise PruningError(f"criterion {name!r}: {fn!r} is not callable")
        known = _REGISTRY.get(name)
        if known is not None and known is not fn and not _same_definition(known, fn):
            raise PruningError(
                f"criterion {name!r} is already registered by "
                f"{known.__module__}.{known.__qualname__}; cannot register "
                f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s} under the same name")
        _REGISTRY[name] = fn
        return fn

    return decorate


def register_criterion_family(prefix: str, resolve: Callable[[str], CriterionFn],
                              names: Callable[[], list[str]]) -> None:
    """Criteria made on demand: a name starting with `prefix` that is not registered is passed to
    `resolve(name)`, which returns its function (registered under the name from then on) or raises a
    PruningError that lists `names()`. Torch-Pruning's importances are such a family (`tp_<name>`):
    a few are registered by default, the others exist once a config or command names them.

    >>> register_criterion_family("doc_", lambda name: (lambda ctx: None), lambda: ["doc_any"])
    >>> family_of("doc_any") is not None, family_of("other") is None
    (True, True)
    >>> del _FAMILIES["doc_"]
    """
    if not prefix or not isinstance(prefix, str):
        raise PruningError(f"criterion family prefix {prefix!r} must be a non-empty string")
    _FAMILIES[prefix] = (resolve, names)


def family_of(name: str) -> tuple[Callable[[str], CriterionFn], Callable[[], list[str]]] | None:
    """The family whose prefix `name` starts with (the longest such prefix), or None."""
    prefixes = [p for p in _FAMILIES if name.startswith(p)]
    return _FAMILIES[max(prefixes, key=len)] if prefixes else None


def families() -> dict[str, tuple[Callable[[str], CriterionFn], Callable[[], list[str]]]]:
    return _FAMILIES


def registered() -> dict[str, CriterionFn]:
    """The live table (no lazy loading): use `thinet.criteria.available_criteria` instead."""
    return _REGISTRY
