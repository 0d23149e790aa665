"""Bases kept by rule pretrain_base: where they live, and the refusal of a file that is not the config's."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from job_specs import base_run, job_spec
from thinet.experiment import JobSpec, RunSpec, run_pretrain_job
from thinet.experiment._config import build_plan
from thinet.experiment._pretrain_job import check_pretrained, record_path, sha256_of


def _base_run() -> RunSpec:
    return RunSpec.from_dict(base_run(pretrain={"iterations": 2, "lr": 0.01}))


def _keep(tmp_path, run: RunSpec) -> RunSpec:
    path = tmp_path / "models" / "vgg.pt"
    path.parent.mkdir(parents=True)
    torch.save({"w": torch.ones(3)}, path)
    record = {k: run.to_dict()[k] for k in ("model", "model_args", "dataset", "seed", "pretrain", "training")}
    record_path(path).write_text(json.dumps({**record, "top1": 90.0, "sha256": sha256_of(path)}))
    return replace(run, checkpoint=str(path))


def test_a_kept_base_matching_its_record_passes(tmp_path):
    check_pretrained(_keep(tmp_path, _base_run()))


def test_a_changed_schedule_asks_for_forcerun(tmp_path):
    run = _keep(tmp_path, _base_run())
    changed = replace(run, pretrain={**run.pretrain, "iterations": 3})
    with pytest.raises(ValueError, match=r"trained with pretrain=.*'bases.vgg'.*--forcerun pretrain_base"):
        check_pretrained(changed)


def test_a_damaged_file_fails_its_checksum(tmp_path):
    run = _keep(tmp_path, _base_run())
    torch.save({"w": torch.zeros(3)}, run.checkpoint)
    with pytest.raises(ValueError, match="sha256 differs"):
        check_pretrained(run)


def test_a_missing_record_is_named(tmp_path):
    run = _keep(tmp_path, _base_run())
    record_path(run.checkpoint).unlink()
    with pytest.raises(ValueError, match="no record"):
        check_pretrained(run)


def test_the_default_config_starts_from_its_kept_bases():
    from pathlib import Path

    from thinet.experiment import load_config

    root = Path(__file__).resolve().parents[1]
    config = load_config([root / "config" / "default.yaml"], root / "workflow" / "schemas" / "config.schema.yaml")
    plan = build_plan(config)
    for name in ("vgg", "resnet"):
        run = plan.runs[f"base-{name}"]
        assert run["checkpoint"] == f"models/default/{name}.pt" and run["pretrain"]["lr_schedule"] == "step"
        assert (root / run["checkpoint"]).exists(), f"{run['checkpoint']} is not committed"
        check_pretrained(RunSpec.from_dict(run))  # the committed file is the one the config describes, checksum included
    # Train from scratch gets the base's own budget (Table 1)
    scratch = next(r for r in plan.runs.values() if r["kind"] == "scratch")
    assert scratch["train"] == plan.runs["base-vgg"]["pretrain"]
    # ... and is kept like the bases (rule pretrain_scratch), so the default run does not train it again
    assert scratch["kept"] and (root / scratch["checkpoint"]).exists(), f"{scratch['checkpoint']} is not committed"
    check_pretrained(RunSpec.from_dict(scratch))


@pytest.fixture
def fashion_spec(tmp_path) -> JobSpec:
    from thinet.data import make_fixture

    root = make_fixture("fashion_mnist", tmp_path / "fmnist", per_class=2, seed=0)
    run = base_run(pretrain={"iterations": 2, "lr": 0.01})
    return JobSpec.from_dict(job_spec(run, {"name": "fashion_mnist", "root": str(root)}))


def test_pretrain_job_writes_weights_and_record(tmp_path, fashion_spec):
    out = tmp_path / "models" / "vgg.pt"
    out.parent.mkdir()
    run_pretrain_job(fashion_spec, out, checkpoint_minutes=None)
    record = json.loads(record_path(out).read_text())
    assert record["sha256"] == sha256_of(out) and 0 <= record["top1"] <= 100
    assert set(torch.load(out, weights_only=True)) >= {"features.0.weight", "classifier.6.weight"}
    check_pretrained(replace(fashion_spec.run, checkpoint=str(out)))


def test_convergence_check_trains_a_copy_and_reports_the_gain(tmp_path, fashion_spec):
    from thinet.experiment import run_convergence_check

    kept = tmp_path / "models" / "vgg.pt"
    kept.parent.mkdir()
    run_pretrain_job(fashion_spec, kept, checkpoint_minutes=None)
    before_bytes = kept.read_bytes()
    out = tmp_path / "bases" / "vgg_converged.json"
    out.parent.mkdir()
    report = run_convergence_check(fashion_spec, kept, out, checkpoint_minutes=None)
    assert json.loads(out.read_text()) == report
    assert report["top1_before"] == json.loads(record_path(kept).read_text())["top1"]  # the kept weights, unchanged
    assert report["gain_pp"] == round(report["top1_after"] - report["top1_before"], 2)
    assert kept.read_bytes() == before_bytes and not list(out.parent.glob("*.train_state.pt"))


def test_convergence_check_refuses_a_base_that_is_not_the_configs(tmp_path, fashion_spec):
    from thinet.experiment import run_convergence_check

    kept = tmp_path / "models" / "vgg.pt"
    kept.parent.mkdir()
    run_pretrain_job(fashion_spec, kept, checkpoint_minutes=None)
    run = fashion_spec.run
    changed = replace(fashion_spec, run=replace(run, pretrain={**run.pretrain, "iterations": 3}))
    with pytest.raises(ValueError, match="--forcerun pretrain_base"):
        run_convergence_check(changed, kept, tmp_path / "out.json", checkpoint_minutes=None)
    assert not (tmp_path / "out.json").exists()


def _scratch_run(tmp_path) -> RunSpec:
    return RunSpec.from_dict({
        "id": "table1-scratch", "kind": "scratch", "experiment": "table1", "base": "vgg", "after": "table1-conv",
        "model": "vgg16_small", "model_args": {"width_mult": 0.0625, "batch_norm": False, "head": "fc"},
        "gap": False, "dataset": "fashion_mnist", "strategy": "vgg16_conv", "keep_ratio": 0.5, "seed": 0,
        "train": {"iterations": 2, "lr": 0.01}, "training": base_run()["training"], "kept": True,
        "checkpoint": str(tmp_path / "models" / "table1-scratch.pt"), "variant": "Train from scratch",
        "criterion": "", "source_hash": "89abcdef", "hash": "01234567"})


def _chain_model(data, keep_ratio: float) -> torch.nn.Module:
    """A stand-in for the `like` chain's output: the base pruned by the real surgery, the last channels
    kept instead of the first."""
    from thinet.models import create_model, input_size_of
    from thinet.strategies import get_strategy
    from thinet.surgery import prune_pair
    from thinet.types import Selection, num_kept

    model = create_model("vgg16_small", num_classes=data.num_classes, width_mult=0.0625, batch_norm=False,
                         head="fc")
    x = torch.zeros(1, *input_size_of(model))
    for step in get_strategy("vgg16_conv")(model, keep_ratio, x):
        channels = model.get_submodule(step.pair.producer).out_channels
        kept = num_kept(channels, keep_ratio)
        prune_pair(model, step.pair, Selection.from_keep(torch.arange(channels - kept, channels), channels),
                   example_inputs=x)
    return model


def test_a_kept_scratch_model_is_trained_once_and_loaded_into_the_chains_architecture(tmp_path, fashion_spec):
    from thinet.experiment._builders import build_run_model
    from thinet.experiment._jobs import spec_dataset

    run = _scratch_run(tmp_path)
    Path(run.checkpoint).parent.mkdir()
    spec = replace(fashion_spec, run=run)
    run_pretrain_job(spec, run.checkpoint, checkpoint_minutes=None)
    record = check_pretrained(run)
    assert record["train"] == run.train and record["strategy"] == "vgg16_conv" and 0 <= record["top1"] <= 100
    data = spec_dataset(spec, "train")
    model = build_run_model(run, data, _chain_model(data, 0.5))
    kept = torch.load(run.checkpoint, weights_only=True)
    assert all(torch.equal(v, kept[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match=r"table1-scratch.pt does not fit the architecture of run 'table1-conv'"):
        build_run_model(run, data, _chain_model(data, 0.25))
    changed = replace(run, keep_ratio=0.25)
    with pytest.raises(ValueError, match=r"keep_ratio=0.5.*'experiments.table1 \(variant table1-scratch\)'.*"
                                         r"--forcerun pretrain_scratch"):
        check_pretrained(changed)
