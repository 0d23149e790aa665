"""Typed job specs (issue 30, item 2): the spec files the workflow writes are read once into frozen
dataclasses and give back exactly what was written; a missing, misspelt or mistyped key is one error
naming the dotted key and the file, before any model or data is touched."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from job_specs import base_run, job_spec
from thinet.experiment import CompareLayerSpec, JobSpec, RunSpec, SpecError, load_spec

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """The results folder of a dry run of the smoke config: the workflow writes every spec while it parses."""
    if not SNAKEMAKE.exists():
        pytest.skip("snakemake is not installed beside this python")
    from thinet.data import make_fixture

    work = tmp_path_factory.mktemp("workflow")
    root = make_fixture("fashion_mnist", work / "fmnist", per_class=2, seed=0)
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    done = subprocess.run([str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(work / "run"), "-n", "--cores", "1",
                           "--configfile", str(ROOT / "config" / "smoke.yaml"),
                           "--config", f"datasets={{fashion_mnist: {{root: {root}}}}}"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return work / "run" / "results" / "smoke"


def _chain_spec(results: Path) -> tuple[Path, dict]:
    path = results / "specs" / "vgg_criteria-thinet-r0.5-s0.json"
    return path, json.loads(path.read_text())


def test_every_written_spec_round_trips(written):
    paths = sorted((written / "specs").glob("*.json"))
    kinds = set()
    for path in paths:
        raw = json.loads(path.read_text())
        spec = load_spec(path)
        assert spec.to_dict() == raw, path.name
        assert JobSpec.from_dict(spec.to_dict(), where=str(path)) == spec
        kinds.add(spec.run.kind)
    assert kinds == {"base", "original", "chain", "grouped"}  # the smoke config's kinds, each read
    compare = written / "compare_layer.spec.json"
    assert CompareLayerSpec.from_file(compare).to_dict() == json.loads(compare.read_text())


def test_a_chain_spec_reads_into_typed_parts(written):
    path, raw = _chain_spec(written)
    spec = JobSpec.from_file(path)
    assert (spec.run.kind, spec.run.criterion, spec.run.keep_ratio, spec.run.seed) == ("chain", "thinet", 0.5, 0)
    assert spec.data.step_eval_images == raw["data"]["step_eval_images"] == 64
    assert spec.selection.samples_per_image == 4 and spec.mlflow.experiment == "thinet-smoke"
    assert spec.source is not None and spec.source.kind == "base" and spec.work_dir.startswith("results/smoke/work/")
    assert spec.run.finetune_plan().final.iterations == raw["run"]["finetune"]["final"]["iterations"]
    with pytest.raises(AttributeError):  # frozen
        spec.run.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize("change, key", [
    (lambda s: s["run"].pop("keep_ratio"), "'run.keep_ratio' is missing"),
    (lambda s: s.pop("mlflow"), "'mlflow' is missing"),
    (lambda s: s["data"].pop("timing_rounds"), "'data.timing_rounds' is missing"),
    (lambda s: s.pop("work_dir"), "'work_dir' is missing"),
    (lambda s: s["run"].update(keep_ratoi=s["run"].pop("keep_ratio")),
     "unknown key 'run.keep_ratoi' (did you mean 'run.keep_ratio'?)"),
    (lambda s: s["selection"].update(sampels_per_image=1), "unknown key 'selection.sampels_per_image'"),
    (lambda s: s["run"].update(groups=2), "unknown key 'run.groups'"),  # a grouped run's key on a chain
    (lambda s: s["run"].update(seed="0"), "key 'run.seed' must be an int, got '0'"),
    (lambda s: s["run"].update(kind="chian"), "key 'run.kind' is 'chian', not a kind of run"),
    (lambda s: s["run"]["finetune"]["per_layer"].update(iteratoins=1), "run.finetune.per_layer.iteratoins"),
    (lambda s: s["source"]["training"].pop("optimizer"), "'source.training.optimizer' is missing"),
])
def test_a_missing_misspelt_or_mistyped_key_is_one_error_naming_it_and_the_file(written, tmp_path, change, key):
    _, raw = _chain_spec(written)
    bad = copy.deepcopy(raw)
    change(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(SpecError) as caught:
        JobSpec.from_file(path)
    assert str(caught.value).startswith(f"{path}: ") and key in str(caught.value)


def test_the_chain_job_stops_at_a_misspelt_key_before_it_touches_a_model_or_data(written, tmp_path):
    _, raw = _chain_spec(written)
    bad = copy.deepcopy(raw)
    bad["data"]["step_eval_imges"] = bad["data"].pop("step_eval_images")
    bad["work_dir"] = str(tmp_path / "work")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(bad))
    out = tmp_path / "out" / "model.pt"
    # Neither the source model nor the selection file exists: a job that got past its spec fails on them.
    done = subprocess.run([sys.executable, str(ROOT / "workflow" / "scripts" / "prune_chain.py"), "--spec", str(spec),
                           "--selection", str(tmp_path / "no_selection.json"), "--source", str(tmp_path / "no_model.pt"),
                           "--out", str(out), "--eval-out", str(tmp_path / "out" / "eval.csv")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"thinet.experiment._spec.SpecError: {spec}: unknown key 'data.step_eval_imges' "
                    "(did you mean 'data.step_eval_images'?)")
    assert "no_model.pt" not in done.stderr and not (tmp_path / "work").exists() and not out.parent.exists()


def test_a_spec_built_in_code_gives_every_field_and_a_file_that_is_not_json_is_named(tmp_path):
    spec = JobSpec.from_dict(job_spec(base_run(), {"name": "fashion_mnist", "root": "fmnist"}))
    assert spec.run.to_dict() == base_run() and spec.dataset.image_size is None
    bare = RunSpec(id="r", kind="base", hash="h", dataset="d", model="m", seed=0, after=None,
                   training=spec.run.training)
    assert set(bare.to_dict()) == {f for f in RunSpec.__dataclass_fields__ if not f.startswith("_")}
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SpecError, match=f"{broken}: not a JSON spec"):
        load_spec(broken)
    with pytest.raises(SpecError, match="job spec .*missing.json' does not exist"):
        load_spec(tmp_path / "missing.json")
