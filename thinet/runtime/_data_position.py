"""Where a training loop stands in its data, so a run stopped mid-epoch resumes on the same batch.

An epoch's batch order is drawn from the loader's shuffling generator (or torch's global RNG)
at the epoch's start. `DataPosition` records those RNG states and the number of batches
consumed; a resumed run restores the start states, redraws the same order and skips the
consumed batches by index, without reading their images.

>>> import torch
>>> from torch.utils.data import DataLoader
>>> loader = DataLoader(list(range(8)), batch_size=2, shuffle=True, generator=torch.Generator().manual_seed(0))
>>> first = DataPosition(loader)
>>> from itertools import islice
>>> seen = [batch.tolist() for batch in islice(first.epoch_batches(), 2)]  # stopped after 2 batches
>>> first.state_dict()["batch"]
2
>>> rest = [batch.tolist() for batch in DataPosition(loader, first.state_dict()).epoch_batches()]
>>> sorted(sum(seen + rest, []))  # the resumed epoch hands out exactly the batches not yet seen
[0, 1, 2, 3, 4, 5, 6, 7]

With `num_workers > 0` the batch order and the main process's RNG resume exactly, but each
worker's augmentation stream restarts with the resumed epoch (workers are seeded per epoch),
so crops after the resume point differ from an uninterrupted run's.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from thinet.runtime._seeding import rng_state, set_rng_state


class _Batches(torch.utils.data.Sampler):
    """A fixed list of index batches, as a DataLoader's `batch_sampler`."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class DataPosition:
    """The data-order position of a training loop: the epoch's starting RNG states and batches consumed.

    `loader` is a DataLoader or any re-iterable sequence of batches (a list).
    """

    def __init__(self, loader: Iterable, state: dict[str, Any] | None = None) -> None:
        self.loader = loader
        self.generator = getattr(loader, "generator", None) if isinstance(loader, DataLoader) else None
        state = state or {}
        self.batch = int(state.get("batch", 0))
        self.epoch_start: dict[str, Any] | None = state.get("epoch_start") if self.batch else None
        if state.get("generator") is not None and self.generator is not None:
            self.generator.set_state(state["generator"])

    def state_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "epoch_start": self.epoch_start,
                "generator": None if self.generator is None else self.generator.get_state()}

    def epoch_batches(self) -> Iterator[Any]:
        """This epoch's batches from the current position; counts each one handed out."""
        if not isinstance(self.loader, DataLoader):
            batches = list(self.loader)[self.batch:]
            for item in batches:
                self.batch += 1
                yield item
            self._end_epoch()
            return
        resume_rng = rng_state() if self.epoch_start is not None else None
        if self.epoch_start is None:
            self.epoch_start = {"torch": torch.get_rng_state(),
                                "generator": None if self.generator is None else self.generator.get_state()}
        else:  # replay the epoch start's draws, then go on from the checkpoint's RNG state
            torch.set_rng_state(self.epoch_start["torch"])
            if self.generator is not None:
                self.generator.set_state(self.epoch_start["generator"])
        order = [list(b) for b in self.loader.batch_sampler]
        batches = iter(self._loader_over(order[self.batch:]))
        if resume_rng is not None:
            set_rng_state(resume_rng)
        for item in batches:
            self.batch += 1
            yield item
        self._end_epoch()

    def _end_epoch(self) -> None:
        self.batch, self.epoch_start = 0, None

    def _loader_over(self, batches: list[list[int]]) -> DataLoader:
        src = self.loader
        extra = {"prefetch_factor": src.prefetch_factor} if src.num_workers else {}
        return DataLoader(src.dataset, batch_sampler=_Batches(batches), num_workers=src.num_workers,
                          collate_fn=src.collate_fn, pin_memory=src.pin_memory, timeout=src.timeout,
                          worker_init_fn=src.worker_init_fn, generator=self.generator,
                          multiprocessing_context=src.multiprocessing_context, **extra)
