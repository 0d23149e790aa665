"""Strategies of §3.3: which pairs are pruned, in which order, at which rate."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from thinet.models import create_model
from thinet.strategies import (available_strategies, find_prunable_pairs, get_strategy, prune_with_first_channels,
                               to_gap)
from thinet.types import LayerPair, PruningError


def vgg16_meta(**kwargs) -> nn.Module:
    with torch.device("meta"):  # shapes only: strategies read the structure, not the weights
        return torchvision.models.vgg16(weights=None, **kwargs)


def test_registry_lists_and_rejects_names():
    assert available_strategies() == ["auto", "resnet_bottleneck", "vgg16_conv", "vgg16_tiny"]
    with pytest.raises(PruningError, match="unknown strategy 'vgg19'.*resnet_bottleneck.*vgg16_conv"):
        get_strategy("vgg19")


def test_vgg16_conv_prunes_conv1_1_to_conv4_3_with_group_ends():
    model = vgg16_meta()
    steps = get_strategy("vgg16_conv")(model, 0.5, None)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert [s.pair for s in steps] == [LayerPair(convs[i], convs[i + 1]) for i in range(10)]
    assert all(s.keep_ratio == 0.5 for s in steps)
    # conv1_2, conv2_2, conv3_3 end the first three groups
    assert [s.pair.producer for s in steps if s.group_end] == [convs[1], convs[3], convs[6]]


def test_vgg16_tiny_needs_gap_head_and_ends_in_classifier():
    model = vgg16_meta()
    with pytest.raises(PruningError, match="to_gap"):
        get_strategy("vgg16_tiny")(model, 0.25, None)
    to_gap(model, 1000)
    steps = get_strategy("vgg16_tiny")(model, 0.25, None)
    assert len(steps) == 13
    assert [s.keep_ratio for s in steps] == [0.25] * 12 + [0.5]
    assert steps[-1].pair == LayerPair("features.28", "classifier.0")


def test_vgg16_tiny_on_our_small_vgg_prunes_for_real():
    model = create_model("vgg16_small", 10, width_mult=0.25).eval()
    x = torch.randn(1, 1, 32, 32)
    prune_with_first_channels(model, get_strategy("vgg16_tiny")(model, 0.25, x), x)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 8, 8, 16, 16, 16, 32, 32, 32, 32, 32, 64]
    assert model.classifier[0].in_features == 64 and model(x).shape == (1, 10)


def test_to_gap_replaces_fc_layers_with_seeded_linear():
    def small_vgg() -> nn.Module:  # torchvision's VGG class with a narrow 7x7 FC head
        model = create_model("vgg16_small", 10, width_mult=0.25, in_chans=3)
        model.avgpool, model.classifier = nn.AdaptiveAvgPool2d(7), nn.Sequential(nn.Linear(128 * 49, 16), nn.ReLU(),
                                                                                 nn.Linear(16, 10))
        return model

    a, b, c = to_gap(small_vgg(), 7, seed=3), to_gap(small_vgg(), 7, seed=3), to_gap(small_vgg(), 7, seed=4)
    assert isinstance(a.avgpool, nn.AdaptiveAvgPool2d) and a.avgpool.output_size == 1
    assert len(a.classifier) == 1 and a.classifier[0].in_features == 128
    assert torch.equal(a.classifier[0].weight, b.classifier[0].weight)
    assert not torch.equal(a.classifier[0].weight, c.classifier[0].weight)
    assert a(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(PruningError, match="ResNet"):
        to_gap(torchvision.models.resnet18(weights=None), 7)


def test_resnet_bottleneck_pairs_in_network_order():
    with torch.device("meta"):
        model = create_model("resnet50_v1")
    steps = get_strategy("resnet_bottleneck")(model, 0.7, None)
    assert len(steps) == 2 * 16
    assert [s.pair for s in steps[:4]] == [LayerPair("layer1.0.conv1", "layer1.0.conv2"),
                                          LayerPair("layer1.0.conv2", "layer1.0.conv3"),
                                          LayerPair("layer1.1.conv1", "layer1.1.conv2"),
                                          LayerPair("layer1.1.conv2", "layer1.1.conv3")]
    assert steps[-1].pair == LayerPair("layer4.2.conv2", "layer4.2.conv3")
    # §4.3: one fine-tuning per block (after its conv2), not one per layer
    assert [s.finetune_after for s in steps[:4]] == [False, True, False, True]
    assert sum(s.finetune_after for s in steps) == 16
    with pytest.raises(PruningError, match="no bottleneck"):
        get_strategy("resnet_bottleneck")(torchvision.models.resnet18(weights=None), 0.5, None)


def test_resnet_bottleneck_on_small_resnet_keeps_block_outputs():
    model = create_model("resnet_small", 10).eval()
    x = torch.randn(1, 1, 32, 32)
    outputs = [m.conv3.out_channels for m in model.modules() if hasattr(m, "conv3")]
    prune_with_first_channels(model, get_strategy("resnet_bottleneck")(model, 0.5, x), x)
    blocks = [m for m in model.modules() if hasattr(m, "conv3")]
    assert [b.conv3.out_channels for b in blocks] == outputs
    assert all(b.conv1.out_channels == b.bn1.num_features == b.conv2.in_channels for b in blocks)
    assert model(x).shape == (1, 10)


def test_auto_finds_only_uncoupled_pairs():
    model = torchvision.models.resnet18(weights=None)
    pairs = find_prunable_pairs(model, torch.randn(1, 3, 32, 32))
    assert pairs == [LayerPair(f"layer{i}.{j}.conv1", f"layer{i}.{j}.conv2") for i in range(1, 5) for j in range(2)]
    steps = get_strategy("auto")(model, 0.5, torch.randn(1, 3, 32, 32))
    assert [s.pair for s in steps] == pairs
    with pytest.raises(PruningError, match="example_inputs"):
        get_strategy("auto")(model, 0.5, None)


@pytest.mark.parametrize("ratio", [0, -0.5, 1.5, float("nan"), "0.5"])
def test_bad_keep_ratio_is_rejected(ratio):
    with pytest.raises(PruningError, match="keep_ratio"):
        get_strategy("vgg16_conv")(vgg16_meta(), ratio, None)


def test_vgg16_conv_rejects_non_vgg():
    with pytest.raises(PruningError, match="features"):
        get_strategy("vgg16_conv")(torchvision.models.resnet18(weights=None), 0.5, None)
