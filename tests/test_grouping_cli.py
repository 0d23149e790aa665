"""`thinet prune --gcos-groups`: checked before compute, and end to end on a Fashion-MNIST fixture."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from thinet.cli import main
from thinet.grouping import ChannelShuffle

FAST = ["--batch-size", "8", "--workers", "0", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def fmnist(tmp_path_factory):
    from thinet.data import make_fixture

    return str(make_fixture("fashion_mnist", tmp_path_factory.mktemp("fmnist"), per_class=3, seed=0))


@pytest.mark.parametrize("flags, culprit", [
    (["--gcos-groups", "1"], "--gcos-groups must be at least 2"),
    (["--gcos-groups", "2", "--grouping", "shuffled"], "unknown grouping 'shuffled'"),
    (["--grouping", "gcos"], "--grouping applies with --gcos-groups only"),
])
def test_bad_grouping_flags_are_refused_before_compute(flags, culprit, fmnist, tmp_path, capsys):
    out = tmp_path / "grouped.pt"
    assert main(["prune", "--data-root", fmnist, "--out", str(out), *FAST, *flags]) == 2
    assert culprit in capsys.readouterr().err
    assert not out.exists()


def test_prune_then_gcos_groups_the_pruned_model(fmnist, tmp_path, capsys):
    grouped = tmp_path / "grouped.pt"
    # an untrained model, random pruning and no fine-tuning: what is checked is the grouping's wiring
    assert main(["prune", "--model", "vgg16_small", "--data-root", fmnist, "--keep-ratio", "0.5", "--per-class", "1",
                 "--samples-per-image", "8", "--criterion", "random", "--finetune-iterations", "0",
                 "--gcos-groups", "2", "--out", str(grouped), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "group 12 conv(s) into 2 groups" in printed and "skip features.0: reads the image" in printed
    model = torch.load(grouped, weights_only=False)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1] + [2] * 12
    assert any(isinstance(m, ChannelShuffle) for m in model.modules())  # gcos's groups are not contiguous


def test_a_grouping_that_cannot_apply_is_refused_before_any_layer_is_pruned(fmnist, tmp_path, capsys, monkeypatch):
    # VGG at 1/8 width, r = 0.5: the pruned convs keep 4, 8, 16 and 32 channels and the image has 1, so
    # no conv's inputs and filters both divide by g = 3. Before: the whole chain ran, then this error.
    import thinet.pipeline

    calls = []
    monkeypatch.setattr(thinet.pipeline, "prune_chain", lambda *a, **k: calls.append(1))
    grouped = tmp_path / "grouped.pt"
    assert main(["prune", "--model", "vgg16_small", "--data-root", fmnist, "--keep-ratio", "0.5", "--per-class", "1",
                 "--samples-per-image", "8", "--criterion", "random", "--finetune-iterations", "0",
                 "--gcos-groups", "3", "--out", str(grouped), *FAST]) == 2
    err = capsys.readouterr().err
    assert "no conv of VGGGap can be grouped into 3 groups" in err or "can be grouped into 3 groups" in err, err
    assert "features.2" in err and calls == [] and not grouped.exists()
