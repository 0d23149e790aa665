"""Where a forward pass spends its time, by layer type (§4.3: "BN and pooling ... more than 40 % of the
inference time on GPU"), so that statement can be checked on the user's hardware.

Every leaf module is timed between a pre-hook and a hook (synchronising CUDA in both), and the
times are summed per layer type; what no leaf module accounts for (residual additions, flattening,
the hooks themselves) is `other`. The hooks cost a little and serialise the GPU, so the shares are
the point, not the absolute milliseconds (`time_models` measures those).

>>> from torch import nn
>>> shares = layer_type_times({"m": nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())}, (3, 16, 16), batch_size=2,
...                           rounds=1)["m"]
>>> sorted(shares) == sorted([*LAYER_TYPES, "other", "total"])
True
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _MaxPoolNd

from thinet.runtime._timing import check_input_size

# The layer types of §4.3, each the module classes it gathers; checked in this order.
LAYER_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "conv": (_ConvNd,),
    "bn": (_BatchNorm,),
    "relu": (nn.ReLU, nn.ReLU6, nn.LeakyReLU),
    "pooling": (_MaxPoolNd, _AvgPoolNd, _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd),
    "linear": (nn.Linear,),
}


def _layer_type(module: nn.Module) -> str:
    return next((name for name, classes in LAYER_TYPES.items() if isinstance(module, classes)), "other")


class _Clock:
    """Sums the time spent inside each hooked module, per layer type."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.device, self.spent, self._start = device, dict.fromkeys(LAYER_TYPES, 0.0), {}
        for module in model.modules():
            kind = _layer_type(module)
            if kind != "other" and not any(module.children()):
                module.register_forward_pre_hook(self._enter)
                module.register_forward_hook(lambda m, i, o, kind=kind: self._leave(m, kind))

    def now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _enter(self, module: nn.Module, inputs: object) -> None:
        self._start[id(module)] = self.now()

    def _leave(self, module: nn.Module, kind: str) -> None:
        self.spent[kind] += self.now() - self._start.pop(id(module))


def layer_type_times(models: Mapping[str, nn.Module], input_size: Sequence[int], *, batch_size: int = 32,
                     device: str | torch.device = "cpu", rounds: int = 5, seed: int = 0) -> dict[str, dict[str, float]]:
    """{name: {layer type: median forward ms per pass, "other": ..., "total": ...}} of each model.

    Inference passes (eval mode, no autograd) of a batch of random images, the models interleaved
    round by round after one warm-up pass each; each model is timed on a deep copy.
    """
    size = check_input_size(input_size)
    for what, value in (("batch_size", batch_size), ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    device = torch.device(device)
    x = torch.randn(batch_size, *size, generator=torch.Generator().manual_seed(seed)).to(device)
    probes = {name: copy.deepcopy(model).to(device).eval() for name, model in models.items()}
    clocks = {name: _Clock(probe, device) for name, probe in probes.items()}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in probes}
    with torch.no_grad():
        for round_ in range(rounds + 1):
            for name, probe in probes.items():
                clock = clocks[name]
                clock.spent = dict.fromkeys(LAYER_TYPES, 0.0)
                start = clock.now()
                probe(x)
                total = clock.now() - start
                if round_ > 0:  # round 0 is the warm-up
                    samples[name].append({**clock.spent, "other": total - sum(clock.spent.values()),
                                          "total": total})
    return {name: {kind: 1e3 * statistics.median(s[kind] for s in rows) for kind in rows[0]}
            for name, rows in samples.items()}
