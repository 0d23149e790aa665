"""The workflow's evaluation job: its metrics row, and the timing settings it takes from the config."""
from __future__ import annotations

import csv

import pytest
import torch

from job_specs import job_spec, original_run
from thinet.experiment import JobSpec
from thinet.experiment._eval_job import run_eval_job
from thinet.experiment._jobs import save_model
from thinet.models import create_model


@pytest.fixture
def spec(tmp_path) -> JobSpec:
    from thinet.data import make_fixture

    root = make_fixture("fashion_mnist", tmp_path / "fmnist", per_class=2, seed=0)
    data = {"eval_batch_size": 20, "final_eval_images": None, "timing_batch_size": 2, "timing_rounds": 2,
            "timing_min_run_time": 0.01}
    return JobSpec.from_dict(job_spec(original_run(), {"name": "fashion_mnist", "root": str(root)}, data=data))


def test_eval_job_times_with_the_configured_rounds_and_writes_one_row(tmp_path, spec, monkeypatch):
    import thinet.experiment._eval_job as job

    seen = {}
    real = job.time_forward_backward

    def spy(model, size, **kwargs):
        seen.update(kwargs)
        return real(model, size, **kwargs)

    monkeypatch.setattr(job, "time_forward_backward", spy)
    torch.manual_seed(0)
    model_file = tmp_path / "model.pt"
    save_model(create_model("vgg16_small", num_classes=10, width_mult=0.0625, batch_norm=False, head="fc"),
               model_file)
    out = tmp_path / "eval.csv"
    run_eval_job(spec, model_file, tmp_path / "no_run.json", out)
    assert (seen["batch_size"], seen["rounds"], seen["min_run_time"]) == (2, 2, 0.01)
    (row,) = list(csv.DictReader(out.open()))
    assert row["phase"] == "base" and int(row["eval_images"]) == 20 and float(row["forward_ms"]) > 0
