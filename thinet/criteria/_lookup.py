"""Looking criteria up by name: lazy loading of the built-in ones, plugins and entry points,
and the check of what a criterion returns."""
from __future__ import annotations

import importlib
import pkgutil

import torch

from thinet.criteria._context import CriterionContext
from thinet.criteria._plugins import load_entry_points
from thinet.criteria._registry import CriterionFn, families, family_of, register_criterion, registered
from thinet.types import LayerPair, PruningError, Selection, check_selection


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
    if name in table:
        return table[name]
    family = family_of(name) if isinstance(name, str) else None
    if family is not None:  # made on demand (tp_<name>); an unknown one lists the family's names
        return register_criterion(name)(family[0](name))
    on_demand = sorted(n for n in on_demand_criteria() if n not in table)
    extra = f" (on demand: {', '.join(on_demand)})" if on_demand else ""
    raise PruningError(f"unknown criterion {name!r}; known criteria: {', '.join(sorted(table))}{extra}")


def on_demand_criteria() -> list[str]:
    """Names a criterion family can make but that are not registered yet (e.g. the Torch-Pruning
    importances beyond the default ones); `get_criterion` registers one when asked for it."""
    _ensure_loaded()
    table = registered()
    return sorted({n for _, names in families().values() for n in names()} - set(table))


def layer_refusal(name: str, model, pair: LayerPair, example_inputs) -> str | None:
    """Why criterion `name` cannot score the producer of `pair` in `model` (no BatchNorm for a BN-scale
    criterion, no ReLU for APoZ, ...), or None when it can: the criterion's `layer_check(model, pair,
    example_inputs)`, data-free and before any compute.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    >>> layer_refusal("weight_sum", net, LayerPair("0", "2"), torch.zeros(2, 1, 8, 8)) is None
    True
    """
    check = getattr(get_criterion(name), "layer_check", None)
    return None if check is None else check(model, pair, example_inputs)


def check_layers(name: str, model, pairs, example_inputs) -> None:
    """PruningError naming the first layer of `pairs` criterion `name` cannot score, and why."""
    for pair in pairs:
        reason = layer_refusal(name, model, pair, example_inputs)
        if reason is not None:
            raise PruningError(f"criterion {name!r} cannot score layer {pair.producer!r}: {reason}")


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
    if isinstance(result, Selection) and (result.consumer_weight is not None or result.consumer_bias is not None):
        selection.consumer_weight, selection.consumer_bias = _checked_refit(where, result, selection, ctx)
    return selection


def _checked_refit(where: str, result: Selection, selection: Selection,
                   ctx: CriterionContext) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """A criterion's refit consumer weight and bias, checked against the consumer they will replace."""
    if ctx.unit is not None:
        raise PruningError(f"{where} returned a refit consumer weight for a channel unit; only a plain "
                           "producer/consumer pair takes one")
    if not torch.equal(result.keep.cpu(), selection.keep):
        raise PruningError(f"{where} returned a refit consumer weight with unsorted keep indices")
    consumer = ctx.consumer
    weight, bias = result.consumer_weight, result.consumer_bias
    if weight is not None:
        expected = list(consumer.weight.shape)
        expected[1] = consumer.weight.shape[1] // ctx.num_channels * selection.keep.numel()
        if not isinstance(weight, torch.Tensor) or list(weight.shape) != expected:
            got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
            raise PruningError(f"{where}: consumer_weight has shape {got}; consumer {ctx.pair.consumer!r} keeps "
                               f"a weight of shape {tuple(expected)} on the {selection.keep.numel()} kept channels")
        weight = weight.detach().cpu()
    if bias is not None:
        if getattr(consumer, "bias", None) is None or not isinstance(bias, torch.Tensor) \
                or bias.shape != consumer.bias.shape:
            raise PruningError(f"{where}: consumer_bias does not match the bias of consumer {ctx.pair.consumer!r} "
                               f"({None if getattr(consumer, 'bias', None) is None else tuple(consumer.bias.shape)})")
        bias = bias.detach().cpu()
    for label, value in (("consumer_weight", weight), ("consumer_bias", bias)):
        if value is not None and not bool(torch.isfinite(value).all()):
            raise PruningError(f"{where}: {label} has non-finite values")
    return weight, bias


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
