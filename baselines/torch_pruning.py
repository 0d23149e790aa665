"""Torch-Pruning's importance criteria as benchmark criteria `tp_<name>` (Torch-Pruning 1.6.1).

Each importance class of `torch_pruning.pruner.importance` is a criterion named after it, snake-cased
without its `Group` prefix and `Importance` suffix (`tp_name`). Registered by default, so that
`criteria: all` runs them: `tp_magnitude`, `tp_lamp`, `tp_bn_scale`, `tp_taylor`, `tp_hessian`. Made
on demand (a config or `--criterion` naming them): `tp_fpgm`, `tp_random`, `tp_obdc`, `tp_activation`.

Every criterion scores the producer's channels the way DepGraph does: it traces the suite's dependency
graph of the model (`thinet.surgery.build_graph`), takes the Torch-Pruning group of all the producer's
channels (`thinet.surgery.pruning_group`, the very call the surgery cuts with: the producer's filters,
its BatchNorm, the consumer's input columns and anything else the channels are tied to), runs what
the importance needs on the selection images, calls `importance(group)` (one score per producer
channel) and keeps the `n_keep` largest. Every importance is built with Torch-Pruning's defaults,
whose group reduction is the **mean** over the layers that contribute and whose normaliser divides
by the mean score (a per-layer constant: it changes no ranking). On a group, per channel c:

* `tp_magnitude` (GroupMagnitudeImportance, DepGraph's group norm, p=2): the mean of Σ W_prod[c]²
  (the producer's filter c), γ_c² (its BatchNorm's scale; β is left out, bias=False) and
  Σ W_cons[:, c]² (the consumer's input columns of c), over those of the three that exist.
* `tp_lamp` (LAMPImportance): the same mean group score s, then LAMP's normalisation: with the
  scores sorted ascending, s_(i) / Σ_{j ≥ i} s_(j).
* `tp_bn_scale` (BNScaleImportance, network slimming): |γ_c| of the BatchNorm(s) in the group.
  A producer with no affine BatchNorm on its output is refused, naming the layer.
* `tp_taylor` (GroupTaylorImportance, Molchanov et al. 2019): the mean of Σ |W ⊙ ∂L/∂W| over the
  producer's filter c and over the consumer's input columns of c, with L the cross-entropy summed
  over all selection images (one gradient, eval mode). Torch-Pruning 1.6.1's BatchNorm branch tests
  for GroupNorm's pruning function, so a BatchNorm never contributes.
* `tp_hessian` (GroupHessianImportance, grouped Optimal Brain Damage): the mean of Σ W² ⊙ h over
  the producer's filter c, γ_c² h_γ and the consumer's input columns, where h is the mean over the
  selection images of each image's squared gradient (∂L_n/∂W)², the diagonal Fisher approximation
  of the Hessian that Torch-Pruning's `accumulate_grad` is meant to build. Its 1.6.1 code tests
  membership by parameter *name* but stores by parameter, so each call overwrites the last and
  only the last image counts; the per-image squares are therefore averaged here and handed to the
  importance as the gradient it reads (what its `__call__` does with a correct accumulation).

On demand: `tp_fpgm` (FPGMImportance) sums, per channel, the distances of its |W|² filter (and
consumer column) to all others in the layer, so the most replaceable filters score lowest;
`tp_random` (RandomImportance) draws uniform scores from `ctx.seed`; `tp_obdc` (OBDCImportance,
EigenDamage's diagonal) scores Σ W² ⊙ F over the producer's filter c, with F the diagonal Fisher of
its weight (each image's squared weight gradient, summed, over the number of batches), which
Torch-Pruning's `step()` builds from the layer's inputs and output gradients (the cross-entropy is
averaged per batch: `step()` multiplies the output gradients by the batch size);
Torch-Pruning 1.6.1 appends a bias column to that Fisher that the weight lacks, so a producer with a
bias (or a dilated, grouped, non-zero-padded or 'same'-padded conv, which its patch extraction
ignores) is refused, naming the layer; `tp_activation` (ActivationImportance) scores each channel
by the mean |input| the consumer sees (a conv; the sum over images for a Linear), accumulated over
all selection batches (Torch-Pruning's hook keeps only the last forward pass).

LAMP is monotone in the magnitude score within one layer: in ascending order the numerator grows
and the denominator shrinks, so it ranks a layer's channels exactly as `tp_magnitude` does (equal
scores aside). LAMP exists to compare scores *across* layers (global pruning); this benchmark
prunes each layer to its own keep ratio, so `tp_lamp` keeps the same channels as `tp_magnitude`.

Every criterion leaves the model as it found it: weights, train/eval flags, no `.grad` (gradients
present before are put back), `requires_grad` flags, no hook, no attribute. Torch-Pruning is
imported inside the functions only: listing the criteria does not load it.

>>> tp_name("GroupMagnitudeImportance"), tp_name("BNScaleImportance"), tp_name("LAMPImportance")
('tp_magnitude', 'tp_bn_scale', 'tp_lamp')
>>> from thinet.criteria import available_criteria, on_demand_criteria
>>> [n for n in available_criteria() if n.startswith("tp_")]
['tp_bn_scale', 'tp_hessian', 'tp_lamp', 'tp_magnitude', 'tp_taylor']
>>> set(on_demand_criteria()) >= {"tp_activation", "tp_fpgm", "tp_obdc", "tp_random"}
True
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from baselines._ranking import keep_largest
from thinet.criteria import (
    CriterionContext, batchnorm_refusal, eval_mode, register_criterion, register_criterion_family,
)
from thinet.types import LayerPair, PruningError

PREFIX = "tp_"


def tp_name(class_name: str) -> str:
    """The criterion name of a Torch-Pruning importance class: `tp_` + its snake-cased name without
    the `Group` prefix and the `Importance` suffix (acronyms stay one word).

    >>> tp_name("GroupTaylorImportance"), tp_name("OBDCImportance"), tp_name("ActivationImportance")
    ('tp_taylor', 'tp_obdc', 'tp_activation')
    """
    core = re.sub(r"^Group(?=[A-Z])", "", class_name)
    core = re.sub(r"Importance$", "", core)
    return PREFIX + re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", core).lower()


@dataclass(frozen=True)
class Spec:
    """One importance: its class in `torch_pruning.pruner.importance`, what it needs computed before it
    is called, and whether it is registered by default."""

    cls: str
    needs: str  # "weights", "random", "gradient", "hessian", "fisher", "activation"
    default: bool


# Torch-Pruning 1.6.1's importance classes (MagnitudeImportance, TaylorImportance and HessianImportance
# are aliases of the Group* classes). A static table: naming them must not import Torch-Pruning.
_SPECS = (
    Spec("GroupMagnitudeImportance", "weights", True),
    Spec("LAMPImportance", "weights", True),
    Spec("BNScaleImportance", "weights", True),
    Spec("GroupTaylorImportance", "gradient", True),
    Spec("GroupHessianImportance", "hessian", True),
    Spec("FPGMImportance", "weights", False),
    Spec("RandomImportance", "random", False),
    Spec("OBDCImportance", "fisher", False),
    Spec("ActivationImportance", "activation", False),
)
IMPORTANCES: dict[str, Spec] = {tp_name(spec.cls): spec for spec in _SPECS}
DEFAULT_NAMES = tuple(name for name, spec in IMPORTANCES.items() if spec.default)


def known_names() -> list[str]:
    """Every `tp_<name>` criterion, registered by default or made on demand."""
    return sorted(IMPORTANCES)


# ---------------------------------------------------------------- data-free refusals

def _bn_refusal(model: nn.Module, pair: LayerPair, example_inputs: Any) -> str | None:
    return batchnorm_refusal(model, pair.producer, example_inputs)


def obdc_layer_refusal(module: nn.Module) -> str | None:
    """Why Torch-Pruning 1.6.1's OBDC cannot score the output channels of `module`, or None.

    >>> obdc_layer_refusal(nn.Conv2d(2, 4, 3, bias=False)) is None
    True
    >>> obdc_layer_refusal(nn.Linear(2, 4))
    'it has a bias: Torch-Pruning 1.6.1 adds a bias column to its Fisher (shape out x (in+1)) that the weight lacks'
    """
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        return f"it is {type(module).__name__}; OBDC's per-sample gradients cover nn.Conv2d and nn.Linear only"
    if module.bias is not None:
        return ("it has a bias: Torch-Pruning 1.6.1 adds a bias column to its Fisher (shape out x (in+1)) that the "
                "weight lacks")
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            return f"its padding is {module.padding!r}: OBDC's patch extraction needs numeric padding"
        if module.groups != 1 or tuple(module.dilation) != (1, 1) or module.padding_mode != "zeros":
            return (f"OBDC's patch extraction ignores groups, dilation and padding mode (groups={module.groups}, "
                    f"dilation={tuple(module.dilation)}, padding_mode={module.padding_mode!r})")
    return None


def _obdc_refusal(model: nn.Module, pair: LayerPair, example_inputs: Any) -> str | None:
    from thinet.models import find_layer

    return obdc_layer_refusal(find_layer(model, pair.producer, "producer"))


# Checked before any compute (`thinet.criteria.layer_refusal`) and again inside the criterion.
LAYER_CHECKS: dict[str, Callable[[nn.Module, LayerPair, Any], str | None]] = {
    "tp_bn_scale": _bn_refusal,
    "tp_obdc": _obdc_refusal,
}


# ---------------------------------------------------------------- scoring

def _example(ctx: CriterionContext) -> torch.Tensor:
    """The tensor the graph is traced with: the run's example inputs, else two selection images."""
    if ctx.example_inputs is not None:
        return ctx.example_inputs
    from thinet.sampling import first_images

    return first_images(ctx.batches, 2).to(ctx.device)


