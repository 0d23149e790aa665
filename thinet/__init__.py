"""ThiNet: filter-level pruning guided by the next layer's statistics (Luo et al., ICCV 2017).

The package is built in floors, and nothing imports upward: `types` at the bottom; `models`,
`data` and `runtime` (training, evaluation, counting, checkpoints); the engine (`selection`,
`sampling`, `surgery`, `strategies`, `criteria`, `grouping`, `pipeline`); the experiment layer (`report`,
`experiment`); the benchmarks (`bench`); the `cli` on top. Each folder's public face is its `__init__`.

The public API below is flat and imported lazily, so `import thinet` stays cheap:

>>> import torch, thinet
>>> x_hat = torch.randn(1000, 16)
>>> sel = thinet.select_channels(x_hat, keep_ratio=0.5)
>>> sel.keep.numel()
8
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "LayerPair": "thinet.types",
    "PruneStep": "thinet.types",
    "Selection": "thinet.types",
    "PruningError": "thinet.types",
    "num_kept": "thinet.types",
    "select_channels": "thinet.selection",
    "select_from_gram": "thinet.selection",
    "select_coupled": "thinet.selection",
    "algorithm1_literal": "thinet.selection",
    "collect_samples": "thinet.sampling",
    "collect_gram": "thinet.sampling",
    "check_pair": "thinet.surgery",
    "prune_pair": "thinet.surgery",
    "find_unit": "thinet.surgery",
    "prune_unit": "thinet.surgery",
    "get_strategy": "thinet.strategies",
    "available_strategies": "thinet.strategies",
    "find_prunable_pairs": "thinet.strategies",
    "plan_units": "thinet.strategies",
    "count_params": "thinet.runtime",
    "count_flops": "thinet.runtime",
    "create_model": "thinet.models",
    "available_models": "thinet.models",
    "get_dataset": "thinet.data",
    "available_datasets": "thinet.data",
    "get_criterion": "thinet.criteria",
    "available_criteria": "thinet.criteria",
    "register_criterion": "thinet.criteria",
    "run_criterion": "thinet.criteria",
    "CriterionContext": "thinet.criteria",
    "Schedule": "thinet.runtime",
    "train": "thinet.runtime",
    "evaluate": "thinet.runtime",
    "time_forward_backward": "thinet.runtime",
    "time_models": "thinet.runtime",
    "layer_type_times": "thinet.runtime",
    "FinetunePlan": "thinet.pipeline",
    "prune_chain": "thinet.pipeline",
    "to_gap": "thinet.strategies",
    "selection_subset": "thinet.data",
    "convert_model": "thinet.grouping",
    "plan_grouping": "thinet.grouping",
    "gcos_partition": "thinet.grouping",
    "available_groupings": "thinet.grouping",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'thinet' has no attribute {name!r}")
