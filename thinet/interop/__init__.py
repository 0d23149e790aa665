"""ThiNet and Torch-Pruning, both ways (docs/torch-pruning.md).

Torch-Pruning's importances are benchmark criteria `tp_<name>` (`baselines/torch_pruning.py`); this
package holds the other direction: `ThiNetImportance`, ThiNet's Algorithm 1 as a
`torch_pruning.pruner.importance.Importance`, so that `torch_pruning.pruner.MetaPruner` (or any code
scoring Torch-Pruning groups) removes the channels ThiNet would.

>>> import torch_pruning as tp
>>> issubclass(ThiNetImportance, tp.pruner.importance.Importance)
True
"""
from __future__ import annotations

from thinet.interop._thinet_importance import ThiNetImportance

__all__ = ["ThiNetImportance"]
