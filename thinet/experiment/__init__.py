"""The experiment floor, above the engine: configs and the plan of runs they expand into, MLflow
tracking, the model builders of the paper's variants, the workflow's jobs (one function per
Snakemake rule; the scripts in workflow/scripts only read arguments), the §4.1 single-layer
comparison, the data-free architecture table, and the benchmarks.

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
from thinet.experiment._bench_models import MODELS, models_markdown, prune_random, run_models_bench, samples_needed
from thinet.experiment._bench_refit import (
    REFIT_FACTORS, REFIT_MODELS, refit_markdown, refit_summary, refit_units_markdown, run_refit_bench,
)
from thinet.experiment._bench_sampling import run_sampling_bench
from thinet.experiment._bench_selection import print_results, run_selection_bench
from thinet.experiment._bench_train import TARGET_RATIO, run_train_bench
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
    device_label, job_args, job_parser, load_model, load_spec, log, make_loader, resolve_device, save_model, start_job,
)
from thinet.experiment._metrics import aggregate_rows, base_row, write_rows
from thinet.experiment._tracking import Tracker, init_tracking, read_sidecar, tracking_uri, write_sidecar
from thinet.experiment._pretrain_job import run_convergence_check, run_pretrain_job
from thinet.experiment._train_job import run_train_job

__all__ = [
    "RUNS_COLUMNS", "job_parser", "reusable_runs", "run_aggregate_job",
    "ConfigError", "FORMATS", "MODELS", "PAPER_MS", "Plan", "RECIPES", "REFIT_FACTORS", "REFIT_MODELS", "Recipe",
    "TARGET_RATIO", "TimingPlan",
    "Tracker", "aggregate_rows", "arch_layer_times", "arch_table", "base_row", "build_plan", "build_recipe",
    "build_run_model", "check_config", "check_gap_ready", "compare_layer", "compare_markdown", "deep_merge",
    "device_label", "format_breakdown", "gap_model", "init_tracking", "job_args", "load_config", "load_model",
    "load_spec", "log", "make_loader", "models_dir", "models_markdown", "print_results", "prune_random", "read_sidecar",
    "read_yaml_files", "refit_markdown", "refit_summary", "refit_units_markdown", "resolve_device", "resolve_pair", "run_arch_table_job", "run_chain_job", "run_compare_layer",
    "run_compare_layer_job", "run_convergence_check", "run_eval_job", "run_grouped_job", "run_models_bench", "run_prepare_data_job",
    "run_pretrain_job", "run_refit_bench",
    "run_sampling_bench", "run_selection_bench", "run_selection_job", "run_train_bench", "run_train_job",
    "samples_needed", "save_model", "scratch_model", "start_job", "tracking_uri", "unreadable_count",
    "validate_schema",
    "write_compare_csv", "write_compare_outputs", "write_rows", "write_sidecar",
]
