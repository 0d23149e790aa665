"""VGG pruning recipes of §3.3/§4.2: ThiNet-Conv, ThiNet-Tiny, and the GAP head of ThiNet-GAP."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.vgg import VGG

from thinet.strategies._registry import register_strategy
from thinet.types import LayerPair, PruneStep, PruningError

# ThiNet-Tiny keeps half of conv5_3, "directly related to the final feature representation" (§4.2).
TINY_LAST_KEEP_RATIO = 0.5
# ThiNet-Conv prunes the convs of the first four groups (conv1_1 ... conv4_3 in VGG-16).
CONV_GROUPS_PRUNED = 4
# The last conv of groups 1-3 (conv1_2, conv2_2, conv3_3) gets an extra fine-tuning epoch (§4.2).
GROUP_END_GROUPS = 3


def vgg_conv_groups(model: nn.Module, strategy: str) -> list[list[str]]:
    """Module names of the convs of each VGG group (groups end at a pooling layer)."""
    from thinet.models import vgg_conv_names

    if not isinstance(getattr(model, "features", None), nn.Sequential):
        raise PruningError(f"strategy {strategy!r} needs a VGG-style model with a `features` Sequential; "
                           f"{type(model).__name__} has none")
    try:
        names = vgg_conv_names(model)
    except ValueError as err:
        raise PruningError(f"strategy {strategy!r}: {err}") from err
    groups: dict[int, list[str]] = {}
    for paper_name, module_name in names.items():
        group = int(paper_name[4:].split("_")[0])
        groups.setdefault(group, []).append(module_name)
    return [groups[g] for g in sorted(groups)]


def _chain_steps(convs: list[str], consumers: list[str], ratios: list[float], group_ends: set[str]) -> list[PruneStep]:
    return [PruneStep(LayerPair(p, c), r, p in group_ends) for p, c, r in zip(convs, consumers, ratios)]


@register_strategy("vgg16_conv")
def vgg16_conv(model: nn.Module, keep_ratio: float, example_inputs: Any = None) -> list[PruneStep]:
    """ThiNet-Conv: conv1_1 … conv4_3 at `keep_ratio`, each consumed by the next conv.

    >>> import torchvision
    >>> steps = vgg16_conv(torchvision.models.vgg16(weights=None), 0.5)
    >>> len(steps), steps[0].pair, [s.pair.producer for s in steps if s.group_end]
    (10, LayerPair(producer='features.0', consumer='features.2'), ['features.2', 'features.7', 'features.14'])
    """
    groups = vgg_conv_groups(model, "vgg16_conv")
    if len(groups) <= CONV_GROUPS_PRUNED:
        raise PruningError(f"strategy 'vgg16_conv' needs at least {CONV_GROUPS_PRUNED + 1} conv groups separated "
                           f"by pooling (VGG-16 has 5); {type(model).__name__} has {len(groups)}")
    convs = [name for group in groups for name in group]
    pruned = [name for group in groups[:CONV_GROUPS_PRUNED] for name in group]
    ends = {group[-1] for group in groups[:GROUP_END_GROUPS]}
    return _chain_steps(pruned, convs[1:len(pruned) + 1], [keep_ratio] * len(pruned), ends)


def gap_classifier_name(model: nn.Module, last_conv: str, strategy: str) -> str:
    """Name of the Linear right after GAP that consumes the last conv, or PruningError."""
    modules = dict(model.named_modules())
    width = modules[last_conv].out_channels
    linears = [(n, m) for n, m in model.named_modules() if n.startswith("classifier") and isinstance(m, nn.Linear)]
    if not linears or linears[0][1].in_features != width:
        found = f"{linears[0][0]} has in_features {linears[0][1].in_features}" if linears else "no classifier Linear"
        raise PruningError(f"strategy {strategy!r} prunes the last conv {last_conv!r} ({width} channels) into a "
                           f"global-average-pooling head, but {found}; apply to_gap(model, num_classes) first")
    return linears[0][0]


@register_strategy("vgg16_tiny")
def vgg16_tiny(model: nn.Module, keep_ratio: float, example_inputs: Any = None) -> list[PruneStep]:
    """ThiNet-Tiny: conv1_1 … conv5_2 at `keep_ratio` (paper: 0.25), conv5_3 at 0.5 into the GAP classifier.

    >>> from thinet.models import create_model
    >>> steps = vgg16_tiny(create_model("vgg16_gap"), 0.25)
    >>> len(steps), steps[-1].pair.consumer, steps[-1].keep_ratio
    (13, 'classifier.0', 0.5)
    """
    groups = vgg_conv_groups(model, "vgg16_tiny")
    convs = [name for group in groups for name in group]
    classifier = gap_classifier_name(model, convs[-1], "vgg16_tiny")
    ratios = [keep_ratio] * (len(convs) - 1) + [TINY_LAST_KEEP_RATIO]
    ends = {group[-1] for group in groups[:GROUP_END_GROUPS]}
    return _chain_steps(convs, convs[1:] + [classifier], ratios, ends)


def to_gap(model: nn.Module, num_classes: int, *, seed: int = 0) -> nn.Module:
    """ThiNet-GAP head (§4.2): VGG's avgpool + FC layers → AdaptiveAvgPool2d(1) + flatten + Linear.

    The new Linear(last conv channels, num_classes) is initialised N(0, 0.01) from `seed`
    (torchvision's VGG init); VGG's forward flattens between avgpool and classifier.
    Returns the same model object.

    >>> import torchvision
    >>> model = to_gap(torchvision.models.vgg16(weights=None), 200)
    >>> model.classifier
    Sequential(
      (0): Linear(in_features=512, out_features=200, bias=True)
    )
    """
    if not isinstance(model, VGG):
        raise PruningError(f"to_gap needs a torchvision-style VGG (features/avgpool/classifier); got "
                           f"{type(model).__name__}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise PruningError(f"to_gap: num_classes must be a positive int, got {num_classes!r}")
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise PruningError(f"to_gap: {type(model).__name__}.features has no Conv2d")
    weight = next(model.parameters())
    linear = nn.Linear(convs[-1].out_channels, num_classes, device=weight.device, dtype=weight.dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator) * 0.01)
        linear.bias.zero_()
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(linear)
    return model
