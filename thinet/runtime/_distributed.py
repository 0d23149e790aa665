"""Data-parallel training under `torchrun`: one process per GPU, rank 0 writes.

Without `WORLD_SIZE > 1` in the environment everything here is a no-op, so
the same training code runs single-process.

    $ torchrun --nproc_per_node=4 -m thinet train --model vgg16_small --dataset fashion_mnist
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))


def setup_distributed(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group (once) and return this rank's device."""
    if not info.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def wrap_distributed(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `model` when the job has several processes."""
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard_loader(loader, info: DistInfo, seed: int):
    """A copy of a DataLoader whose sampler gives each rank its own share of the data.

    The loader's batch size is the global batch (the paper's 128 across its GPUs): each of the
    `world_size` processes takes `batch_size / world_size` images per step, so one optimizer step
    sees the same number of images whatever the number of GPUs.
    """
    if not info.enabled:
        return loader
    if not isinstance(loader, DataLoader):
        raise ValueError(f"distributed training needs a torch DataLoader, got {type(loader).__name__}")
    if loader.batch_size is None or loader.batch_size % info.world_size:
        raise ValueError(f"batch_size {loader.batch_size} is the global batch and must divide evenly over the "
                         f"{info.world_size} processes (e.g. 128 over 4 GPUs = 32 each); change data.batch_size "
                         "or gpus")
    sampler = DistributedSampler(loader.dataset, num_replicas=info.world_size, rank=info.rank,
                                 shuffle=not isinstance(loader.sampler, torch.utils.data.SequentialSampler),
                                 seed=seed, drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size // info.world_size, sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      persistent_workers=loader.persistent_workers if loader.num_workers else False)


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
