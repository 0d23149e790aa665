"""The criterion registry: every way of choosing which filters of one layer to keep.

A criterion is a function `fn(ctx: CriterionContext) -> Selection | LongTensor`
(the kept channel indices) registered under a name. Built-in criteria (ThiNet's
`thinet`, `thinet_nols`, `thinet_forward`; `baselines/`), modules named in a config
(`criteria_modules`) and the `thinet.criteria` entry points of installed
packages all land in the same table, loaded lazily on first access.

>>> import torch
>>> from torch import nn
>>> from thinet.types import LayerPair
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
>>> ctx = CriterionContext(model, LayerPair("0", "2"), [torch.randn(2, 3, 8, 8)], keep_ratio=0.5)
>>> run_criterion("weight_sum", ctx).keep.numel()
4
>>> "thinet" in available_criteria()
True

A new criterion is one file (see docs/add-a-criterion.md); `check_criterion`
runs the rules every criterion must follow, for plugin authors' own tests. A criterion
that cannot score some layers (no BatchNorm, no ReLU) says so through a `layer_check(model,
pair, example_inputs) -> reason | None` attribute, checked before any compute
(`layer_refusal`, `check_layers`). A family of criteria made on demand by prefix (Torch-Pruning's
`tp_<name>`) registers with `register_criterion_family`.
"""
from __future__ import annotations

from thinet.criteria._conformance import CriterionConformanceError, check_criterion
from thinet.criteria._context import CriterionContext, as_channels, consumer_input_hook, eval_mode
from thinet.criteria._activation import batchnorm_refusal, first_module_on_output, relu_refusal
from thinet.criteria._lookup import (
    available_criteria, check_layers, get_criterion, layer_refusal, on_demand_criteria, run_criterion,
    validate_selection,
)
from thinet.criteria._plugins import ENTRY_POINT_GROUP, load_criterion_modules
from thinet.criteria._registry import CriterionFn, register_criterion, register_criterion_family

__all__ = [
    "CriterionConformanceError", "CriterionContext", "CriterionFn", "ENTRY_POINT_GROUP", "as_channels",
    "available_criteria", "batchnorm_refusal", "first_module_on_output", "check_criterion", "check_layers", "consumer_input_hook", "eval_mode",
    "get_criterion", "layer_refusal", "load_criterion_modules", "on_demand_criteria", "register_criterion",
    "register_criterion_family", "relu_refusal", "run_criterion", "validate_selection",
]
