"""Parameter and FLOP counts in the paper's convention.

#Param = every parameter except the biases of convolution and fully-connected layers (BatchNorm's
scale and shift count): with it this suite's VGG-16, ResNet-50 and all six ThiNet variants read
exactly the paper's Tables 1 and 3 (VGG-16 138.34M, ThiNet-70 16.94M, ...); `count_params` gives
the bias-inclusive count beside it.

FLOPs = 2 x multiply-accumulates of convolution and fully-connected layers, for one
image (the paper's VGG-16: 30.94B, ResNet-50: 7.72B); BN, ReLU, pooling and additions
are not counted. The paper's footnote says "convolution only", but its 30.94B is the
convolutions (30.69B) plus the FC layers (0.25B), so linear layers are counted here too.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

# The aten ops that convolutions and nn.Linear lower to in eager forward mode.
_CONV_LINEAR_OPS = frozenset({"convolution", "_convolution", "conv2d", "conv1d", "conv3d", "mm", "addmm"})


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not).

    >>> count_params(nn.Linear(10, 5))
    55
    """
    return sum(p.numel() for p in model.parameters())


def count_weights(model: nn.Module) -> int:
    """Parameters without the conv/linear biases: the paper's #Param convention.

    >>> count_weights(nn.Linear(10, 5)), count_weights(nn.BatchNorm2d(4))
    (50, 8)
    """
    from thinet.models import layer_biases

    return count_params(model) - sum(p.numel() for _, p in layer_biases(model))


def count_flops(model: nn.Module, input_size: Sequence[int] | None = None) -> int:
    """2 x MACs of the conv and linear layers for one image of `input_size` (C, H, W).

    `input_size` defaults to the model's `thinet_input_size` (3x224x224 if unset). The model
    itself is not touched: the count runs on a parameter-free copy on the meta device
    (a CPU copy if the model cannot run there).

    >>> count_flops(nn.Conv2d(3, 8, 3, padding=1), (3, 10, 10))  # 2 * 8*10*10 * 3*3*3
    43200
    >>> from thinet.models import create_model
    >>> round(count_flops(create_model("resnet50_v1")) / 1e9, 2)  # paper, Table 3: 7.72B
    7.72
    """
    size = _check_input_size(model, input_size)
    try:
        return _flops_on(_meta_copy(model), size, "meta")
    except Exception:  # some custom ops have no meta kernel: count on a real copy instead
        pass
    try:
        return _flops_on(copy.deepcopy(model).cpu(), size, "cpu")
    except Exception as exc:
        raise ValueError(
            f"count_flops: forward of {type(model).__name__} failed for input size {size}: {exc}"
        ) from exc


def _check_input_size(model: nn.Module, input_size: Sequence[int] | None) -> tuple[int, int, int]:
    if input_size is None:
        from thinet.models import input_size_of

        return input_size_of(model)
    size = tuple(input_size)
    if len(size) != 3 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"count_flops: input_size must be three positive ints (C, H, W), got {input_size!r}")
    return size  # type: ignore[return-value]


def _meta_copy(model: nn.Module) -> nn.Module:
    """deepcopy with every parameter/buffer replaced by a meta tensor, so nothing is allocated."""
    memo: dict[int, object] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def _flops_on(model: nn.Module, size: tuple[int, int, int], device: str) -> int:
    model.eval()
    x = torch.zeros(1, *size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    per_op = counter.get_flop_counts().get("Global", {})
    return int(sum(n for op, n in per_op.items() if _op_name(op) in _CONV_LINEAR_OPS))


def _op_name(op: object) -> str:
    # OpOverloadPacket / OpOverload -> "convolution", "addmm", ...
    name = getattr(op, "__name__", str(op))
    return name.split(".")[0]


def model_counts(model: nn.Module, input_size: Sequence[int] | None = None) -> dict[str, int]:
    """The counts every results row carries: `params` (the paper's convention, `count_weights`),
    `params_with_biases` (`count_params`) and `flops` (`count_flops` at `input_size`).

    >>> model_counts(nn.Conv2d(3, 8, 3, padding=1), (3, 10, 10))
    {'params': 216, 'params_with_biases': 224, 'flops': 43200}
    """
    return {"params": count_weights(model), "params_with_biases": count_params(model),
            "flops": count_flops(model, input_size)}
