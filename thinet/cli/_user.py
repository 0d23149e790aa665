"""Shared plumbing of the user commands `thinet train`, `thinet prune`, `thinet eval`.

Builds models and data by name and checks they fit each other before any
compute, so a wrong name or a mismatched checkpoint fails in one line.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def add_data_arguments(parser: argparse.ArgumentParser, *, model_default: str | None = "vgg16_small") -> None:
    parser.add_argument("--model", default=model_default,
                        help="model name for create_model: vgg16_small, resnet_small, vgg16, vgg16_gap, "
                             "resnet50_v1, torchvision:<name>, timm:<name>"
                             + (f" (default {model_default})" if model_default else ""))
    parser.add_argument("--dataset", default="fashion_mnist",
                        help="dataset name: fashion_mnist, imagenet, cub200, indoor67 (default fashion_mnist)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: the dataset's usual location)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128, as in the paper)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default 2)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")


def resolve_device(text: str | None) -> torch.device:
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device {text!r} is not a device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {text!r}: CUDA is not available on this machine")
    return device


def check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def check_output(path: str | os.PathLike, flag: str = "--out") -> Path:
    """The output file's directory must exist or be creatable; checked before any compute."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a directory; give a file name like pruned.pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_model_name(name: str | None) -> None:
    """Unknown registered names fail here, before any data is read (prefixed names fail at build time)."""
    import thinet.models  # noqa: F401  (registers the model families)
    from thinet.models.registry import PREFIXES, get_constructor

    if name is not None and not name.startswith(PREFIXES):
        get_constructor(name)


def check_dataset_name(name: str) -> None:
    from thinet.data import available_datasets

    if name not in available_datasets():
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")


def build_model(name: str | None, num_classes: int, checkpoint: str | None) -> nn.Module:
    """A model by name (optionally with weights), or the whole module stored in `checkpoint`."""
    from thinet.models import create_model
    from thinet.models.checkpoint import read_checkpoint

    if name is not None:
        return create_model(name, num_classes, checkpoint=checkpoint)
    if checkpoint is None:
        raise ValueError("give --model NAME or --checkpoint PATH")
    stored = read_checkpoint(checkpoint)
    if not isinstance(stored, nn.Module):
        raise ValueError(f"checkpoint {checkpoint!r} holds a state_dict, not a whole model: add --model NAME")
    return stored


def get_split(name: str, split: str, root: str | None, *, augment: bool = False) -> Dataset:
    from thinet.data import get_dataset

    return get_dataset(name, split, root=root, train_transform=augment)


def check_fits(model: nn.Module, dataset: Any, model_label: str) -> tuple[int, int, int]:
    """The model's (C, H, W) input, after checking the dataset's channels and classes match."""
    from thinet.models import input_size_of

    size = input_size_of(model)
    if dataset.in_channels != size[0]:
        raise ValueError(f"model {model_label} expects {size[0]}-channel input but dataset "
                         f"{type(dataset).__name__} has {dataset.in_channels} channels")
    if dataset.image_size != size[1]:
        raise ValueError(f"model {model_label} expects {size[1]}x{size[2]} images but the dataset gives "
                         f"{dataset.image_size}x{dataset.image_size}")
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if last and last[-1].out_features != dataset.num_classes:
        raise ValueError(f"model {model_label} has {last[-1].out_features} outputs but the dataset has "
                         f"{dataset.num_classes} classes")
    return size


def loader(dataset: Dataset, batch_size: int, workers: int, *, shuffle: bool) -> DataLoader:
    # No persistent workers: each epoch then seeds its workers from the global RNG,
    # which the training checkpoint restores, so a resumed run sees the same crops.
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      pin_memory=torch.cuda.is_available())


def save_model(model: nn.Module, path: str | os.PathLike) -> None:
    """The whole module (pruned shapes included), on CPU, atomically."""
    from thinet.checkpoint import atomic_save

    atomic_save(model.cpu(), path)
