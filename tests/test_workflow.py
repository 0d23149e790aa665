"""The Snakemake workflow: dry-runs of every config list the expected jobs, a bad config stops
before any job with a message naming the key, and the SLURM profile dry-runs.

End-to-end runs (smoke config, idempotent rerun, paper configs on fixtures) are in
workflow/scripts/ci_workflow.sh, run by .ci/run (too slow for the unit-test budget).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
FMNIST = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed beside this python")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    return subprocess.run([str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2",
                           *args], capture_output=True, text=True, env=env, timeout=300)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry-run as {rule: count}."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def dry_run(workdir: Path, *configs: Path, extra: tuple[str, ...] = ()) -> dict[str, int]:
    result = snakemake(workdir, "-n", "--configfile", *map(str, configs), *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return job_counts(result.stdout + result.stderr)


APPLICABLE_TO_VGG = """
from thinet.criteria import available_criteria, layer_refusal
from thinet.models import create_model, example_inputs
from thinet.types import LayerPair
vgg = create_model("vgg16_small", 10, width_mult=0.125, batch_norm=False, head="fc")
pair = LayerPair("features.0", "features.2")
print(sum(layer_refusal(c, vgg, pair, example_inputs(vgg)) is None for c in available_criteria()))
"""


def registered_criteria() -> int:
    """The criteria a fresh process registers that can score the configs' VGG (no BatchNorm: bn_scale and
    tp_bn_scale are left out of `criteria: all` there), as Snakemake's jobs see them (a test module that
    loaded a criterion plugin into this process must not change the expected grid)."""
    out = subprocess.run([sys.executable, "-c", APPLICABLE_TO_VGG], capture_output=True, text=True, check=True)
    return int(out.stdout)


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_default_config_dry_run_lists_the_whole_grid(tmp_path):
    counts = dry_run(tmp_path, ROOT / "config" / "default.yaml")
    # VGG: `criteria: all` at r = 0.5 x 3 seeds and at 0.7, 0.3; Table 1's ThiNet-Conv and ThiNet-Tiny;
    # ResNet: 3 rates, with and without BN re-estimation. Every chain, scratch, GAP and original evaluated
    # (a chain by its own job, the others by rule evaluate);
    # the kept bases and Train from scratch are made by pretrain_base / pretrain_scratch where they are
    # missing (here: a bare folder).
    chains = registered_criteria() * 5 + 2 + 6
    expected = {"mlflow_store": 1, "prepare_data": 1, "selection_subset": 3, "pretrain_base": 2,
                "pretrain_scratch": 1, "base_model": 2,
                "prune_chain": chains, "finetune_variant": 2, "evaluate": 2 + 3, "compare_layer": 1,
                "aggregate_metrics": 1, "all": 1}
    assert {k: counts.get(k) for k in expected} == expected
    assert "check_base_converged" not in counts  # as costly as a base's training: only asked for by name
    # the run settings are written while parsing, one file per run
    assert len(list((tmp_path / "results" / "default" / "specs").glob("*.json"))) == chains + 2 + 3 + 2


@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_a_fresh_clone_starts_from_the_committed_bases(tmp_path):
    # The kept bases are inputs of the run, not outputs to redo: the data step runs on a fresh clone,
    # and nothing the data step makes may send pretrain_base off retraining the committed files.
    shutil.copytree(ROOT / "models" / "default", tmp_path / "models" / "default")
    counts = dry_run(tmp_path, ROOT / "config" / "default.yaml")
    assert counts.get("prepare_data") == 1 and counts.get("base_model") == 2
    assert "pretrain_base" not in counts and "pretrain_scratch" not in counts


@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_the_convergence_check_of_a_kept_base_runs_when_named(tmp_path):
    shutil.copytree(ROOT / "models" / "default", tmp_path / "models" / "default")
    result = snakemake(tmp_path, "-n", "results/default/bases/vgg_converged.json",
                       "--configfile", str(ROOT / "config" / "default.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == {"check_base_converged": 1}


@pytest.mark.parametrize("name, expected", [
    ("imagenet_vgg16", {"prepare_data": 1, "selection_subset": 1, "base_model": 1, "prune_chain": 7,
                        "finetune_variant": 3, "evaluate": 4, "aggregate_metrics": 1}),
    ("imagenet_resnet50", {"prepare_data": 1, "selection_subset": 1, "base_model": 1, "prune_chain": 3,
                           "evaluate": 1, "aggregate_metrics": 1}),
    ("transfer", {"prepare_data": 2, "selection_subset": 2, "base_model": 2, "prune_chain": 2,
                  "finetune_variant": 10, "evaluate": 12, "aggregate_metrics": 1}),
])
def test_paper_config_dry_run_lists_the_full_dag(tmp_path, name, expected):
    # The real configs name data (and checkpoints) relative to the working directory: stand-ins suffice.
    config = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    for ds in config["datasets"].values():
        (tmp_path / ds["root"]).mkdir(parents=True)
    for base in config["bases"].values():
        if base.get("checkpoint"):
            touch(tmp_path / base["checkpoint"])
    for exp in config["experiments"].values():
        for var in exp["variants"]:
            if var.get("checkpoint"):
                touch(tmp_path / var["checkpoint"])
    counts = dry_run(tmp_path, ROOT / "config" / f"{name}.yaml")
    assert {k: counts.get(k) for k in expected} == expected
    # §4.1's single-layer comparison runs in its own setting only: CUB-200, VGG-16-GAP (config/transfer.yaml)
    assert counts.get("compare_layer") == (1 if name == "transfer" else None)


def test_bad_config_stops_before_any_job_naming_the_key(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    config["experiments"]["vgg_criteria"]["variants"][1]["keep_ratios"] = [0.5, 1.5]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(bad))
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "keep_ratios" in text and "1.5" in text, text[-2000:]
    assert not (tmp_path / "results").exists()  # nothing ran, nothing was written

    config["experiments"]["vgg_criteria"]["variants"][1]["keep_ratios"] = [0.5]
    config["experiments"]["vgg_criteria"]["variants"][1]["criteria"] = ["thinet", "l1"]
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(bad))
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "experiments.vgg_criteria.variants[1].criteria[1]" in text and "weight_sum" in text, text[-2000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_slurm_profile_dry_run(tmp_path):
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    counts = dry_run(tmp_path, ROOT / "config" / "smoke.yaml", extra=("--profile", str(tmp_path / "profiles" / "slurm")))
    # The smoke's sample of criteria at seed 0 but bn_scale (refused on a VGG without BatchNorm), ThiNet and
    # random at seed 1 (VGG), the long budget's ThiNet and random at seeds 0 and 1, ResNet with and without
    # BN re-estimation, the gcos arm's ThiNet-Conv and its three groupings
    sample = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())["experiments"]["vgg_criteria"]["variants"][1]
    assert "bn_scale" in sample["criteria"]
    assert counts["prune_chain"] == len(sample["criteria"]) - 1 + 2 + 4 + 2 + 1 and counts["base_model"] == 2
    assert counts["grouped_model"] == 3


def test_slurm_profile_requeues_preempted_jobs():
    # The executor plugin's own setting (snakemake-executor-plugin-slurm: `sbatch --requeue`).
    from dataclasses import fields

    import yaml
    from snakemake_executor_plugin_slurm import ExecutorSettings

    profile = yaml.safe_load((Path(__file__).resolve().parents[1] / "profiles/slurm/config.yaml").read_text())
    assert profile["slurm-requeue"] is True
    assert "requeue" in {f.name for f in fields(ExecutorSettings)}
