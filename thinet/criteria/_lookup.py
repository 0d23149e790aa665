"""Looking criteria up by name: lazy loading of the built-in ones, plugins and entry points,
and the check of what a criterion returns."""
from __future__ import annotations

import importlib
import pkgutil

import torch

from thinet.criteria._context import CriterionContext
from thinet.criteria._plugins import load_entry_points
from thinet.criteria._registry import CriterionFn, registered
from thinet.types import PruningError, Selection, check_selection


# Modules, and packages whose every module, register the criteria shipped with the project.
BUILTIN_MODULES = ("thinet.criteria._thinet",)
BUILTIN_PACKAGES = ("baselines",)

_loaded = False


def _import_package_modules(package: str) -> None:
    # Walked here as well as in baselines/__init__.py: an editable install made
    # before that __init__ existed imports the package as a namespace, skipping it.
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True  # set first: the modules below call back into this registry
    try:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        for package in BUILTIN_PACKAGES:
            _import_package_modules(package)
        load_entry_points()
    except BaseException:
        _loaded = False
        raise


def available_criteria() -> list[str]:
    """Sorted names of every registered criterion.

    >>> {"thinet", "thinet_nols", "thinet_forward", "weight_sum", "apoz", "taylor", "random"} <= set(available_criteria())
    True
    """
    _ensure_loaded()
    return sorted(registered())


def get_criterion(name: str) -> CriterionFn:
    """The function registered as `name`; unknown names raise PruningError listing the known ones.

    >>> get_criterion("random").__name__
    'random_selection'
    """
    _ensure_loaded()
    table = registered()
    if name not in table:
        raise PruningError(f"unknown criterion {name!r}; known criteria: {', '.join(sorted(table))}")
    return table[name]


def validate_selection(name: str, result: object, ctx: CriterionContext) -> Selection:
    """Check a criterion's output and normalise it into a Selection (sorted keep, aligned scale)."""
    where = f"criterion {name!r} on layer {ctx.pair.producer!r}"
    scale = None
    if isinstance(result, Selection):
        keep, scale = result.keep, result.scale
    elif isinstance(result, torch.Tensor):
        keep = result
    elif isinstance(result, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in result):
        keep = torch.tensor(result, dtype=torch.long)
    else:
        raise PruningError(f"{where} returned {type(result).__name__}; expected a Selection or a LongTensor of kept indices")
    if not isinstance(keep, torch.Tensor):
        raise PruningError(f"{where} returned {type(keep).__name__} indices; expected a LongTensor")
    keep = keep.detach().cpu().flatten()
    if scale is not None:
        scale = torch.as_tensor(scale).detach().cpu().flatten()
    check_selection(keep, ctx.num_channels, where, scale=scale, n_keep=ctx.n_keep)
    selection = Selection.from_keep(keep.long(), ctx.num_channels, scale)
    if isinstance(result, Selection) and result.consumer_scales is not None:
        if not torch.equal(result.keep.cpu(), selection.keep):
            raise PruningError(f"{where} returned consumer_scales with unsorted keep indices")
        selection.consumer_scales = {k: v.detach().cpu() for k, v in result.consumer_scales.items()}
    return selection


def run_criterion(name: str, ctx: CriterionContext) -> Selection:
    """Run criterion `name` on `ctx` and return its validated Selection.

    >>> import torch
    >>> from torch import nn
    >>> from thinet.types import LayerPair
    >>> model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 2, 3))
    >>> ctx = CriterionContext(model, LayerPair("0", "2"), [torch.randn(2, 1, 8, 8)], keep_ratio=0.5, seed=3)
    >>> sel = run_criterion("random", ctx)
    >>> sel.keep.numel(), sel.removed.numel(), sel.scale.tolist()
    (3, 3, [1.0, 1.0, 1.0])
    """
    fn = get_criterion(name)
    return validate_selection(name, fn(ctx), ctx)
