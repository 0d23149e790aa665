"""Issue 24, the default sample count: `--strategy auto` draws at least 16 samples per channel of its widest unit
(`thinet.sampling.samples_per_image_for`; ŵ overfits with samples ≈ channels, `thinet bench refit` measures it),
`--samples-per-channel` / `--samples-per-image` override it; the refit benchmark's shortcuts are checked here
(its errors are those of the real cut; thinet_nols keeps the same channels as thinet).
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from thinet.criteria import CriterionContext, run_criterion
from thinet.sampling import SAMPLES_PER_CHANNEL, samples_per_image_for
from thinet.strategies import plan_units
from thinet.surgery import build_graph, find_unit, prune_unit
from thinet.types import PruningError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_rule_covers_k_samples_per_channel_and_never_fewer_than_ten_per_image():
    assert SAMPLES_PER_CHANNEL == 16
    assert samples_per_image_for(8, 512) == 16 * 512 // 8
    assert samples_per_image_for(7, 100) == math.ceil(16 * 100 / 7)  # rounded up: at least 16 x C in all
    assert samples_per_image_for(10_000, 2048) == 10  # the paper's count is plenty on ImageNet's selection set
    assert samples_per_image_for(8, 64, per_channel=1) == 10
    with pytest.raises(PruningError, match="needs as many samples as channels"):
        samples_per_image_for(8, 64, per_channel=0.5)
    with pytest.raises(PruningError, match="num_images must be a positive int"):
        samples_per_image_for(0, 64)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
    model.thinet_input_size = (3, 16, 16)
    return model


@pytest.mark.parametrize("extra, expected", [([], 64), (["--samples-per-channel", "4"], 16),
                                             (["--samples-per-image", "12"], 12)],
                         ids=["default", "per-channel", "per-image"])
def test_thinet_prune_auto_draws_enough_samples_for_its_widest_unit(tmp_path, capsys, extra, expected):
    from thinet.cli import main
    from thinet.data import make_fixture

    root = make_fixture("imagenet", tmp_path / "imagenet", classes=2, per_class=2, seed=0, image_size=16)
    torch.save(_tiny(), tmp_path / "model.pt")
    out = tmp_path / "pruned.pt"
    assert main(["prune", "--checkpoint", str(tmp_path / "model.pt"), "--dataset", "imagenet", "--data-root",
                 str(root), "--strategy", "auto", "--per-class", "2", "--finetune-iterations", "0", "--no-eval",
                 "--keep-workdir", "--out", str(out), "--device", "cpu", "--workers", "0", "--no-progress",
                 *extra]) == 0
    manifest = json.loads((tmp_path / "pruned.pt.chain" / "chain.json").read_text())
    assert manifest["samples_per_image"] == expected  # 4 images; the widest unit has 16 channels
    if not extra:
        assert "64 samples per image: 4 selection images x 64 = 256 samples for the widest unit's 16 channels" \
            in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--samples-per-channel", "4", "--samples-per-image", "12"], "not both"),
    (["--samples-per-channel", "0.5"], "at least 1"),
    (["--samples-per-channel", "4", "--strategy", "vgg16_conv"], "applies to --strategy auto only"),
], ids=["both", "below-one", "not-auto"])
def test_sample_flags_are_checked_before_anything_is_loaded(tmp_path, capsys, extra, message):
    from thinet.cli import main

    args = ["prune", "--model", "vgg16_small", "--dataset", "imagenet", "--data-root", str(tmp_path / "missing"),
            "--out", str(tmp_path / "x.pt")]
    if "--strategy" not in extra:
        args += ["--strategy", "auto"]
    assert main(args + extra) == 2  # the data root does not exist: the flags were refused first
    assert message in capsys.readouterr().err


class Grouped(nn.Module):
    """A grouped consumer (RegNet-like) and a plain pair after it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16).eval()
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.conv3 = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(self.conv3(x).mean((2, 3)))


def test_the_refit_bench_measures_the_real_cut_and_thinet_nols_channels():
    from thinet.bench._refit import _consumer_outputs, measure_unit

    model = Grouped().eval()
    example = torch.zeros(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    images, held_out = torch.randn(4, 3, 8, 8, generator=gen), torch.randn(4, 3, 8, 8, generator=gen)
    unit = next(u for u in plan_units(model, example).units if u.producer == "conv1")
    row = measure_unit(model, unit, images, held_out, 2, seed=3, example=example)
    assert row["samples"] >= 2 * 16 and row["samples_per_image"] == 8
    # The bench's "no ŵ" is thinet_nols's choice: the same channels, unit scales.
    ctx = CriterionContext(model, unit.pair, [images], 0.5, seed=_seed(unit), samples_per_image=8,
                           example_inputs=example, unit=unit)
    with_ls, without = run_criterion("thinet", ctx), run_criterion("thinet_nols", ctx)
    assert torch.equal(with_ls.keep, without.keep) and torch.equal(without.scale, torch.ones(8))
    # Its errors are those of the pruned model (the masked reference equals the cut).
    reference = _consumer_outputs(model, ["conv2"], held_out)["conv2"]
    for selection, key in ((with_ls, "error_ls"), (without, "error_nols")):
        pruned = prune_unit(_copy(model), unit, selection, example_inputs=example)
        got = _consumer_outputs(pruned, ["conv2"], held_out)["conv2"]
        assert float((got - reference).norm() / reference.norm()) == pytest.approx(row[key], rel=1e-6)


def _seed(unit) -> int:
    from thinet.runtime import derive_seed

    return derive_seed(3, "refit-bench", unit.producer)


def _copy(model: nn.Module) -> nn.Module:
    import copy

    copied = copy.deepcopy(model)
    find_unit(build_graph(copied, torch.zeros(2, 3, 8, 8)), "conv1")  # the copy plans the same unit
    return copied


def test_thinet_bench_refit_prints_the_table(capsys):
    from thinet.cli import main

    assert main(["bench", "refit", "--models", "torchvision:resnet18", "--factors", "1", "2", "--images", "2",
                 "--image-size", "32", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| torchvision:resnet18 | 1 | " in out and "| torchvision:resnet18 | 2 | " in out and "ŵ helps" in out
