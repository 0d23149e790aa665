"""ThiNet's surgery (§3.1 step 2, §3.2.3): really removing filters, on Torch-Pruning's dependency graph.

The analysis is kept apart from the cutting, as in Torch-Pruning: `_graph.py` traces the model
and says what a producer's channels are coupled to; `_pairs.py` decides whether a pair is one
ThiNet can prune (and names the coupling when it is not); `_cut.py` scales the consumer's kept
inputs by ŵ and removes the producer's filters, its BatchNorm channels and the consumer's inputs.
`_units.py` extends a pair to a channel unit (grouped convs, a depthwise stage, SE gates, shared
channels; the derivation is its docstring) and `_unit_cut.py` cuts one. What may lie between a
producer and its consumers is an allow-list (`_ops.py`). `_verify.py` checks a cut against the
masked reference and undoes it when they part; `_refit.py` refits the consumers of a stream after
the cut. The result is a plain, smaller `nn.Module`.

>>> import torch, torchvision
>>> from thinet.types import LayerPair, Selection
>>> model = torchvision.models.vgg11(weights=None)
>>> x = torch.randn(1, 3, 32, 32)
>>> model = prune_pair(model, LayerPair("features.0", "features.3"), Selection.from_keep(torch.arange(32), 64),
...                    example_inputs=x)
>>> model.features[0].out_channels
32
"""
from __future__ import annotations

from thinet.surgery._cut import prune_pair
from thinet.surgery._graph import (
           Coupling,
           build_graph,
           coupling_of,
           is_prunable_layer,
           out_pruning_fn,
           pruning_group,
           reused_layers,
)
from thinet.surgery._pairs import check_pair, consumer_columns, coupling_error
from thinet.surgery._refit import refit_after_cut
from thinet.surgery._unit_cut import check_unit_selection, prune_unit
from thinet.surgery._units import (
           UNIT_TIME_LIMIT_S,
           ChannelUnit,
           UnitRefused,
           find_unit,
           is_unit_root,
)
from thinet.surgery._verify import VERIFY_RTOL, CutNotExact, input_masks, masked, verify_cut

__all__ = ["UNIT_TIME_LIMIT_S", "VERIFY_RTOL", "ChannelUnit", "Coupling", "CutNotExact", "UnitRefused", "build_graph",
           "check_pair", "check_unit_selection", "consumer_columns", "coupling_error", "coupling_of", "find_unit",
           "input_masks", "is_prunable_layer", "is_unit_root", "masked", "out_pruning_fn", "prune_pair", "prune_unit", "pruning_group",
           "refit_after_cut", "reused_layers", "verify_cut"]
