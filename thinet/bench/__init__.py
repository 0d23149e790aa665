"""The benchmarks, a room of their own above the experiment floor: each measures its candidates side by
side in one run and reports ratios, so a uniformly slower machine changes no verdict. The `thinet bench`
command prints them.

- `run_selection_bench`: the Gram-matrix greedy against X̂ᵀX̂, `thinet_forward` and the literal
  Algorithm 1 (`_selection.py`);
- `run_sampling_bench`: `collect_samples` against a full VGG-16 forward pass (`_sampling.py`);
- `run_train_bench`: the suite's training loop against a bare SGD loop (`_train.py`);
- `run_models_bench`: ThiNet with `--strategy auto` on today's CNNs, the model table of the docs
  (`_models.py`);
- `run_refit_bench`: ŵ against no rescaling at several sample counts, the measurement behind
  `thinet.sampling`'s sample-count rule (`_refit.py`);
- `run_startup_bench`: `thinet criteria`, `thinet --help` and a workflow job's start-up as multiples of
  `import torch` (`_startup.py`).

>>> from thinet.bench import TARGET_RATIO
>>> TARGET_RATIO
0.9
"""
from __future__ import annotations

from thinet.bench._models import MODELS, models_markdown, prune_random, run_models_bench, samples_needed
from thinet.bench._refit import (
    REFIT_FACTORS, REFIT_MODELS, refit_markdown, refit_summary, refit_units_markdown, run_refit_bench,
)
from thinet.bench._sampling import run_sampling_bench
from thinet.bench._selection import print_results, run_selection_bench
from thinet.bench._startup import COMMAND_TARGET, JOB_TARGET, run_startup_bench, startup_markdown
from thinet.bench._train import TARGET_RATIO, run_train_bench

__all__ = [
    "COMMAND_TARGET", "JOB_TARGET", "MODELS", "REFIT_FACTORS", "REFIT_MODELS", "TARGET_RATIO", "models_markdown",
    "print_results", "prune_random", "refit_markdown", "refit_summary", "refit_units_markdown", "run_models_bench",
    "run_refit_bench", "run_sampling_bench", "run_selection_bench", "run_startup_bench", "run_train_bench",
    "samples_needed", "startup_markdown",
]
