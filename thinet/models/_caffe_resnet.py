"""MSRA's Caffe ResNet weights (`ResNet-50-model.caffemodel`) as a state_dict for `resnet50_v1`.

Layer names follow MSRA's deploy prototxt: `conv1`/`bn_conv1`/`scale_conv1`, then per bottleneck
`res2a_branch2a`/`bn2a_branch2a`/`scale2a_branch2a` (stage 2-5, block a, b, c..., branch 2a-2c,
and branch1 for the projection shortcut), and `fc1000`. Caffe splits torch's BatchNorm in two:
a BatchNorm layer with [mean*s, var*s, s] (running sums and their scale factor s; s = 0 means
nothing was accumulated) and a Scale layer with [gamma, beta]. Both use eps 1e-5, as torch does.
A convolution bias (MSRA's conv1 has one) is folded into the following BatchNorm's mean:
BN(Wx + b) with mean m equals BN(Wx) with mean m - b.
"""
from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from thinet.models._caffemodel import read_caffemodel
from thinet.models._registry import get_constructor

# The models whose modules follow torchvision's ResNet naming and MSRA's Caffe layout.
CAFFE_MODELS = ("resnet50_v1",)
FC_LAYER = "fc1000"
_BLOCK_CONV = re.compile(r"layer(\d+)\.(\d+)\.conv([123])")
_SHORTCUT_CONV = re.compile(r"layer(\d+)\.(\d+)\.downsample\.0")


@dataclass(frozen=True)
class ConvUnit:
    """A convolution and its BatchNorm, with the three Caffe layers that hold their weights."""

    conv: str
    bn: str
    caffe_conv: str
    caffe_bn: str
    caffe_scale: str


def _unit(conv: str, bn: str, suffix: str) -> ConvUnit:
    return ConvUnit(conv, bn, f"res{suffix}", f"bn{suffix}", f"scale{suffix}")


def msra_units(model: nn.Module) -> list[ConvUnit]:
    """Every convolution of a torchvision-style bottleneck ResNet, named as in MSRA's prototxt."""
    units = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        if name == "conv1":
            units.append(ConvUnit("conv1", "bn1", "conv1", "bn_conv1", "scale_conv1"))
        elif match := _BLOCK_CONV.fullmatch(name):
            stage, block, k = match.groups()
            suffix = f"{int(stage) + 1}{_block_letter(name, int(block))}_branch2{'abc'[int(k) - 1]}"
            units.append(_unit(name, f"layer{stage}.{block}.bn{k}", suffix))
        elif match := _SHORTCUT_CONV.fullmatch(name):
            stage, block = match.groups()
            suffix = f"{int(stage) + 1}{_block_letter(name, int(block))}_branch1"
            units.append(_unit(name, f"layer{stage}.{block}.downsample.1", suffix))
        else:
            raise ValueError(f"convolution {name!r} has no counterpart in MSRA's Caffe ResNet layout")
    return units


def _block_letter(name: str, block: int) -> str:
    if block >= len(string.ascii_lowercase):
        raise ValueError(f"{name}: block {block} is past MSRA's letter names a-z")
    return string.ascii_lowercase[block]


def convert_caffemodel(path: str | os.PathLike, model: str = "resnet50_v1") -> dict[str, torch.Tensor]:
    """The state_dict of `model` (1000 classes) holding the weights of MSRA's `.caffemodel` at `path`.

    Every layer the model needs must be in the file, and no other layer with weights may be;
    every blob must have its parameter's shape. Errors name the file, the Caffe layer and
    the parameter, and come before anything is returned.

    >>> state = convert_caffemodel("ResNet-50-model.caffemodel")  # doctest: +SKIP
    >>> net = create_model("resnet50_v1"); net.load_state_dict(state)  # doctest: +SKIP
    """
    if model not in CAFFE_MODELS:
        raise ValueError(f"no Caffe layer mapping for model {model!r}; supported: {', '.join(CAFFE_MODELS)}")
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        net = get_constructor(model)(1000, pretrained=False)
    return caffe_state_dict(read_caffemodel(path), net, f"{os.fspath(path)} ({model})")


