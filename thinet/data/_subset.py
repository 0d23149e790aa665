"""The selection subset: N random training images per class (the paper's 10 per class, §4.2)."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset


def targets_of(dataset: Dataset) -> torch.Tensor:
    """Labels of every item as a LongTensor, read from `.targets` (through Subsets) without decoding images."""
    if isinstance(dataset, Subset):
        return targets_of(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.long)]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise ValueError(f"{type(dataset).__name__} has no .targets; build it with thinet.data.get_dataset")
    return torch.as_tensor(targets, dtype=torch.long)


def _innermost(dataset: Dataset) -> Dataset:
    """The dataset under any Subset wrappers: it carries num_classes, classes and augmented."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def selection_subset(dataset: Dataset, per_class: int = 10, seed: int = 0, *, allow_fewer: bool = False) -> Subset:
    """`per_class` random images of every class, the same ones for the same seed.

    Give it the training split built with the evaluation transform (no
    augmentation). A class with fewer than `per_class` images is an error
    naming the class, unless `allow_fewer=True` (then all its images are taken).
    Indices are grouped by class, in class order.

    >>> from thinet.data import get_dataset
    >>> train = get_dataset("fashion_mnist", "train")  # doctest: +SKIP
    >>> subset = selection_subset(train, per_class=10, seed=0)  # doctest: +SKIP
    >>> len(subset)  # doctest: +SKIP
    100
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    base = _innermost(dataset)
    if getattr(base, "augmented", False):
        raise ValueError("selection_subset needs the dataset built with the evaluation transform "
                         "(get_dataset(..., train_transform=False)); this one augments its images")
    targets = targets_of(dataset)
    num_classes = int(getattr(base, "num_classes", int(targets.max()) + 1 if targets.numel() else 0))
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(f"labels span {int(targets.min())}..{int(targets.max())}, outside 0..{num_classes - 1}")
    counts = torch.bincount(targets, minlength=num_classes)
    classes = getattr(base, "classes", None)
    short = [c for c in range(num_classes) if int(counts[c]) < per_class]
    if short and not allow_fewer:
        def named(c: int) -> str:
            return f"{c} ({classes[c]!r})" if classes else str(c)

        more = f"; {len(short) - 1} more classes are short, e.g. {named(short[1])}" if len(short) > 1 else ""
        raise ValueError(f"selection_subset(per_class={per_class}): class {named(short[0])} has only "
                         f"{int(counts[short[0]])} images{more}; lower per_class or pass allow_fewer=True")
    generator = torch.Generator().manual_seed(seed)
    # One permutation of the whole set, stably grouped by class; each class takes its first hits.
    order = torch.randperm(targets.numel(), generator=generator)
    grouped = order[torch.sort(targets[order], stable=True).indices]
    starts = torch.cumsum(counts, 0) - counts
    take = torch.clamp(counts, max=per_class)
    indices = torch.cat([grouped[int(s):int(s) + int(n)] for s, n in zip(starts, take)]) if num_classes else grouped[:0]
    return Subset(dataset, indices.tolist())
