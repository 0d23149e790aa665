"""The cluster profiles fit the workflow: every rule that runs as a SLURM job has its resources in
profiles/slurm and in the small-node override profiles/slurm-ci, the CI override queries job states
with squeue (no accounting database), and the workflow profile (profiles/default, which Snakemake
applies over any --profile, key by key) leaves the cluster keys alone.

The real cluster run is .ci/check_slurm (a one-node SLURM, the smoke config through it, a requeue).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
FMNIST = Path("/usr/share/datasets/fashion-mnist")
REQUESTS = ("mem_mb", "runtime", "cpus_per_task")
# Keys whose value in profiles/default would replace a cluster profile's (Snakemake's workflow profile
# overrides --profile per top-level key).
CLUSTER_KEYS = {"executor", "jobs", "default-resources", "set-resources", "set-threads", "keep-going",
                "latency-wait", "retries", "slurm-requeue", "slurm-status-command"}


def profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


def local_rules() -> set[str]:
    """Rules marked `localrule: True` in workflow/rules/ (they run on the submit host, never as a job)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    blocks = re.split(r"^(?=rule \w+:)", text, flags=re.MULTILINE)
    return {m.group(1) for b in blocks if (m := re.match(r"rule (\w+):", b)) and re.search(r"^\s+localrule: True", b, re.MULTILINE)}


@pytest.fixture(scope="module")
def job_rules(tmp_path_factory) -> set[str]:
    """Every rule of the workflow (the smoke config defines them all) but `all` and the local rules."""
    if not SNAKEMAKE.exists() or not FMNIST.exists():
        pytest.skip("needs snakemake beside this python and Fashion-MNIST (the smoke config's dataset)")
    workdir = tmp_path_factory.mktemp("workdir")  # parsing writes the run specs: not into the repository
    out = subprocess.run([str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--list-rules",
                          "--configfile", str(ROOT / "config" / "smoke.yaml")],
                         check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    assert out.returncode == 0, out.stderr[-3000:]
    rules = {line.split()[0] for line in out.stdout.splitlines() if line and not line[0].isspace()}  # then a docstring
    assert {"pretrain_base", "pretrain_scratch", "check_base_converged", "prune_chain"} <= rules, rules
    assert local_rules() == {"mlflow_store", "aggregate_metrics"}
    return rules - {"all"} - local_rules()


@pytest.mark.parametrize("name", ["slurm", "slurm-ci"])
def test_every_job_rule_has_memory_time_and_cpus(job_rules, name):
    resources = profile(name)["set-resources"]
    missing = {rule: [r for r in REQUESTS if r not in resources.get(rule, {})] for rule in sorted(job_rules)}
    assert not {k: v for k, v in missing.items() if v}, f"profiles/{name}: rules without {REQUESTS}: {missing}"
    assert not set(resources) - job_rules, f"profiles/{name} names rules the workflow does not have"


def test_the_ci_override_fits_a_two_cpu_node_and_uses_squeue():
    from snakemake_executor_plugin_slurm import ExecutorSettings

    ci = profile("slurm-ci")
    assert all(r["cpus_per_task"] <= 2 and r["mem_mb"] <= 4000 for r in ci["set-resources"].values())
    settings = {f.name for f in fields(ExecutorSettings)}
    for key in (k for k in ci if k.startswith("slurm-")):  # the plugin's settings, as the profile spells them
        assert key.removeprefix("slurm-").replace("-", "_") in settings, key
    assert ci["slurm-status-command"] == "squeue"
    # the plugin falls back to sacct unless MinJobAge >= 3 x this first wait (.ci/slurm sets MinJobAge=300)
    assert 3 * ci["slurm-init-seconds-before-status-checks"] <= 300


def test_threads_come_from_the_config_not_the_cluster_profile():
    # The same config gives the same numbers locally and on the cluster only with the same torch threads.
    assert "set-threads" not in profile("slurm") and "set-threads" not in profile("slurm-ci")


def test_the_workflow_profile_leaves_the_cluster_keys_alone():
    assert not CLUSTER_KEYS & set(profile("default"))