def caffe_state_dict(weights: Mapping[str, list[np.ndarray]], net: nn.Module, source: str) -> dict[str, torch.Tensor]:
    """Map Caffe layer blobs (`read_caffemodel`'s result) onto `net`'s state_dict keys and shapes."""
    own = net.state_dict()
    units = msra_units(net)
    expected = [n for u in units for n in (u.caffe_conv, u.caffe_bn, u.caffe_scale)] + [FC_LAYER]
    missing = [n for n in expected if n not in weights]
    if missing:
        raise ValueError(f"{source}: {len(missing)} Caffe layer(s) missing, e.g. {missing[:4]}; "
                         "is this MSRA's ResNet-50 (ResNet-50-model.caffemodel)?")
    unexpected = sorted(set(weights) - set(expected))
    if unexpected:
        raise ValueError(f"{source}: Caffe layer(s) with weights that the model has no place for: {unexpected[:4]}")
    fit = _Fitter(weights, own, source)
    state: dict[str, torch.Tensor] = {}
    for u in units:
        state.update(_conv_bn(fit, u))
    state["fc.weight"] = fit(FC_LAYER, 0, "fc.weight", count=(2, 2))
    state["fc.bias"] = fit(FC_LAYER, 1, "fc.bias", count=(2, 2))
    left = sorted(set(own) - set(state))
    if left:
        raise ValueError(f"{source}: the Caffe mapping fills no value for {left[:4]}")
    return state


def _conv_bn(fit: _Fitter, u: ConvUnit) -> dict[str, torch.Tensor]:
    factor_blob = fit(u.caffe_bn, 2, None, count=(3, 3), shape=(1,))
    factor = 0.0 if float(factor_blob) == 0 else 1.0 / float(factor_blob)
    mean = fit(u.caffe_bn, 0, f"{u.bn}.running_mean") * factor
    if fit.count(u.caffe_conv, (1, 2)) == 2:
        mean = mean - fit(u.caffe_conv, 1, f"{u.bn}.running_mean")
    has_beta = fit.count(u.caffe_scale, (1, 2)) == 2
    gamma = fit(u.caffe_scale, 0, f"{u.bn}.weight")
    return {
        f"{u.conv}.weight": fit(u.caffe_conv, 0, f"{u.conv}.weight"),
        f"{u.bn}.weight": gamma,
        f"{u.bn}.bias": fit(u.caffe_scale, 1, f"{u.bn}.bias") if has_beta else torch.zeros_like(gamma),
        f"{u.bn}.running_mean": mean,
        f"{u.bn}.running_var": fit(u.caffe_bn, 1, f"{u.bn}.running_var") * factor,
        f"{u.bn}.num_batches_tracked": torch.zeros((), dtype=torch.long),
    }


class _Fitter:
    """Takes blob `index` of a Caffe layer as a tensor of the parameter's shape, or raises naming both."""

    def __init__(self, weights: Mapping[str, list[np.ndarray]], own: Mapping[str, torch.Tensor], source: str) -> None:
        self.weights, self.own, self.source = weights, own, source

    def count(self, layer: str, allowed: tuple[int, int]) -> int:
        n = len(self.weights[layer])
        if not allowed[0] <= n <= allowed[1]:
            want = str(allowed[0]) if allowed[0] == allowed[1] else f"{allowed[0]} or {allowed[1]}"
            raise ValueError(f"{self.source}: Caffe layer {layer!r} has {n} blobs, expected {want}")
        return n

    def __call__(self, layer: str, index: int, key: str | None, *, count: tuple[int, int] | None = None,
                 shape: tuple[int, ...] | None = None) -> torch.Tensor:
        if count is not None:
            self.count(layer, count)
        blob = self.weights[layer][index]
        target = tuple(self.own[key].shape) if key is not None else shape
        # Legacy 4-D blobs pad vectors and matrices with leading 1s: (1, 1, 1, 64) for a (64,) bias.
        if blob.shape != target and _squeezed(blob.shape) == _squeezed(target):
            blob = blob.reshape(target)
        if blob.shape != target:
            what = f"the model's {key}" if key is not None else "expected"
            raise ValueError(f"{self.source}: Caffe layer {layer!r} blob {index} has shape {blob.shape}, "
                             f"{what} is {target}")
        return torch.from_numpy(np.array(blob, dtype=np.float32))


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)
