"""VGG-16 (torchvision layout), VGG-16-GAP (§4.1) and the VGG helpers shared with small models."""
from __future__ import annotations

from typing import Sequence

import torch.nn as nn
from torchvision.models.vgg import VGG

from thinet.models._registry import register_model
from thinet.models._sources import TORCHVISION_INPUT, torchvision_model

# VGG-16's 13 convolutions ("M" = 2x2 max-pool), torchvision's cfg "D".
VGG16_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)


def make_vgg_features(layout: Sequence[int | str], in_chans: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """Conv3x3(+BN)+ReLU per int, MaxPool2d(2) per "M"; same module order as torchvision's make_layers."""
    layers: list[nn.Module] = []
    channels = in_chans
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, int(item), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(nn.ReLU(inplace=True))
        channels = int(item)
    return nn.Sequential(*layers)


class VGGGap(VGG):
    """VGG conv features + AdaptiveAvgPool2d(1) + flatten + Linear.

    Subclasses torchvision's VGG (same `features`/`avgpool`/`classifier` names and forward)
    without building its 4096-wide FC head, which would cost ~120M parameters.
    """

    def __init__(self, features: nn.Sequential, num_classes: int) -> None:
        nn.Module.__init__(self)
        width = [m for m in features.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(width, num_classes))
        init_vgg_weights(self)


class VGGFc(VGG):
    """VGG conv features + VGG-16's FC head (fc6, fc7: Linear + ReLU + Dropout; fc8), at any width.

    Table 1's head at a reduced size: `width` units in fc6/fc7 (VGG-16: 4096) after an
    average pool to `pool`×`pool` (VGG-16: 7×7), so ThiNet-Conv (FC kept), ThiNet-GAP (FC → GAP,
    `thinet.strategies.to_gap`) and ThiNet-Tiny all exist for it.
    """

    def __init__(self, features: nn.Sequential, num_classes: int, width: int, pool: int = 1,
                 dropout: float = 0.5) -> None:
        nn.Module.__init__(self)
        channels = [m for m in features.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool * pool, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, num_classes))
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's VGG initialisation, with Kaiming-normal fc6/fc7: N(0, 0.01) suits VGG-16's fc6
        (25,088 inputs: a gain of ~1.6), but a narrow head at that scale shrinks the signal ~100x and the
        13 convolutions below it, without BatchNorm, do not learn."""
        init_vgg_weights(self)
        for fc in (self.classifier[0], self.classifier[3]):
            nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")


def init_weights(model: nn.Module) -> None:
    """Draw every parameter of `model` anew with its architecture's own initialisation: the model's
    `init_weights()` where it has one, torchvision's VGG initialisation for a VGG (PyTorch's layer
    defaults leave a deep VGG without BatchNorm unable to learn), else each layer's `reset_parameters`.
    Seed torch's generator first for a reproducible draw.

    >>> import torch
    >>> net = nn.Sequential(nn.Linear(2, 2)); _ = torch.manual_seed(0); init_weights(net)
    """
    own = getattr(model, "init_weights", None)
    if callable(own):
        own()
    elif isinstance(model, VGG):
        init_vgg_weights(model)
    else:
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    for module in model.modules():  # statistics belong to the old weights
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()


def init_vgg_weights(model: nn.Module) -> None:
    """torchvision's VGG initialisation (kaiming-normal convs, N(0, 0.01) linear)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


@register_model("vgg16")
def vgg16(num_classes: int = 1000, *, pretrained: bool = False) -> nn.Module:
    """The original VGG-16 (FC 4096-4096-num_classes), torchvision weights when pretrained."""
    return torchvision_model("vgg16", num_classes, pretrained)


@register_model("vgg16_gap")
def vgg16_gap(num_classes: int = 1000, *, pretrained: bool = False) -> nn.Module:
    """VGG-16-GAP: VGG-16's conv layers, global average pooling, one Linear(512, num_classes)."""
    if pretrained:
        features = torchvision_model("vgg16", 1000, True).features
    else:
        features = make_vgg_features(VGG16_LAYOUT)
    model = VGGGap(features, num_classes)
    model.thinet_input_size = TORCHVISION_INPUT
    return model


def vgg_conv_names(model: nn.Module) -> dict[str, str]:
    """Map the paper's names conv1_1 ... conv5_3 to module names of a VGG-style model.

    Convolutions are numbered within a group; each max-pool starts the next group.
    Walks `model.features` when present, else the whole model.

    >>> from thinet.models import create_model
    >>> names = vgg_conv_names(create_model("vgg16_small", 10))
    >>> names["conv1_1"], names["conv5_3"]
    ('features.0', 'features.40')
    """
    root, prefix = (model.features, "features.") if hasattr(model, "features") else (model, "")
    names: dict[str, str] = {}
    group, index = 1, 0
    for name, module in root.named_modules():
        if isinstance(module, nn.Conv2d):
            index += 1
            names[f"conv{group}_{index}"] = prefix + name
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and index:
            group, index = group + 1, 0
    if not names:
        raise ValueError(f"{type(model).__name__} has no Conv2d layers to name conv1_1 ...")
    return names
