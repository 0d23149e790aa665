"""`thinet compare-layer`: every criterion on the same images, the same evaluation, honest tables."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from thinet.cli import main
from thinet.experiment import compare_layer, compare_markdown, resolve_pair
from thinet.criteria import available_criteria
from thinet.runtime import evaluate
from thinet.models import create_model
from thinet.report import COMPARE_LAYER_COLUMNS, read_compare_layer
from thinet.types import LayerPair, PruningError


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    from thinet.data import make_fixture

    return make_fixture("fashion_mnist", tmp_path_factory.mktemp("fmnist"), per_class=2, seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "vgg16_small.pt"
    torch.save(create_model("vgg16_small", 10).state_dict(), path)
    return path


def _cli(fixture_root: Path, checkpoint: Path, out: Path, *extra: str) -> int:
    return main(["compare-layer", "--checkpoint", str(checkpoint), "--data-root", str(fixture_root),
                 "--per-class", "1", "--samples-per-image", "3", "--device", "cpu", "--config", "unit",
                 "--out-csv", str(out / "sub" / "compare_layer.csv"), "--out-md", str(out / "compare_layer.md"),
                 *extra])


def test_cli_end_to_end_on_fixture(fixture_root: Path, checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert _cli(fixture_root, checkpoint, tmp_path) == 0
    csv_path = tmp_path / "sub" / "compare_layer.csv"
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == COMPARE_LAYER_COLUMNS
        rows = list(reader)
    assert [r["criterion"] for r in rows] == ["none", *available_criteria()]
    assert {r["layer"] for r in rows} == {"features.0"}
    assert {(r["config"], r["dataset"], r["model"], r["seed"]) for r in rows} == {("unit", "fashion_mnist",
                                                                                   "vgg16_small", "0")}
    assert [float(r["keep_ratio"]) for r in rows] == [1.0] + [0.4] * (len(rows) - 1)
    assert {r["eval_images"] for r in rows} == {"20"}  # the fixture's 10 classes x 2 val images, for every row
    assert read_compare_layer(csv_path).shape == (len(rows), len(COMPARE_LAYER_COLUMNS))
    # The unpruned row is exactly what evaluate() says about the checkpoint.
    from thinet.data import get_dataset

    model = create_model("vgg16_small", 10, checkpoint=checkpoint)
    base = evaluate(model, torch.utils.data.DataLoader(get_dataset("fashion_mnist", "val", root=fixture_root),
                                                       batch_size=7))
    assert float(rows[0]["top1"]) == pytest.approx(base["top1"])
    markdown = (tmp_path / "compare_layer.md").read_text()
    assert "| thinet | 0.4 |" in markdown and "70.75" not in markdown and "paper" not in markdown  # not §4.1
    assert markdown in capsys.readouterr().out
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left behind


def test_cli_rejects_bad_input_before_writing(fixture_root: Path, checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert _cli(fixture_root, checkpoint, tmp_path, "--criteria", "thinet,nope") == 2
    assert "unknown criterion 'nope'" in capsys.readouterr().err
    assert _cli(fixture_root, checkpoint, tmp_path, "--layer", "conv9_9") == 2
    err = capsys.readouterr().err
    assert "--layer 'conv9_9'" in err and "features.3" in err
    assert _cli(fixture_root, checkpoint, tmp_path, "--keep-ratio", "0") == 2
    assert "keep_ratio 0.0" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.csv")) and not list(tmp_path.rglob("*.md"))


def _tiny_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()


def _data(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 3, (n,), generator=gen))]


def test_keeping_every_channel_changes_nothing_for_any_criterion() -> None:
    model = _tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = compare_layer(model, LayerPair("0", "3"), _data(6, 0), _data(30, 1), criteria=available_criteria(),
                         keep_ratio=1.0, example_inputs=torch.zeros(1, 1, 8, 8), samples_per_image=4)
    assert [r["criterion"] for r in rows] == ["none", *available_criteria()]
    for row in rows[1:]:
        assert row["top1"] == rows[0]["top1"] and row["top5"] == rows[0]["top5"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # each criterion pruned a copy


def test_pruning_changes_the_model_copy_only() -> None:
    model = _tiny_net()
    rows = compare_layer(model, LayerPair("0", "3"), _data(6, 0), _data(30, 1), criteria=["weight_sum", "random"],
                         keep_ratio=0.34, example_inputs=torch.zeros(1, 1, 8, 8), seed=3)
    assert [r["keep_ratio"] for r in rows] == [1.0, 0.34, 0.34]
    assert model[0].out_channels == 6


def test_resolve_pair_accepts_paper_and_module_names() -> None:
    model = create_model("vgg16_small", 10)
    example = torch.zeros(1, 1, 32, 32)
    assert resolve_pair(model, "conv2_1", example) == resolve_pair(model, "features.7", example)
    assert resolve_pair(model, "conv1_2", example) == LayerPair("features.3", "features.7")
    with pytest.raises(PruningError, match="prunable layers: features.0, features.3"):
        resolve_pair(model, "classifier", example)


def test_markdown_leaves_paper_blank_for_unreported_criteria() -> None:
    rows = [{"criterion": c, "keep_ratio": 0.4, "top1": 50.0, "top5": 90.0, "eval_images": 5, "layer": "features.0",
             "dataset": "cub200", "model": "vgg16"} for c in ("apoz", "weight_sum")]
    lines = compare_markdown(rows).splitlines()
    assert "| apoz | 0.4 | 50.00 | 90.00 | 5 |  |" in lines
    assert "| weight_sum | 0.4 | 50.00 | 90.00 | 5 | 40.99 |" in lines


@pytest.mark.parametrize("change", [{"dataset": "fashion_mnist"}, {"keep_ratio": 0.5}, {"layer": "features.2"}])
def test_markdown_shows_the_paper_column_only_in_the_papers_setting(change) -> None:
    row = {"criterion": "weight_sum", "keep_ratio": 0.4, "top1": 50.0, "top5": 90.0, "eval_images": 5,
           "layer": "features.0", "dataset": "cub200", "model": "vgg16", **change}
    text = compare_markdown([row])
    assert "paper" not in text and "40.99" not in text
    assert f"| weight_sum | {row['keep_ratio']} | 50.00 | 90.00 | 5 |" in text.splitlines()
