"""Issue 24, "planning is fragile": planning ends, every refusal names the layer, a channel shuffle
leaves a plan for the rest of the model, and `thinet prune` uses a model's own input size.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from thinet.pipeline import prune_chain
from thinet.strategies import plan_units
from thinet.surgery import UnitRefused, build_graph, find_unit

SIZE = (3, 8, 8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Through(nn.Module):
    """a -> ReLU -> `middle` -> ReLU -> b -> mean -> fc."""

    def __init__(self, middle: nn.Module, width: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.middle = nn.Conv2d(3, 8, 1), middle
        self.b, self.fc = nn.Conv2d(width, 6, 1), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(self.b(torch.relu(self.middle(torch.relu(self.a(x))))).mean((2, 3)))


def test_a_conv_with_groups_equal_to_out_channels_is_refused_naming_it():
    model = Through(nn.Conv2d(8, 4, 3, padding=1, groups=4), 4).eval()
    plan = plan_units(model, torch.zeros(2, *SIZE))
    for layer in ("a", "middle"):
        kind, reason = plan.skipped[layer]
        assert kind == "groups" and "'middle'" in reason and "groups == out_channels (4) < in_channels (8)" in reason
    assert [u.producer for u in plan.units] == ["b"]


def test_a_depthwise_conv_with_channel_multiplier_two_is_refused_for_that_reason():
    model = Through(nn.Conv2d(8, 16, 3, padding=1, groups=8), 16).eval()
    kind, reason = plan_units(model, torch.zeros(2, *SIZE)).skipped["a"]
    assert kind == "depthwise" and "'middle'" in reason and "channel multiplier 2" in reason
    assert "model output" not in reason


def test_the_dependency_search_has_a_time_limit_naming_the_layer():
    model = Through(nn.Identity(), 8).eval()
    graph = build_graph(model, torch.zeros(2, *SIZE))
    with pytest.raises(UnitRefused, match=r"layer 'a': the dependency search did not end within its time limit") \
            as info:
        find_unit(graph, "a", time_limit=0.0)
    assert info.value.kind == "timeout"
    plan = plan_units(model, torch.zeros(2, *SIZE), time_limit=0.0)
    assert plan.skipped["a"][0] == "timeout" and any("time limit" in line for line in plan.lines())
    assert find_unit(graph, "a").plain  # the default limit is far above what a search takes


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleBlock(nn.Module):
    """ShuffleNetV2's unit: split, one branch convolved, concatenated, channels shuffled."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1))
        self.head, self.head2, self.fc = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 6, 1), nn.Linear(6, 2)

    def forward(self, x):
        left, right = torch.relu(self.stem(x)).chunk(2, dim=1)
        x = _shuffle(torch.cat([left, self.branch(right)], 1), 2)
        x = torch.relu(self.head(x))
        return self.fc(torch.relu(self.head2(x)).mean((2, 3)))


def test_a_channel_shuffle_leaves_a_plan_for_the_rest_of_the_model(tmp_path):
    model = ShuffleBlock().eval()
    plan = plan_units(model, torch.zeros(2, *SIZE), shared_channels=True)
    assert {u.producer for u in plan.units} == {"branch.0", "head", "head2"}
    assert "'stem'" in plan.skipped["stem"][1] and "'branch.3'" in plan.skipped["branch.3"][1]
    prune_chain(model, plan.steps(0.5), criterion="thinet", selection_batches=[torch.randn(8, *SIZE)],
                finetune=None, train_loader=None, workdir=tmp_path / "chain", seed=0, device="cpu",
                example_inputs=torch.zeros(2, *SIZE), samples_per_image=4, progress=False)  # verified exact
    assert model.branch[0].out_channels == 2 and model.head.out_channels == 4 and model.stem.out_channels == 8


def test_shufflenet_v2_is_traced_and_planned():
    import torchvision

    # "integer division or modulo by zero" at the channel shuffle's reshape aborted the trace before.
    plan = plan_units(torchvision.models.shufflenet_v2_x0_5(weights=None).eval(), torch.zeros(2, 3, 32, 32))
    assert len(plan.units) > 10 and "stage2.1.branch2.0" in {u.producer for u in plan.units}


def test_the_command_line_uses_the_models_own_input_size(tmp_path, capsys):
    import torchvision

    from thinet.cli import main
    from thinet.data import make_fixture

    root = make_fixture("imagenet", tmp_path / "imagenet", classes=2, per_class=2, seed=0)
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    model.thinet_input_size = (3, 40, 40)  # what a timm model's pretrained configuration sets (e.g. 256)
    torch.save(model, tmp_path / "model.pt")
    assert main(["prune", "--checkpoint", str(tmp_path / "model.pt"), "--dataset", "imagenet", "--data-root",
                 str(root), "--strategy", "auto", "--dry-run", "--out", str(tmp_path / "x.pt"), "--device", "cpu",
                 "--workers", "0", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "using the model's input size 40x40 (the dataset's default is 224x224)" in printed
    assert "dry run:" in printed