def _group_modules(group: Any, *, out: bool | None = None) -> list[nn.Module]:
    """The modules of a group (in order, once each); `out=True`/`False`: only those whose output/input
    channels the group cuts."""
    graph = group._DG
    found: list[nn.Module] = []
    for item in group:
        module, handler = item.dep.target.module, item.dep.handler
        if not isinstance(module, nn.Module) or module in found:
            continue
        if out is True and not graph.is_out_channel_pruning_fn(handler):
            continue
        cuts_input = graph.is_in_channel_pruning_fn(handler) and not graph.is_out_channel_pruning_fn(handler)
        if out is False and not cuts_input:
            continue
        found.append(module)
    return found


def _group_parameters(group: Any) -> list[nn.Parameter]:
    params: list[nn.Parameter] = []
    for module in _group_modules(group):
        params += [p for p in module.parameters(recurse=False) if all(p is not q for q in params)]
    return params


@contextlib.contextmanager
def _gradients_restored(model: nn.Module, params: list[nn.Parameter]) -> Iterator[None]:
    """Every parameter's `.grad` cleared for the block and put back afterwards (None, as a criterion
    must leave it, unless the caller had one); `params` require grad during the block."""
    saved = [(p, p.grad, p.requires_grad) for p in model.parameters()]
    extra = [(p, p.grad, p.requires_grad) for p in params if all(p is not q for q, _, _ in saved)]
    try:
        for p, _, _ in saved + extra:
            p.grad = None
        for p in params:
            p.requires_grad_(True)
        yield
    finally:
        for p, grad, flag in saved + extra:
            p.grad = grad
            p.requires_grad_(flag)


