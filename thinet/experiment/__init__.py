"""The experiment floor, above the engine: configs and the plan of runs they expand into, MLflow
tracking, the model builders of the paper's variants, the workflow's jobs (one function per
Snakemake rule; the scripts in workflow/scripts only read arguments), the §4.1 single-layer
comparison and the data-free architecture table. The benchmarks have a room of their own above
this floor, `thinet.bench`.

>>> from thinet.experiment import deep_merge
>>> deep_merge({"data": {"batch_size": 64}}, {"data": {"batch_size": 32}})
{'data': {'batch_size': 32}}
"""
from __future__ import annotations

from thinet.experiment._aggregate import RUNS_COLUMNS, reusable_runs, run_aggregate_job
from thinet.experiment._arch_table import (
    FORMATS, RECIPES, Recipe, arch_layer_times, arch_table, build_recipe, run_arch_table_job,
)
from thinet.experiment._arch_timing import PAPER_MS, TimingPlan, format_breakdown
from thinet.experiment._builders import build_run_model, check_gap_ready, gap_model, scratch_model
from thinet.experiment._chain_job import run_chain_job
from thinet.experiment._compare_layer import (
    compare_layer, compare_markdown, resolve_pair, run_compare_layer, run_compare_layer_job, write_compare_csv,
    write_compare_outputs,
)
from thinet.experiment._config import (
    ConfigError, Plan, build_plan, check_config, deep_merge, load_config, models_dir, read_yaml_files,
    validate_schema,
)
from thinet.experiment._data_job import run_prepare_data_job, run_selection_job, unreadable_count
from thinet.experiment._eval_job import run_eval_job
from thinet.experiment._grouped_job import run_grouped_job
from thinet.experiment._jobs import (
    device_label, job_args, job_parser, load_model, log, make_loader, resolve_device, save_model, start_job,
)
from thinet.experiment._metrics import aggregate_rows, base_row, write_rows
from thinet.experiment._spec import (  # a job's settings, read once and checked (the workflow's spec files)
    CompareLayerSpec, CompareSpec, DataSpec, DatasetSpec, JobSpec, RunSpec, SelectionJobSpec, SelectionSpec, SpecError,
    TrackingSpec, TrainingSpec, load_spec,
)
from thinet.experiment._tracking import Tracker, init_tracking, read_sidecar, tracking_uri, write_sidecar
# a tracking server lost and found (docs/tracking.md)
from thinet.experiment._offline import SyncReport
from thinet.experiment._server import TrackingAuthError, TrackingError, TrackingUnavailable, check_tracking_store
from thinet.experiment._tracking import offline_run_ids, sync_offline
from thinet.experiment._pretrain_job import run_convergence_check, run_pretrain_job
from thinet.experiment._train_job import run_train_job

__all__ = [
    "RUNS_COLUMNS", "job_parser", "reusable_runs", "run_aggregate_job",
    "ConfigError", "FORMATS", "PAPER_MS", "Plan", "RECIPES", "Recipe", "TimingPlan",
    "Tracker", "aggregate_rows", "arch_layer_times", "arch_table", "base_row", "build_plan", "build_recipe",
    "build_run_model", "check_config", "check_gap_ready", "compare_layer", "compare_markdown", "deep_merge",
    "device_label", "format_breakdown", "gap_model", "init_tracking", "job_args", "load_config", "load_model",
    "load_spec", "log", "make_loader", "models_dir", "read_sidecar", "read_yaml_files", "resolve_device",
    "resolve_pair", "run_arch_table_job", "run_chain_job", "run_compare_layer", "run_compare_layer_job",
    "run_convergence_check", "run_eval_job", "run_grouped_job", "run_prepare_data_job", "run_pretrain_job",
    "run_selection_job", "run_train_job", "save_model", "scratch_model", "start_job", "tracking_uri",
    "unreadable_count",
    "validate_schema",
    "SyncReport", "TrackingAuthError", "TrackingError", "TrackingUnavailable", "check_tracking_store",
    "offline_run_ids", "sync_offline",
    "write_compare_csv", "write_compare_outputs", "write_rows", "write_sidecar",
    "CompareLayerSpec", "CompareSpec", "DataSpec", "DatasetSpec", "JobSpec", "RunSpec", "SelectionJobSpec",
    "SelectionSpec", "SpecError", "TrackingSpec", "TrainingSpec",
]
