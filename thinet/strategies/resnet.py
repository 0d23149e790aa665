"""ResNet pruning recipe of §3.3 / Figure 3: the first two convs of every bottleneck block.

Fine-tuning follows each block, not each layer (§4.3: "we prune ResNet-50 from block 2a to 5c
iteratively"; the authors' released scripts do the same): conv1 is pruned, then conv2, then the
block is fine-tuned once; after the last block the final fine-tune runs instead.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from thinet.strategies._registry import register_strategy
from thinet.types import LayerPair, PruneStep, PruningError

_BOTTLENECK_CONVS = ("conv1", "conv2", "conv3")


def bottleneck_blocks(model: nn.Module) -> list[str]:
    """Names of the modules with Conv2d children conv1, conv2, conv3, in network order."""
    blocks = []
    for name, module in model.named_modules():
        children = dict(module.named_children())
        if all(isinstance(children.get(c), nn.Conv2d) for c in _BOTTLENECK_CONVS):
            blocks.append(name)
    return blocks


@register_strategy("resnet_bottleneck")
def resnet_bottleneck(model: nn.Module, keep_ratio: float, example_inputs: Any = None) -> list[PruneStep]:
    """(conv1 → conv2) and (conv2 → conv3) of every bottleneck at `keep_ratio`; block outputs untouched;
    fine-tuning after each block's second step.

    >>> import torchvision
    >>> steps = resnet_bottleneck(torchvision.models.resnet50(weights=None), 0.7)
    >>> len(steps), steps[1].pair, sum(s.finetune_after for s in steps)
    (32, LayerPair(producer='layer1.0.conv2', consumer='layer1.0.conv3'), 16)
    """
    blocks = bottleneck_blocks(model)
    if not blocks:
        raise PruningError(f"strategy 'resnet_bottleneck' found no bottleneck block (a module with conv1, conv2, "
                           f"conv3 Conv2d children) in {type(model).__name__}")
    steps = []
    for block in blocks:
        prefix = f"{block}." if block else ""
        steps.append(PruneStep(LayerPair(prefix + "conv1", prefix + "conv2"), keep_ratio, finetune_after=False))
        steps.append(PruneStep(LayerPair(prefix + "conv2", prefix + "conv3"), keep_ratio))
    return steps
