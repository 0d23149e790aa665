"""The runtime floor: what every job needs besides the pruning algorithm itself.

Training and fine-tuning (`train`, `Schedule`; resumable mid-epoch through `DataPosition` and
`CheckpointTrigger`), evaluation (`evaluate`), timing
(`time_models`, `time_forward_backward`, `layer_type_times`), counting (`count_params`, `count_flops`), checkpoints and
atomic writes, seeding, data-parallel helpers (`torchrun`), and the bookkeeping of a
pruning chain's work folder. It imports nothing above `thinet.models` and `thinet.data`.

>>> from thinet.runtime import Schedule, count_params
>>> Schedule(epochs=1, lr=0.1).total_steps(steps_per_epoch=10)
10
>>> import torch; count_params(torch.nn.Linear(3, 2))
8
"""
from __future__ import annotations

from thinet.runtime._batchnorm import has_batchnorm, reestimate_batchnorm
from thinet.runtime._atomic import atomic_path, write_bytes_atomic, write_text_atomic
from thinet.runtime._chain_state import check_or_write_manifest, finetune_path, latest_step, step_path
from thinet.runtime._checkpoint import atomic_save, atomic_write_json, load_checkpoint
from thinet.runtime._counting import count_flops, count_params, count_weights, model_counts
from thinet.runtime._data_position import DataPosition
from thinet.runtime._distributed import (
    DistInfo, barrier, dist_info, setup_distributed, shard_loader, wrap_distributed,
)
from thinet.runtime._evaluation import evaluate, model_device
from thinet.runtime._interruption import DEFAULT_CHECKPOINT_MINUTES, CheckpointTrigger
from thinet.runtime._schedule import Schedule
from thinet.runtime._seeding import derive_seed, rng_state, seed_everything, set_rng_state
from thinet.runtime._layer_time import LAYER_TYPES, layer_type_times
from thinet.runtime._timing import time_forward_backward, time_models
from thinet.runtime._optimizer import MOMENTUM, WEIGHT_DECAY, OptimizerSettings, make_optimizer
from thinet.runtime._training import LogFn, finetune, train

__all__ = [
    "DEFAULT_CHECKPOINT_MINUTES", "CheckpointTrigger", "DataPosition", "LAYER_TYPES",
    "DistInfo", "LogFn", "MOMENTUM", "OptimizerSettings", "Schedule", "WEIGHT_DECAY", "atomic_path", "atomic_save",
    "atomic_write_json", "barrier", "check_or_write_manifest", "count_flops", "count_params", "count_weights",
    "derive_seed", "dist_info", "evaluate", "finetune", "finetune_path", "has_batchnorm", "latest_step",
    "layer_type_times", "load_checkpoint", "make_optimizer", "model_counts", "model_device", "reestimate_batchnorm",
    "rng_state",
    "seed_everything", "set_rng_state", "setup_distributed", "shard_loader", "step_path", "time_forward_backward",
    "time_models", "train", "wrap_distributed", "write_bytes_atomic", "write_text_atomic",
]
