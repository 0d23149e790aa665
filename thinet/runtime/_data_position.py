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

With `num_workers > 0` the resume is exact too: a worker seeds every RNG from the epoch's seed and
the batch's number before reading a batch (`_PerBatchSeeded`), so a batch's augmentation does not
depend on which worker reads it, how many workers there are, or where the run resumed. Workers
ignore SIGTERM/SIGINT: a signal to the whole process group (SLURM's preemption, `scancel`, Ctrl-C)
is the main process's to handle (it saves, then ends); a worker killed by it first would make the
main process raise "DataLoader worker ... is killed by signal" before it could save.
"""
from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from thinet.runtime._interruption import SIGNALS
from thinet.runtime._seeding import derive_seed, rng_state, seed_everything, set_rng_state


class _NumberedBatch(list):
    """The indices of one batch and its number in the epoch (pickled along to the worker)."""

    def __init__(self, indices: list[int], number: int) -> None:
        super().__init__(indices)
        self.number = number


class _Batches(torch.utils.data.Sampler):
    """A fixed list of index batches, as a DataLoader's `batch_sampler`; the first is batch `first` of its epoch."""

    def __init__(self, batches: list[list[int]], first: int = 0) -> None:
        self.batches = [_NumberedBatch(b, first + i) for i, b in enumerate(batches)]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _PerBatchSeeded(Dataset):
    """`dataset`, read in a worker: before each batch, every RNG is seeded from the epoch and the batch number.

    A worker's own stream (DataLoader's base seed + worker id) would make a batch's random crops depend
    on which worker read it after how many others, which a resume mid-epoch changes. The epoch's base
    seed is drawn in the main process from the RNG states the checkpoint restores.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]

    def __getitems__(self, batch: _NumberedBatch) -> list[Any]:
        info = get_worker_info()
        if info is not None:
            seed_everything(derive_seed(info.seed - info.id, "batch", batch.number))
        items = getattr(self.dataset, "__getitems__", None)
        return items(list(batch)) if items else [self.dataset[i] for i in batch]


def _ignore_stop_signals(worker_init_fn: Callable[[int], None] | None, worker_id: int) -> None:
    """A worker's start: leave SIGTERM/SIGINT to the main process (which saves), then the user's init."""
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)  # also drops one that arrived while they were blocked
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    if worker_init_fn is not None:
        worker_init_fn(worker_id)


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Block SIGTERM/SIGINT while workers start, so none dies of one before it can ignore them.

    A forked worker inherits the mask; the main process gets a signal sent meanwhile when unblocked.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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
        with _stop_signals_blocked():
            batches = iter(self._loader_over(order[self.batch:], first=self.batch))
        if resume_rng is not None:
            set_rng_state(resume_rng)
        for item in batches:
            self.batch += 1
            yield item
        self._end_epoch()

    def _end_epoch(self) -> None:
        self.batch, self.epoch_start = 0, None

    def _loader_over(self, batches: list[list[int]], first: int) -> DataLoader:
        src = self.loader
        if not src.num_workers:  # in-process draws come from the global RNG, which the checkpoint restores
            return DataLoader(src.dataset, batch_sampler=_Batches(batches, first), collate_fn=src.collate_fn,
                              pin_memory=src.pin_memory, generator=self.generator)
        return DataLoader(_PerBatchSeeded(src.dataset), batch_sampler=_Batches(batches, first),
                          num_workers=src.num_workers, collate_fn=src.collate_fn, pin_memory=src.pin_memory,
                          timeout=src.timeout, worker_init_fn=partial(_ignore_stop_signals, src.worker_init_fn),
                          generator=self.generator, multiprocessing_context=src.multiprocessing_context,
                          prefetch_factor=src.prefetch_factor)
