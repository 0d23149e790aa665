"""Pruning strategies of §3.3: which layer pairs to prune, in which order, at which rate.

One module per family, each registering its planners with `@register_strategy`: `vgg.py`
(`vgg16_conv` = ThiNet-Conv, `vgg16_tiny` = ThiNet-Tiny, and `to_gap`, the GAP head of
ThiNet-GAP), `resnet.py` (`resnet_bottleneck`, Figure 3), `auto.py` (every prunable pair
the dependency graph finds). A new strategy is one new module here: every module of this
package not starting with `_` is imported.

>>> import torchvision
>>> available_strategies()
['auto', 'resnet_bottleneck', 'vgg16_conv', 'vgg16_tiny']
>>> steps = get_strategy("vgg16_conv")(torchvision.models.vgg16(weights=None), 0.5, None)
>>> steps[-1].pair
LayerPair(producer='features.21', consumer='features.24')
"""
from __future__ import annotations

import importlib
import pkgutil

from thinet.strategies._apply import prune_with_first_channels
from thinet.strategies._registry import Strategy, available_strategies, get_strategy, register_strategy

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

from thinet.strategies.auto import UnitPlan, find_prunable_pairs, plan_units  # noqa: E402
from thinet.strategies.vgg import to_gap  # noqa: E402

__all__ = ["Strategy", "UnitPlan", "available_strategies", "find_prunable_pairs", "plan_units", "get_strategy", "prune_with_first_channels",
           "register_strategy", "to_gap"]
