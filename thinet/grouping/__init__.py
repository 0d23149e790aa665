"""gcos (Group COnvolution with Shuffling, the TPAMI 2019 version of ThiNet), reconstructed: each dense
conv of a pruned model becomes a g-group conv whose partition of input channels and filters is chosen
by ThiNet's reconstruction error (`_greedy.py` derives the objective, the greedy and its cost), with a
fixed channel permutation folded into the producer where possible (`ChannelShuffle` elsewhere). The
journal's gcos section is not available (only its abstract): this is a reconstruction from ThiNet's
own principle, not the authors' code.

Grouping criteria are a registry like the pruning criteria: `gcos`, and the baselines `contiguous`
(ResNeXt/ShuffleNet's blocks) and `random` (from a seed), run through the same conversion, Eq. 7's
least squares per group included; `<name>_nols` is each without it.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
...                     nn.Conv2d(8, 8, 3, padding=1))
>>> images = torch.randn(8, 3, 10, 10)
>>> plan = plan_grouping(net, 2, images[:1])
>>> net = convert_model(net, 2, "gcos", batches=[images], samples_per_image=4, plan=plan)
>>> [type(m).__name__ for m in net]
['Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'Sequential']
>>> net[4].shuffle.order.numel(), net[4].conv.groups  # its producer is grouped: an explicit shuffle
(8, 2)
"""
from __future__ import annotations

import importlib
import pkgutil

from thinet.grouping._convert import convert_layer, grouped_conv, permute_fold
from thinet.grouping._greedy import (
    MAX_ROUNDS,
    filter_errors,
    gcos_partition,
    partition_error,
)
from thinet.grouping._model import convert_model
from thinet.grouping._plan import Fold, GroupPlan, LayerConversion, plan_grouping
from thinet.grouping._registry import (
    GroupingContext,
    GroupingEntry,
    available_groupings,
    get_grouping,
    register_grouping,
    run_grouping,
)
from thinet.grouping._shuffle import ChannelShuffle
from thinet.grouping._stats import collect_filter_grams
from thinet.grouping._types import Grouping, check_grouping

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "MAX_ROUNDS",
    "ChannelShuffle",
    "Fold",
    "GroupPlan",
    "Grouping",
    "GroupingContext",
    "GroupingEntry",
    "LayerConversion",
    "available_groupings",
    "check_grouping",
    "collect_filter_grams",
    "convert_layer",
    "convert_model",
    "filter_errors",
    "gcos_partition",
    "get_grouping",
    "grouped_conv",
    "partition_error",
    "permute_fold",
    "plan_grouping",
    "register_grouping",
    "run_grouping",
]
