"""Every registered criterion obeys the same contract; plugins register the three documented ways."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

import thinet.criteria as criteria
import thinet.criteria._lookup as criteria_lookup  # its lazy-loading flag, reset by the entry-point tests
from thinet.criteria import (
    CriterionConformanceError, CriterionContext, available_criteria, check_criterion, get_criterion,
    load_criterion_modules, run_criterion,
)
from thinet.criteria._registry import registered  # the raw table, to restore it after a test
from thinet.types import LayerPair, PruneStep, PruningError, Selection, num_kept

# The guide to adding a criterion (its python example is tested below).
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "add-a-criterion.md"


def tiny_vgg() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(12, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(Bottleneck(16, 4), Bottleneck(16, 4))
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _randomise_bn(model: nn.Module) -> nn.Module:
    # Non-trivial BN statistics so data-driven criteria see distinct channels.
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(2)
    return [(torch.randn(4, 3, 8, 8, generator=gen), torch.randint(0, 5, (4,), generator=gen)) for _ in range(2)]


def tiny_vgg_without_bn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(12, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )


CASES = {
    "vgg_conv_conv": (tiny_vgg, LayerPair("3", "7")),
    "vgg_without_bn": (tiny_vgg_without_bn, LayerPair("2", "5")),
    "resnet_bottleneck": (TinyResNet, LayerPair("layer1.0.conv1", "layer1.0.conv2")),
}


def _factory(case: str):
    build, pair = CASES[case]
    model = _randomise_bn(build())
    batches = _batches()
    return lambda r, seed: CriterionContext(model, pair, batches, keep_ratio=r, seed=seed, samples_per_image=5)


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    saved = dict(registered())
    yield
    registered().clear()
    registered().update(saved)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", available_criteria())
def test_every_criterion_conforms(name: str, case: str) -> None:
    build, pair = CASES[case]
    reason = criteria.layer_refusal(name, build(), pair, torch.zeros(2, 3, 8, 8))
    if reason is not None:  # refused before any compute, naming the layer: tested below
        with pytest.raises(PruningError, match=rf"layer '{re.escape(pair.producer)}'"):
            run_criterion(name, _factory(case)(0.5, 0))
        pytest.skip(f"{name} cannot score layer {pair.producer!r} of {case}: {reason}")
    check_criterion(name, _factory(case), keep_ratios=(0.5, 0.3, 0.01))


def test_a_refused_layer_stops_the_chain_before_any_compute(tmp_path: Path, clean_registry) -> None:
    from thinet.pipeline import prune_chain

    model = tiny_vgg_without_bn().eval()
    steps = [PruneStep(LayerPair("0", "2"), 0.5), PruneStep(LayerPair("2", "5"), 0.5)]
    calls = []
    criteria.register_criterion("toy_needs_bn")(lambda ctx: calls.append(ctx) or torch.arange(ctx.n_keep))
    get_criterion("toy_needs_bn").layer_check = lambda m, pair, x: criteria.batchnorm_refusal(m, pair.producer, x)
    with pytest.raises(PruningError, match=r"criterion 'toy_needs_bn' cannot score layer '0': no BatchNorm"):
        prune_chain(model, steps, criterion="toy_needs_bn", selection_batches=_batches(), finetune=None,
                    train_loader=None, workdir=tmp_path / "chain", seed=0, device="cpu",
                    example_inputs=torch.zeros(2, 3, 8, 8), progress=False)
    assert calls == [] and not (tmp_path / "chain").exists()


def test_builtin_criteria_are_registered() -> None:
    assert {"thinet", "thinet_nols", "weight_sum", "apoz", "taylor", "random"} <= set(available_criteria())
    assert available_criteria() == sorted(available_criteria())


def test_unknown_criterion_lists_known_ones() -> None:
    with pytest.raises(PruningError, match=r"unknown criterion 'nope'.*apoz.*weight_sum"):
        get_criterion("nope")


@pytest.mark.parametrize("bad, message", [
    (lambda ctx: torch.arange(ctx.n_keep + 1), r"kept 5 channels; expected exactly 4"),
    (lambda ctx: torch.zeros(ctx.n_keep, dtype=torch.long), r"duplicate"),
    (lambda ctx: torch.arange(ctx.n_keep) + ctx.num_channels - 1, r"out of range"),
    (lambda ctx: torch.arange(ctx.n_keep) * -1, r"out of range"),
    (lambda ctx: torch.arange(ctx.n_keep).float(), r"dtype torch.float32"),
    (lambda ctx: "0,1,2,3", r"returned str"),
    (lambda ctx: Selection(torch.arange(4), torch.arange(4, 8), torch.ones(3)), r"3 scale factors"),
])
def test_bad_criterion_is_rejected_with_its_name(bad, message: str, clean_registry) -> None:
    criteria.register_criterion("toy_bad")(bad)
    ctx = _factory("vgg_conv_conv")(0.34, 0)  # 12 channels -> 4 kept
    with pytest.raises(PruningError, match=rf"criterion 'toy_bad' on layer '3'.*{message}"):
        run_criterion("toy_bad", ctx)
    with pytest.raises(PruningError, match="toy_bad"):
        check_criterion("toy_bad", _factory("vgg_conv_conv"))


def test_conformance_catches_nondeterminism_and_side_effects(clean_registry) -> None:
    calls = iter(range(100))

    @criteria.register_criterion("toy_unseeded")
    def unseeded(ctx):
        return torch.randperm(ctx.num_channels, generator=torch.Generator().manual_seed(next(calls)))[: ctx.n_keep]

    @criteria.register_criterion("toy_meddling")
    def meddling(ctx):
        ctx.model.train()
        return torch.arange(ctx.n_keep)

    with pytest.raises(CriterionConformanceError, match="same seed"):
        check_criterion("toy_unseeded", _factory("vgg_conv_conv"))
    with pytest.raises(CriterionConformanceError, match="train/eval"):
        check_criterion("toy_meddling", lambda r, s: _eval(_factory("vgg_conv_conv")(r, s)))


def _eval(ctx: CriterionContext) -> CriterionContext:
    ctx.model.eval()
    return ctx


def test_bad_context_is_rejected_before_compute() -> None:
    model = tiny_vgg()
    with pytest.raises(PruningError, match=r"keep_ratio 0 .*'3'"):
        CriterionContext(model, LayerPair("3", "7"), _batches(), keep_ratio=0)
    with pytest.raises(PruningError, match=r"keep_ratio 1.5"):
        CriterionContext(model, LayerPair("3", "7"), _batches(), keep_ratio=1.5)
    with pytest.raises(PruningError, match=r"producer layer 'features.99'"):
        CriterionContext(model, LayerPair("features.99", "7"), _batches(), keep_ratio=0.5)
    with pytest.raises(PruningError, match=r"consumer layer 'x'"):
        CriterionContext(model, LayerPair("3", "x"), _batches(), keep_ratio=0.5)
    with pytest.raises(PruningError, match=r"layer '2' \(ReLU\) has no output channels"):
        CriterionContext(model, LayerPair("2", "3"), _batches(), keep_ratio=0.5)
    with pytest.raises(PruningError, match=r"re-iterable.*generator"):
        CriterionContext(model, LayerPair("3", "7"), (b for b in _batches()), keep_ratio=0.5)


TOY_MODULE = '''
import torch
from thinet.criteria import register_criterion

@register_criterion("{name}")
def last_channels(ctx):
    # keep the highest-numbered channels, in descending order: the registry sorts them
    return torch.arange(ctx.num_channels - 1, ctx.num_channels - 1 - ctx.n_keep, -1)
'''


def _prune_through_pipeline(name: str, workdir: Path) -> None:
    from thinet.pipeline import prune_chain

    model = _randomise_bn(tiny_vgg()).eval()
    pair = LayerPair("3", "7")
    example = torch.randn(2, 3, 8, 8)
    expected = run_criterion(name, CriterionContext(model, pair, _batches(), keep_ratio=0.5))
    kept_weights = model[3].weight.detach()[expected.keep].clone()
    pruned = prune_chain(model, [PruneStep(pair, 0.5)], criterion=name, selection_batches=_batches(), finetune=None,
                         train_loader=None, workdir=workdir, seed=0, device="cpu", example_inputs=example,
                         progress=False)
    assert pruned[3].out_channels == num_kept(12, 0.5) == pruned[7].in_channels
    assert torch.equal(pruned[3].weight.detach(), kept_weights)  # the criterion's channels are the ones kept
    assert pruned(example).shape == (2, 5)


def test_module_file_from_config_registers_and_conforms(tmp_path: Path, clean_registry) -> None:
    path = tmp_path / "toy_last.py"
    path.write_text(TOY_MODULE.format(name="toy_last"))
    assert load_criterion_modules([str(path)]) == ["toy_last"]
    assert load_criterion_modules([str(path)]) == []  # loading twice is harmless
    assert "toy_last" in available_criteria()
    for case in CASES:
        check_criterion("toy_last", _factory(case))
    assert run_criterion("toy_last", _factory("vgg_conv_conv")(0.5, 0)).keep.tolist() == [6, 7, 8, 9, 10, 11]
    _prune_through_pipeline("toy_last", tmp_path / "chain")


def test_config_modules_bad_entries_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.py"):
        load_criterion_modules([str(tmp_path / "missing.py")])
    with pytest.raises(PruningError, match="no_such_pkg.crit"):
        load_criterion_modules(["no_such_pkg.crit"])
    with pytest.raises(PruningError, match="must be a list"):
        load_criterion_modules("baselines.apoz")


def test_duplicate_name_from_another_definition_is_refused(clean_registry) -> None:
    with pytest.raises(PruningError, match="'random' is already registered by baselines.random"):
        criteria.register_criterion("random")(lambda ctx: torch.arange(ctx.n_keep))


def _install_dist(root: Path, entry_points: str, modules: dict[str, str]) -> None:
    dist = root / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[thinet.criteria]\n" + entry_points)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(source)


def test_entry_points_register_modules_and_functions(tmp_path: Path, monkeypatch, clean_registry) -> None:
    _install_dist(tmp_path, "toy_ep_module = toy_ep_mod\ntoy_ep_function = toy_ep_fn:first_channels\n", {
        "toy_ep_mod": TOY_MODULE.format(name="toy_ep_module"),
        "toy_ep_fn": "import torch\n\ndef first_channels(ctx):\n    return torch.arange(ctx.n_keep)\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(criteria_lookup, "_loaded", False)  # the registry loads plugins lazily, once
    names = available_criteria()
    assert {"toy_ep_module", "toy_ep_function", "thinet", "apoz"} <= set(names)
    for name in ("toy_ep_module", "toy_ep_function"):
        check_criterion(name, _factory("resnet_bottleneck"))
    assert run_criterion("toy_ep_function", _factory("vgg_conv_conv")(0.25, 0)).keep.tolist() == [0, 1, 2]


def test_broken_entry_point_is_named(tmp_path: Path, monkeypatch, clean_registry) -> None:
    _install_dist(tmp_path, "toy_broken = toy_missing_module_xyz\n", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(criteria_lookup, "_loaded", False)
    with pytest.raises(PruningError, match="entry point 'toy_broken' = 'toy_missing_module_xyz'"):
        available_criteria()


def _guide_example() -> str:
    text = GUIDE.read_text()
    section = text[text.index("<!-- criterion:start -->"):text.index("<!-- criterion:end -->")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "docs/add-a-criterion.md should hold exactly one python example"
    return blocks[0]


def test_guide_example_registers_and_conforms(tmp_path: Path, clean_registry) -> None:
    path = tmp_path / "guide_example.py"
    path.write_text(textwrap.dedent(_guide_example()))
    added = load_criterion_modules([str(path)])
    assert added == ["l2_norm"]
    for case in CASES:
        check_criterion("l2_norm", _factory(case))
    ctx = _factory("vgg_conv_conv")(0.5, 0)
    norms = ctx.producer.weight.detach().flatten(1).norm(dim=1)
    assert run_criterion("l2_norm", ctx).keep.tolist() == sorted(torch.topk(norms, 6).indices.tolist())
