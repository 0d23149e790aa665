"""ResNet-50 "v1", the original MSRA/Caffe layout used by the paper (Table 3).

It differs from torchvision's resnet50 in where a downsampling bottleneck strides:
on its first 1x1 convolution (Caffe) rather than on the 3x3 (torchvision, "v1.5").
That moves the 3x3 onto the smaller map: 7.72 GFLOPs instead of torchvision's 8.2.
Its first max-pooling is Caffe's too (no padding, windows rounded up: 112 -> 56 as with
torchvision's padding 1, but the windows sit one pixel apart), so MSRA's converted weights
(`thinet convert-caffe`) see the features they were trained on.
"""
from __future__ import annotations

from typing import Any

import torch.nn as nn
from torchvision.models.resnet import Bottleneck, ResNet, conv1x1, conv3x3

from thinet.models._registry import register_model
from thinet.models._sources import TORCHVISION_INPUT


class BottleneckV1(Bottleneck):
    """torchvision's Bottleneck with the stride moved from conv2 (3x3) to conv1 (1x1)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, *args: Any, **kwargs: Any) -> None:
        super().__init__(inplanes, planes, stride, *args, **kwargs)
        width = self.conv1.out_channels
        groups, dilation = self.conv2.groups, self.conv2.dilation[0]
        self.conv1 = conv1x1(inplanes, width, stride)
        self.conv2 = conv3x3(width, width, 1, groups, dilation)


@register_model("resnet50_v1")
def resnet50_v1(num_classes: int = 1000, *, pretrained: bool = False) -> nn.Module:
    """ResNet-50 with Caffe strides; no weights are bundled (load yours with checkpoint=)."""
    if pretrained:
        raise ValueError(
            "resnet50_v1: no pretrained v1 (MSRA/Caffe) weights are bundled; convert them to a "
            "state_dict and pass checkpoint=<path>, or use 'torchvision:resnet50' (stride on the 3x3)"
        )
    model = ResNet(BottleneckV1, [3, 4, 6, 3], num_classes=num_classes)
    model.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
    model.thinet_input_size = TORCHVISION_INPUT
    return model