def _labelled(ctx: CriterionContext, name: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    count = 0
    for x, y in ctx.iter_batches():
        if y is None:
            raise PruningError(f"criterion {name!r} on layer {ctx.pair.producer!r} needs labelled (images, labels) "
                               "batches: it differentiates the cross-entropy")
        count += x.shape[0]
        yield x, y
    if count == 0:
        raise PruningError(f"criterion {name!r} on layer {ctx.pair.producer!r}: no images in the selection batches")


def _set_gradient(ctx: CriterionContext, name: str, params: list[nn.Parameter]) -> None:
    """Taylor: ∂L/∂θ of the cross-entropy summed over every selection image, as each θ.grad."""
    total = [torch.zeros_like(p) for p in params]
    with eval_mode(ctx.model), torch.enable_grad():
        for x, y in _labelled(ctx, name):
            loss = F.cross_entropy(ctx.model(x), y, reduction="sum")
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for acc, grad in zip(total, grads):
                if grad is not None:
                    acc += grad
    for p, grad in zip(params, total):
        p.grad = grad


def _set_squared_gradient(ctx: CriterionContext, name: str, params: list[nn.Parameter]) -> None:
    """Hessian (OBD): the mean over images of each image's squared gradient (∂L_n/∂θ)², as each θ.grad."""
    total = [torch.zeros_like(p) for p in params]
    count = 0
    with eval_mode(ctx.model), torch.enable_grad():
        for x, y in _labelled(ctx, name):
            # One image per pass (eval mode: the same as in a batch): each image's backward through a
            # whole batch's graph (retain_graph, as Torch-Pruning's example) would cost a batch each.
            for i in range(x.shape[0]):
                loss = F.cross_entropy(ctx.model(x[i:i + 1]), y[i:i + 1], reduction="sum")
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                for acc, grad in zip(total, grads):
                    if grad is not None:
                        acc += grad.pow(2)
            count += x.shape[0]
    for p, grad in zip(params, total):
        p.grad = grad / count


def _prepare_fisher(ctx: CriterionContext, name: str, importance: Any, group: Any) -> None:
    """OBDC: each out-pruned layer's per-image Fisher through Torch-Pruning's own `step()`, from its inputs and
    output gradients (captured with autograd, not backward hooks); the weights' gradients set as `.grad`."""
    scored = [m for m in _group_modules(group, out=True) if isinstance(m, (nn.Conv2d, nn.Linear))]
    for module in scored:
        reason = obdc_layer_refusal(module)
        if reason is not None:
            names = {m: n for n, m in ctx.model.named_modules()}
            raise PruningError(f"criterion {name!r} cannot score layer {ctx.pair.producer!r}: its group cuts the "
                               f"output of {names.get(module, '?')!r}, and {reason}")
    seen: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def capture(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        seen[module] = (args[0].detach(), output)

    weights = [m.weight for m in scored]
    grads = [torch.zeros_like(w) for w in weights]
    importance.modules = scored
    importance.num_classes = -1  # its classifier filter: a producer always has a consumer
    handles = [m.register_forward_hook(capture) for m in scored]
    try:
        with eval_mode(ctx.model), torch.enable_grad():
            for x, y in _labelled(ctx, name):
                seen.clear()
                # Mean over the batch: OBDC multiplies the output gradients by the batch size.
                loss = F.cross_entropy(ctx.model(x), y)
                outputs = [seen[m][1] for m in scored]
                found = torch.autograd.grad(loss, outputs + weights, allow_unused=True)
                for module, out_grad in zip(scored, found[:len(scored)]):
                    importance.A[module] = seen[module][0]
                    importance.DS[module] = out_grad.detach() if out_grad is not None else torch.zeros_like(
                        seen[module][1])
                for acc, grad in zip(grads, found[len(scored):]):
                    if grad is not None:
                        acc += grad
                importance.step()
    finally:
        for handle in handles:
            handle.remove()
        seen.clear()
    # OBDC reads a Fisher entry for every conv/linear of the group but uses only the out-pruned ones'.
    for module in _group_modules(group):
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module not in importance.Fisher:
            importance.Fisher[module] = torch.zeros((), device=module.weight.device)
    for weight, grad in zip(weights, grads):
        weight.grad = grad


@contextlib.contextmanager
def _activation_statistics(ctx: CriterionContext, name: str, group: Any) -> Iterator[None]:
    """ActivationImportance: the consumers' `_importance` (Torch-Pruning's hook statistic, mean |input| per
    channel of a conv, the sum over rows for a Linear) over every selection batch, removed afterwards."""
    readers = [m for m in _group_modules(group, out=False) if isinstance(m, (nn.Conv2d, nn.Linear))]
    sums: dict[nn.Module, torch.Tensor] = {}
    rows: dict[nn.Module, int] = {}

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0].detach().abs()
        if isinstance(module, nn.Conv2d):
            part, n = x.sum((0, 2, 3)), x.shape[0] * x.shape[2] * x.shape[3]
        else:
            part, n = x.reshape(-1, x.shape[-1]).sum(0), 0
        sums[module] = sums[module] + part if module in sums else part
        rows[module] = rows.get(module, 0) + n

    before = {m: m.__dict__["_importance"] for m in readers if "_importance" in m.__dict__}
    handles = [m.register_forward_pre_hook(record) for m in readers]
    try:
        with eval_mode(ctx.model), torch.no_grad():
            images = 0
            for x, _ in ctx.iter_batches():
                ctx.model(x)
                images += x.shape[0]
        if images == 0:
            raise PruningError(f"criterion {name!r} on layer {ctx.pair.producer!r}: no images in the selection "
                               "batches")
        for handle in handles:
            handle.remove()
        handles = []
        for module in readers:
            if module in sums:
                module._importance = sums[module] / rows[module] if rows[module] else sums[module]
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module in readers:
            module.__dict__.pop("_importance", None)
            if module in before:
                module._importance = before[module]


def make_importance(name: str) -> Any:
    """A fresh Torch-Pruning importance object for criterion `name`, with its defaults."""
    from torch_pruning.pruner import importance as tp_importance

    spec = IMPORTANCES.get(name)
    if spec is None:
        raise PruningError(f"unknown Torch-Pruning criterion {name!r}; known: {', '.join(known_names())}")
    cls = getattr(tp_importance, spec.cls, None)
    if cls is None:
        raise PruningError(f"criterion {name!r}: the installed Torch-Pruning has no {spec.cls} (1.6.1 is pinned)")
    return cls()


def tp_scores(name: str, ctx: CriterionContext) -> torch.Tensor:
    """Torch-Pruning importance `name` (`tp_magnitude`, ...) of every channel of `ctx.pair.producer`, as
    `importance(group)` returns it on the producer's group (float64, on CPU).

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    >>> ctx = CriterionContext(net, LayerPair("0", "2"), [torch.randn(2, 1, 8, 8)], keep_ratio=0.5)
    >>> tp_scores("tp_magnitude", ctx).shape
    torch.Size([4])
    """
    from thinet.surgery import build_graph, pruning_group
    from thinet.surgery import out_pruning_fn

    spec = IMPORTANCES.get(name)
    if spec is None:
        raise PruningError(f"unknown Torch-Pruning criterion {name!r}; known: {', '.join(known_names())}")
    layer = ctx.pair.producer
    example = _example(ctx)
    check = LAYER_CHECKS.get(name)
    reason = check(ctx.model, ctx.pair, example) if check is not None else None
    if reason is not None:
        raise PruningError(f"criterion {name!r} cannot score layer {layer!r}: {reason}")
    importance = make_importance(name)
    graph = build_graph(ctx.model, example)
    producer = ctx.producer
    group = pruning_group(graph, producer, out_pruning_fn(producer), list(range(ctx.num_channels)), layer=layer)
    params = _group_parameters(group)
    with _gradients_restored(ctx.model, params), contextlib.ExitStack() as stack:
        if spec.needs == "gradient":
            _set_gradient(ctx, name, params)
        elif spec.needs == "hessian":
            _set_squared_gradient(ctx, name, params)
        elif spec.needs == "fisher":
            _prepare_fisher(ctx, name, importance, group)
        elif spec.needs == "activation":
            stack.enter_context(_activation_statistics(ctx, name, group))
        elif spec.needs == "random":
            stack.enter_context(torch.random.fork_rng(devices=[]))
            torch.manual_seed(ctx.seed)
        with eval_mode(ctx.model):
            scores = importance(group)
    if scores is None:
        raise PruningError(f"criterion {name!r} cannot score layer {layer!r}: Torch-Pruning's {spec.cls} finds "
                           "nothing to score in the layer's group")
    scores = torch.as_tensor(scores).detach().to(device="cpu", dtype=torch.float64).flatten()
    if scores.numel() != ctx.num_channels:
        raise PruningError(f"criterion {name!r} on layer {layer!r}: {spec.cls} gave {scores.numel()} scores for "
                           f"{ctx.num_channels} channels")
    if not bool(torch.isfinite(scores).all()):
        raise PruningError(f"criterion {name!r} on layer {layer!r}: {spec.cls} gave non-finite scores "
                           f"(channels {torch.nonzero(~torch.isfinite(scores)).flatten()[:5].tolist()})")
    return scores


def _make(name: str) -> Callable[[CriterionContext], torch.Tensor]:
    spec = IMPORTANCES[name]

    def criterion(ctx: CriterionContext) -> torch.Tensor:
        return keep_largest(tp_scores(name, ctx), ctx.n_keep)

    criterion.__name__ = criterion.__qualname__ = f"criterion_{name}"
    criterion.__doc__ = f"Torch-Pruning's {spec.cls} on the producer's group; the n_keep largest scores."
    check = LAYER_CHECKS.get(name)
    if check is not None:
        criterion.layer_check = check  # type: ignore[attr-defined]
    return criterion


def resolve(name: str) -> Callable[[CriterionContext], torch.Tensor]:
    """The criterion function of `tp_<name>` (for `register_criterion_family`); PruningError listing the known
    names otherwise."""
    if name not in IMPORTANCES:
        raise PruningError(f"unknown Torch-Pruning criterion {name!r}; known tp_ criteria: "
                           f"{', '.join(known_names())}")
    return _make(name)


for _name in DEFAULT_NAMES:
    register_criterion(_name)(_make(_name))
register_criterion_family(PREFIX, resolve, known_names)
