"""Reusing the rows of an earlier complete run (config key `reuse`): runs.csv beside metrics.csv, runs with
the same settings hash left out of the DAG, their rows carried into the new metrics.csv."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from job_specs import TRAINING, job_spec
from thinet.experiment import RUNS_COLUMNS, RunSpec, build_plan, load_config, run_aggregate_job
from thinet.experiment._aggregate import identity
from thinet.experiment._metrics import read_rows, write_rows

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def _spec(tmp: Path, run: dict) -> Path:
    path = tmp / "specs" / f"{run['id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = job_spec(run, {"name": "fashion_mnist", "root": "fmnist"}, config="demo", work_dir=str(tmp / "work"))
    path.write_text(json.dumps(spec))
    return path


def _run(rid: str, criterion: str, seed: int, digest: str) -> dict:
    return {"id": rid, "hash": digest, "kind": "chain", "experiment": "e", "dataset": "fashion_mnist",
            "model": "vgg16_small", "variant": f"{criterion} r=0.5", "strategy": "vgg16_conv",
            "criterion": criterion, "keep_ratio": 0.5, "seed": seed, "after": "base-vgg", "training": TRAINING,
            "source_hash": "0123abcd", "finetune": {"per_layer": {"iterations": 1}, "final": {"iterations": 1}},
            "selection": f"fashion_mnist-pc2-s{seed}", "selection_settings": {"per_class": 2, "samples_per_image": 2}}


def _rows(run: dict, top1: float) -> list[dict]:
    base = {"config": "demo", **{k: run[k] for k in ("experiment", "dataset", "model", "variant", "strategy",
                                                     "criterion", "keep_ratio", "seed")}}
    return [{**base, "step": -1, "phase": "final", "top1": top1}, {**base, "step": 0, "phase": "pruned", "top1": 50.0}]


def test_aggregate_writes_the_runs_table_and_carries_the_reused_rows(tmp_path: Path) -> None:
    old, new = _run("e-thinet-r0.5-s0", "thinet", 0, "aaaa1111"), _run("e-cp-r0.5-s0", "cp", 0, "bbbb2222")
    other = _run("e-thinet-r0.5-s1", "thinet", 1, "cccc3333")
    earlier = tmp_path / "earlier.csv"
    write_rows(_rows(old, 88.12) + _rows(other, 87.0), earlier)  # `other` is in the file but not reused
    fresh = tmp_path / "eval.csv"
    write_rows(_rows(new, 86.5), fresh)
    specs = [_spec(tmp_path, old), _spec(tmp_path, new)]
    count, reused = run_aggregate_job([fresh], tmp_path / "metrics.csv", tmp_path / "runs.csv", specs,
                                      reuse_metrics=earlier, reused_specs=[specs[0]])
    assert (count, reused) == (4, 2)
    rows = read_rows(tmp_path / "metrics.csv")
    assert sorted((r["criterion"], r["phase"], r["top1"]) for r in rows) == [
        ("cp", "final", "86.5"), ("cp", "pruned", "50.0"), ("thinet", "final", "88.12"), ("thinet", "pruned", "50.0")]
    with open(tmp_path / "runs.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == RUNS_COLUMNS
    assert {(t["run_id"], t["hash"]) for t in table} == {("e-thinet-r0.5-s0", "aaaa1111"), ("e-cp-r0.5-s0", "bbbb2222")}


def test_a_reused_run_without_rows_in_the_earlier_file_is_named(tmp_path: Path) -> None:
    old = _run("e-thinet-r0.5-s0", "thinet", 0, "aaaa1111")
    earlier = tmp_path / "earlier.csv"
    write_rows([], earlier)
    spec = _spec(tmp_path, old)
    with pytest.raises(ValueError, match=r"no rows for 1 reused run.*'criterion': 'thinet'.*complete run"):
        run_aggregate_job([], tmp_path / "metrics.csv", tmp_path / "runs.csv", [spec], reuse_metrics=earlier,
                          reused_specs=[spec])


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed beside this python")
def test_runs_with_the_same_settings_are_not_scheduled_and_a_changed_one_is(tmp_path: Path) -> None:
    config = ROOT / "config" / "default.yaml"
    plan = build_plan(load_config([config], SCHEMA))
    reused = [r for r in plan.evaluated if plan.runs[r]["experiment"] == "vgg_criteria"]
    changed = reused[0]
    table = tmp_path / "runs.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(RUNS_COLUMNS)
        for rid in reused:
            digest = "00000000" if rid == changed else plan.runs[rid]["hash"]
            writer.writerow([rid, digest, *identity(plan.name, RunSpec.from_dict(plan.runs[rid]))])
    (tmp_path / "metrics.csv").write_text("")
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    result = subprocess.run([str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "work"), "-n",
                             "--cores", "2", "--configfile", str(config), "--config",
                             f"reuse={{metrics: {tmp_path / 'metrics.csv'}, runs: {table}}}"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert f"reusing the rows of {len(reused) - 1} of {len(plan.evaluated)} runs" in out
    scheduled = {line.split("run=")[1].strip() for line in out.splitlines() if "wildcards: run=" in line}
    assert changed in scheduled  # its settings changed: it runs again
    assert not scheduled & (set(reused) - {changed})
