"""count_params / count_flops against the paper's numbers (Tables 1 and 3)."""
from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn as nn

import thinet.runtime._counting as counting_module
from thinet.runtime import count_flops, count_params, count_weights
from thinet.models import create_model


def _close(value: float, paper: float, rel: float = 0.005) -> bool:
    return abs(value - paper) <= rel * paper


@pytest.mark.parametrize(
    "name, params, flops",
    [
        ("vgg16", 138.34e6, 30.94e9),  # Table 1, "Original"
        ("resnet50_v1", 25.56e6, 7.72e9),  # Table 3, "Original"
    ],
)
def test_paper_values(name, params, flops):
    with torch.device("meta"):  # the counts need shapes only
        model = create_model(name)
    assert _close(count_params(model), params), count_params(model)
    assert _close(count_flops(model), flops), count_flops(model)


def test_torchvision_resnet50_strides_on_3x3_and_costs_more():
    with torch.device("meta"):
        v15 = create_model("torchvision:resnet50")
        v1 = create_model("resnet50_v1")
    assert count_params(v15) == count_params(v1)
    assert _close(count_flops(v15), 8.18e9)  # stride on the 3x3: the 3x3 runs on the larger map
    assert count_flops(v15) > 1.05 * count_flops(v1)


def test_conv_and_linear_only_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=True)
    expected = 2 * (8 * 10 * 10 * 3 * 3 * 3) + 2 * (8 * 5)
    model = nn.Sequential(conv, nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    assert count_flops(model, (3, 10, 10)) == expected
    assert count_params(model) == 3 * 8 * 9 + 8 + 2 * 8 + 8 * 5 + 5
    assert count_weights(model) == 3 * 8 * 9 + 2 * 8 + 8 * 5  # conv/linear biases out, BN's scale and shift in


def test_bias_free_linear_on_3d_input_and_grouped_dilated_conv():
    assert count_flops(nn.Linear(4, 3, bias=False), (2, 5, 4)) == 2 * (2 * 5) * 4 * 3
    conv = nn.Conv2d(4, 8, 3, groups=2, padding=2, dilation=2)
    assert count_flops(conv, (4, 6, 6)) == 2 * 8 * 6 * 6 * (4 // 2) * 3 * 3


def test_default_input_size_is_the_models():
    model = create_model("vgg16_small", 10)
    assert count_flops(model) == count_flops(model, (1, 32, 32))
    assert count_flops(model, (1, 64, 64)) > 3.9 * count_flops(model)


def test_model_is_not_touched():
    model = create_model("resnet_small", 10).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_flops(model)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)


class _NeedsRealData(nn.Module):
    """.item() has no meta implementation: count_flops must fall back to a CPU copy."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum().item() >= 0:
            return self.fc(x.flatten(1))
        return x


def test_falls_back_to_cpu_when_meta_fails():
    assert count_flops(_NeedsRealData(), (1, 2, 2)) == 2 * 4 * 2


def test_bad_input_size_and_failing_forward():
    with pytest.raises(ValueError, match="input_size"):
        count_flops(nn.Linear(3, 3), (3, 32))
    with pytest.raises(ValueError, match="Conv2d.*input size"):
        count_flops(nn.Conv2d(3, 4, 3), (1, 8, 8))


def test_small_models_are_cheap():
    # About 5 MMAC each at 1x32x32 so they train quickly on a 2-core CPU.
    for name in ("vgg16_small", "resnet_small"):
        flops = count_flops(create_model(name, 10))
        assert 2e6 < flops < 20e6, (name, flops)


def test_docstring_examples():
    result = doctest.testmod(counting_module)
    assert result.failed == 0 and result.attempted > 0
