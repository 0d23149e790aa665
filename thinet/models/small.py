"""Small-input models for CPU experiments (Fashion-MNIST 1x32x32 by default).

Both keep the attribute names of their ImageNet counterparts (`features`/`avgpool`/
`classifier` for VGG, `conv1`/`layerN`/`fc` and torchvision Bottleneck blocks for
ResNet), so the same pruning strategies walk them.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from torchvision.models.resnet import Bottleneck, conv1x1

from thinet.models._registry import register_model
from thinet.models.vgg import VGG16_LAYOUT, VGGFc, VGGGap, make_vgg_features

MIN_WIDTH = 4


def _scaled(width: int, width_mult: float) -> int:
    return max(MIN_WIDTH, int(width * width_mult))


def _check_common(model: str, num_classes: int, in_chans: int, width_mult: float, input_size: int, pretrained: bool) -> None:
    if pretrained:
        raise ValueError(f"{model}: no pretrained weights exist; train it or pass checkpoint=<path>")
    for key, value in (("num_classes", num_classes), ("in_chans", in_chans), ("input_size", input_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{model}: {key} must be a positive int, got {value!r}")
    if not width_mult > 0:
        raise ValueError(f"{model}: width_mult must be > 0, got {width_mult!r}")


@register_model("vgg16_small")
def vgg16_small(num_classes: int = 10, *, pretrained: bool = False, in_chans: int = 1, width_mult: float = 0.125,
                batch_norm: bool = True, input_size: int = 32, head: str = "gap") -> nn.Module:
    """VGG-16's 13 convolutions at `width_mult` (at least 4 channels), with BN or (as the paper's
    Caffe VGG-16) without, and a GAP head or (`head="fc"`) VGG-16's FC head at the same width
    (fc6/fc7 of 4096 · width_mult units).

    >>> [type(m).__name__ for m in vgg16_small(head="fc", batch_norm=False).classifier][:3]
    ['Linear', 'ReLU', 'Dropout']
    """
    _check_common("vgg16_small", num_classes, in_chans, width_mult, input_size, pretrained)
    if input_size < 32:
        raise ValueError(f"vgg16_small: input_size must be >= 32 (five 2x2 pools), got {input_size}")
    if head not in ("gap", "fc"):
        raise ValueError(f"vgg16_small: head must be 'gap' or 'fc', got {head!r}")
    layout = [item if item == "M" else _scaled(int(item), width_mult) for item in VGG16_LAYOUT]
    features = make_vgg_features(layout, in_chans, batch_norm)
    model = (VGGGap(features, num_classes) if head == "gap"
             else VGGFc(features, num_classes, width=_scaled(4096, width_mult)))
    model.thinet_input_size = (in_chans, input_size, input_size)
    return model


class SmallResNet(nn.Module):
    """3x3 stem (no max-pool; stride `stem_stride`) + stages of torchvision Bottlenecks + GAP + Linear."""

    def __init__(self, num_classes: int, in_chans: int, base_width: int, layers: Sequence[int],
                 stem_stride: int = 1) -> None:
        super().__init__()
        self.inplanes = base_width
        self.conv1 = nn.Conv2d(in_chans, base_width, kernel_size=3, stride=stem_stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        for i, blocks in enumerate(layers):
            stage = self._make_stage(base_width * 2**i, blocks, stride=1 if i == 0 else 2)
            self.add_module(f"layer{i + 1}", stage)
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(conv1x1(self.inplanes, out, stride), nn.BatchNorm2d(out))
        stage = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        stage += [Bottleneck(out, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register_model("resnet_small")
def resnet_small(num_classes: int = 10, *, pretrained: bool = False, in_chans: int = 1, width_mult: float = 0.125,
                 layers: Sequence[int] = (1, 1, 1), input_size: int = 32, stem_stride: int = 1) -> nn.Module:
    """Bottleneck ResNet for small images; stage i has 64 * width_mult * 2**i planes (x4 out).

    `stem_stride=2` halves the resolution in the stem, as ResNet-50's stride-2 stem does: every
    block then runs on a quarter of the positions (a 4x cheaper network for the same depth).
    """
    _check_common("resnet_small", num_classes, in_chans, width_mult, input_size, pretrained)
    if stem_stride not in (1, 2):
        raise ValueError(f"resnet_small: stem_stride must be 1 or 2, got {stem_stride!r}")
    layers = tuple(layers)
    if not layers or any(not isinstance(n, int) or n < 1 for n in layers):
        raise ValueError(f"resnet_small: layers must be positive ints, one per stage, got {layers!r}")
    model = SmallResNet(num_classes, in_chans, _scaled(64, width_mult), layers, stem_stride)
    model.thinet_input_size = (in_chans, input_size, input_size)
    return model
