"""Issue 24, concatenation: a producer whose channels reach its consumers through `torch.cat` is pruned with
the channel offsets carried through (dense blocks, Inception-style branches), exactly (prune_chain verifies
every cut against the masked reference), also behind a chunk (splits: tests/test_auto_split.py).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from thinet.pipeline import prune_chain
from thinet.runtime import count_flops
from thinet.strategies import plan_units

SIZE = (3, 8, 8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _prune(model: nn.Module, steps, tmp_path) -> nn.Module:
    return prune_chain(model, steps, criterion="thinet", selection_batches=[torch.randn(8, *SIZE)], finetune=None,
                       train_loader=None, workdir=tmp_path / "chain", seed=0, device="cpu",
                       example_inputs=torch.zeros(2, *SIZE), samples_per_image=8, progress=False)


class DenseBlock(nn.Module):
    """DenseNet: each layer reads the concatenation of the stem and every earlier layer (BN, ReLU, conv)."""

    def __init__(self, layers: int = 3, growth: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layers = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(8 + growth * i), nn.ReLU(),
                                                  nn.Conv2d(8 + growth * i, growth, 3, padding=1))
                                    for i in range(layers))
        self.fc = nn.Linear(8 + growth * layers, 2)

    def forward(self, x):
        features = [self.stem(x)]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return self.fc(torch.cat(features, 1).mean((2, 3)))


def test_a_dense_block_is_pruned_with_the_offsets_carried_through(tmp_path):
    model = DenseBlock().eval()
    plan = plan_units(model, torch.zeros(2, *SIZE), shared_channels=True)
    second = next(u for u in plan.units if u.producer == "layers.0.2")
    assert set(second.consumers) == {"layers.1.2", "layers.2.2", "fc"}
    assert second.window("layers.2.2") == (8, 16) and second.window("fc") == (8, 20)  # after the stem's 8
    flops = count_flops(model, SIZE)
    _prune(model, plan.steps(0.5), tmp_path)  # every cut verified exact
    assert model.stem.out_channels == 4 and model.layers[0][2].out_channels == 2
    assert model.layers[2][0].num_features == 4 + 2 + 2 and model.fc.in_features == 4 + 2 + 2 + 2
    assert count_flops(model, SIZE) < 0.4 * flops


class Inception(nn.Module):
    """Two branches concatenated, read by one consumer (a plain unit but for the offset) or by two."""

    def __init__(self, consumers: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 6, 1)
        self.b2 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.heads = nn.ModuleList(nn.Conv2d(12, 8, 1) for _ in range(consumers))
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.relu(torch.cat([self.b1(x), self.b2(x)], 1))
        return self.fc(sum(head(y) for head in self.heads).mean((2, 3)))


@pytest.mark.parametrize("consumers, shared", [(1, False), (2, True)])
def test_inception_branches_feeding_a_concatenation_are_pruned(consumers, shared, tmp_path):
    model = Inception(consumers).eval()
    plan = plan_units(model, torch.zeros(2, *SIZE), shared_channels=shared)
    branch = next(u for u in plan.units if u.producer == "b2.2")
    assert all(branch.window(head) == (6, 12) for head in branch.consumers)
    assert not branch.plain  # a step through a concatenation is cut as a unit
    _prune(model, plan.steps(0.5), tmp_path)
    assert model.b1.out_channels == 3 and model.b2[2].out_channels == 3 and model.heads[0].in_channels == 6


class Halves(nn.Module):
    """A chunk before the consumers: chunk re-divides whatever it gets, so each half keeping the same share is
    sound (tests/test_auto_split.py has the splits that are refused)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem, self.left, self.right = nn.Conv2d(3, 8, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        a, b = self.stem(x).chunk(2, dim=1)
        return self.fc(torch.cat([self.left(a), self.right(b)], 1).mean((2, 3)))


def test_a_chunk_and_a_concatenation_are_followed(tmp_path):
    model = Halves().eval()
    plan = plan_units(model, torch.zeros(2, *SIZE))
    stem = next(u for u in plan.units if u.producer == "stem")
    assert stem.splits == ("chunk in the model's forward",) and stem.span("right") == (4, 4)
    assert {u.producer for u in plan.units} == {"stem", "left", "right"}
    _prune(model, plan.steps(0.5), tmp_path)
    assert model.stem.out_channels == 4 and model.left.in_channels == 2 and model.right.in_channels == 2
    assert model.left.out_channels == 2 and model.fc.in_features == 4
