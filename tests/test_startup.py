"""Start-up (issue 30): what listing criteria, the command's help and a workflow job import before their
first useful work. Each check runs in a fresh interpreter and reads `sys.modules`, so a heavy import
that creeps back in (at module level of any module on the path) fails here, whatever the machine's speed.
`thinet bench startup` measures the seconds."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Never needed to list names or to print help; torch._dynamo is what `import torchvision` costs (its
# torchvision.ops imports it), torch.utils.cpp_extension what warns "No CUDA runtime is found".
HEAVY = ("torchvision", "timm", "torch_pruning", "mlflow", "pandas", "scipy", "matplotlib", "torch._dynamo",
         "torch.utils.cpp_extension", "torch.utils.benchmark", "google.protobuf")


def _imported(code: str, modules: tuple[str, ...]) -> list[str]:
    """Those of `modules` that are in sys.modules after `code` ran in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_listing_criteria_imports_nothing_heavy():
    code = ("import thinet.criteria\n"
            "names = thinet.criteria.available_criteria(); thinet.criteria.on_demand_criteria()\n"
            "assert 'thinet' in names and 'weight_sum' in names, names")
    assert _imported(code, HEAVY) == []


def test_thinet_help_imports_nothing_heavy_not_even_torch():
    # `thinet --help` builds every sub-command's parser: each add_arguments stays import-light.
    code = ("import contextlib, io, thinet.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    thinet.cli.main(['--help'])")
    assert _imported(code, (*HEAVY, "torch", "numpy")) == []


def test_the_model_registry_imports_torchvision_only_when_a_name_is_looked_up():
    code = "import thinet.models"
    assert _imported(code, ("torchvision",)) == []
    code = ("import thinet.models\n"
            "assert 'vgg16_small' in thinet.models.available_models()\n"
            "assert thinet.models.VGGGap.__module__ == 'thinet.models.vgg'")
    assert _imported(code, ("torchvision",)) == ["torchvision"]


def test_a_chain_job_imports_neither_mlflow_nor_the_report_nor_the_timer_before_it_runs():
    # The job script's own imports: MLflow comes with the tracker it opens, the timer (and with it
    # torch.utils.cpp_extension) with the evaluation that times the final model.
    code = ("from thinet.experiment import job_args, load_spec, run_chain_job, run_eval_job\n"
            "from thinet.runtime import dist_info")
    assert _imported(code, ("mlflow", "pandas", "scipy", "matplotlib", "torch.utils.cpp_extension",
                            "torch.utils.benchmark", "thinet.report", "thinet.bench")) == []


@pytest.mark.slow
def test_the_startup_bench_stops_the_real_chain_job_at_its_first_training_step(tmp_path):
    from thinet.bench._startup import FIRST_STEP_EXIT, prepare_chain_job

    argv = prepare_chain_job(tmp_path)(False, 0)
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == FIRST_STEP_EXIT, done.stderr
    work = tmp_path / "off-0" / "work"
    # Layer 0 was selected, cut and evaluated; its fine-tuning had begun; nothing after it ran.
    assert (work / "eval_000_pruned.json").exists() and not (work / "eval_000_finetuned.json").exists()
    assert "No CUDA runtime is found" not in done.stderr
