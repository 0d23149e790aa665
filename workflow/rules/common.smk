# Shared by every rule: the plan (runs expanded from the config), paths, and how jobs are launched.
import json
import re
import sys

from thinet.experiment import (
    CompareLayerSpec, JobSpec, SpecError, build_plan, check_config, models_dir, reusable_runs,
)

try:
    check_config(config)
    PLAN = build_plan(config)
except (ValueError, FileNotFoundError) as err:
    raise WorkflowError(f"invalid config: {err}") from None
# A criterion that cannot score a chain's layers (bn_scale without BatchNorm) is left out of the plan.
for _refusal in PLAN.refused:
    print(f"thinet: {_refusal.line()}", file=sys.stderr)
# Runs of an earlier complete run with the same settings: their rows are reused, they are not scheduled.
REUSE = config.get("reuse")
try:
    REUSED = set(reusable_runs(PLAN.runs, PLAN.evaluated, REUSE["runs"])) if REUSE else set()
except (ValueError, OSError) as err:
    raise WorkflowError(f"invalid config: config key 'reuse.runs': {err}") from None
if REUSE:
    print(f"thinet: reusing the rows of {len(REUSED)} of {len(PLAN.evaluated)} runs from {REUSE['metrics']}",
          file=sys.stderr)

NAME = PLAN.name
RESULTS = f"results/{NAME}"
SCRIPTS = os.path.join(workflow.basedir, "workflow", "scripts")
THREADS = config["threads"]
CHECKPOINT_MINUTES = config["checkpoint_minutes"]  # a job flag like threads, not in the spec: changing it reruns nothing
# Bases trained once and kept under models/<name>/, or the config's models_dir (rule pretrain_base).
MODELS_DIR = models_dir(config)
PRETRAINED_BASES = [name for name, base in config["bases"].items() if base.get("pretrain")]
# Scratch variants trained once and kept there too (rule pretrain_scratch).
KEPT_SCRATCH = [run_id for run_id, run in PLAN.runs.items() if run.get("kept")]
MLFLOW_MARKER = f"{RESULTS}/mlflow.json"


def _one_of(run_ids):
    """A wildcard pattern matching exactly these run ids (none: a pattern that matches nothing)."""
    return "|".join(re.escape(r) for r in sorted(run_ids)) or r"(?!x)x"


# Which rule writes eval/<run>.csv: a chain's own job (prune_chain), a grouped run's own job
# (grouped_model), else rule evaluate.
CHAIN_RUNS_PATTERN = _one_of(r for r, run in PLAN.runs.items() if run["kind"] == "chain")
GROUPED_RUNS_PATTERN = _one_of(r for r, run in PLAN.runs.items() if run["kind"] == "grouped")
OTHER_RUNS_PATTERN = _one_of(r for r, run in PLAN.runs.items() if run["kind"] not in ("chain", "grouped"))

GPUS = config["gpus"]  # per training job; slurm's `gpu` resource requests them

# More than one GPU per job: the job runs under torchrun, one process per GPU (rank 0 writes).
if GPUS > 1:
    LAUNCH = f"{sys.executable} -m torch.distributed.run --standalone --nproc_per_node={GPUS}"
else:
    LAUNCH = sys.executable


wildcard_constraints:
    run=r"[A-Za-z0-9_.\-]+",
    dataset=r"[A-Za-z0-9_]+",
    sel=r"[A-Za-z0-9_.\-]+",


def run_of(wildcards):
    return PLAN.runs[wildcards.run]


def run_dir(run_id):
    run = PLAN.runs[run_id]
    if run["kind"] == "original":  # evaluates its base model; no model of its own
        return run_dir(run["after"])
    return f"{RESULTS}/{run['kind']}/{run_id}"


def model_path(run_id):
    return f"{run_dir(run_id)}/model.pt"


def spec_path(run_id):
    return f"{RESULTS}/specs/{run_id}.json"


def data_marker(dataset):
    return f"{RESULTS}/data/{dataset}.json"


def work_dir(run_id):
    """Per-layer checkpoints of a chain: not a Snakemake output, so never deleted by it."""
    run = PLAN.runs[run_id]
    return f"{RESULTS}/work/{run_id}-{run['hash']}"


def job_spec(run_id):
    """Everything a job needs to know about its run, as written to results/<name>/specs/<run>.json."""
    run = PLAN.runs[run_id]
    dataset = run["dataset"]
    mlflow_cfg = dict(config["mlflow"])
    mlflow_cfg["experiment"] = mlflow_cfg.get("experiment") or f"thinet-{NAME}"
    spec = {"config": NAME, "run": run, "source": PLAN.runs.get(run.get("after") or ""),
            "dataset": {"name": dataset, **config["datasets"][dataset]}, "data": config["data"],
            "selection": config["selection"], "device": config["device"], "amp": config["amp"],
            "mlflow": mlflow_cfg, "output_dir": run_dir(run_id), "manifest": data_marker(dataset),
            "criteria_modules": config["criteria_modules"]}
    if run["kind"] == "chain":
        spec["work_dir"] = work_dir(run_id)
    if run["kind"] == "base":
        spec["model_args"] = run["model_args"]
    return spec


# Not under specs/ (one file per run there): the comparison is no run of the plan.
COMPARE_LAYER_SPEC = f"{RESULTS}/compare_layer.spec.json"


def compare_layer_spec():
    """The settings of the §4.1 comparison job, as written to results/<name>/specs/compare_layer.json."""
    base = PLAN.runs[PLAN.compare_layer["after"]]
    dataset = base["dataset"]
    return {"config": NAME, "compare_layer": PLAN.compare_layer, "model": base["model"],
            "dataset": {"name": dataset, **config["datasets"][dataset]}, "data": config["data"],
            "selection": config["selection"], "device": config["device"], "manifest": data_marker(dataset),
            "criteria_modules": config["criteria_modules"]}


def final_targets():
    targets = [f"{RESULTS}/metrics.csv"]
    if PLAN.compare_layer:
        targets.append(f"{RESULTS}/compare_layer.csv")
    return targets


def write_specs():
    """Write each run's settings to results/<name>/specs/<run>.json when they differ from the file.

    Done while the workflow is parsed (a rule per spec would cost a Snakemake process each): an
    unchanged spec keeps its mtime, a changed one is newer than the run's outputs, so Snakemake
    reruns exactly the runs whose settings changed (and what depends on them). Each spec is read back
    as the jobs read it (`JobSpec`, `CompareLayerSpec`) first, so a spec no job could read stops the
    workflow here, naming the key.
    """
    from thinet.runtime import atomic_write_json

    specs = {spec_path(run_id): job_spec(run_id) for run_id in PLAN.runs}
    if PLAN.compare_layer:
        specs[COMPARE_LAYER_SPEC] = compare_layer_spec()
    for path, spec in specs.items():
        spec = json.loads(json.dumps(spec))
        try:
            (CompareLayerSpec if path == COMPARE_LAYER_SPEC else JobSpec).from_dict(spec, where=path)
        except SpecError as err:
            raise WorkflowError(f"invalid job spec: {err}") from None
        try:
            same = json.loads(open(path).read()) == spec
        except (OSError, ValueError):
            same = False
        if not same:
            atomic_write_json(spec, path)


write_specs()
