"""`thinet train`, `thinet prune`, `thinet eval` and `thinet bench train`, end to end on a Fashion-MNIST fixture."""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from thinet.cli import main

FAST = ["--batch-size", "8", "--workers", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def fmnist(tmp_path_factory):
    from thinet.data import make_fixture

    return str(make_fixture("fashion_mnist", tmp_path_factory.mktemp("fmnist"), per_class=3, seed=0))


@pytest.mark.parametrize("command", ["train", "prune", "eval"])
def test_help_explains_each_command_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"$ thinet {command}" in text and "--dataset" in text and "--device" in text


def test_help_works_from_the_installed_entry_point():
    done = subprocess.run([sys.executable, "-m", "thinet", "prune", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "--keep-ratio" in done.stdout


@pytest.mark.parametrize("flags, culprit", [
    (["--criterion", "thinett"], "unknown criterion 'thinett'"),
    (["--strategy", "vgg17"], "unknown strategy 'vgg17'"),
    (["--model", "vgg99"], "unknown model 'vgg99'"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--keep-ratio", "0"], "keep_ratio must be in (0, 1]"),
    (["--finetune-iterations", "-1"], "--finetune-iterations must be >= 0"),
])
def test_prune_refuses_bad_names_and_rates_before_compute(flags, culprit, fmnist, tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    assert main(["prune", "--data-root", fmnist, "--out", str(out), *FAST, *flags]) == 2
    assert culprit in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "pruned.pt.chain").exists()


def test_train_prune_eval_end_to_end(fmnist, tmp_path, capsys):
    trained, pruned, report = tmp_path / "model.pt", tmp_path / "pruned.pt", tmp_path / "eval.json"
    assert main(["train", "--data-root", fmnist, "--iterations", "2", "--out", str(trained), "--no-progress",
                 *FAST]) == 0
    assert isinstance(torch.load(trained, weights_only=False), nn.Module)
    assert not (tmp_path / "model.pt.train.pt").exists()

    assert main(["prune", "--checkpoint", str(trained), "--data-root", fmnist, "--criterion", "thinet",
                 "--keep-ratio", "0.5", "--strategy", "vgg16_conv", "--per-class", "2",
                 "--finetune-iterations", "1", "--final-iterations", "1", "--out", str(pruned), "--no-progress",
                 *FAST]) == 0
    printed = capsys.readouterr().out
    assert "parameters" in printed and "FLOPs" in printed and "fewer" in printed
    assert not (tmp_path / "pruned.pt.chain").exists()

    assert main(["eval", "--checkpoint", str(pruned), "--data-root", fmnist, "--timing", "--rounds", "1",
                 "--original", str(trained), "--json", str(report), *FAST]) == 0
    assert "for a FLOPs reduction of" in capsys.readouterr().out  # the pruned model beside its original
    result = json.loads(report.read_text())
    assert result["original"]["flops"] > result["flops"] and result["original"]["forward_ms"] > 0
    original = torch.load(trained, weights_only=False)
    assert result["images"] == 30 and 0 <= result["top5"] <= 100 and result["top1"] <= result["top5"]
    assert 0 < result["params"] < sum(p.numel() for p in original.parameters())
    assert result["forward_ms"] > 0 and result["backward_ms"] > 0
    model = torch.load(pruned, weights_only=False)
    assert model.features[0].out_channels == original.features[0].out_channels // 2


def test_eval_needs_a_model_or_checkpoint(fmnist, capsys):
    assert main(["eval", "--data-root", fmnist, *FAST]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_bench_train_reports_both_throughputs_and_their_ratio(capsys, tmp_path):
    from thinet.cli.bench import run_train as run

    args = SimpleNamespace(device="cpu", seed=0, repeats=1, train_steps=1, train_batch_size=4,
                           train_json=str(tmp_path / "bench.json"))
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "suite train()" in printed and "bare SGD loop" in printed and "ratio suite/bare" in printed
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["suite_images_per_s"] > 0 and figures["bare_images_per_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["suite_images_per_s"] / figures["bare_images_per_s"])
