"""Arguments of the user commands `thinet train`, `thinet prune`, `thinet eval`, and the checks
of what a user typed, made before any compute so a wrong name or a mismatched checkpoint fails
in one line. Devices, loaders and model files come from `thinet.experiment`.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn
# torch is imported where a model is built or checked: `thinet --help` builds every parser with these helpers.


def add_data_arguments(parser: argparse.ArgumentParser, *, model_default: str | None = "vgg16_small") -> None:
    parser.add_argument("--model", default=model_default,
                        help="model name for create_model: vgg16_small, resnet_small, vgg16, vgg16_gap, "
                             "resnet50_v1, torchvision:<name>, timm:<name>"
                             + (f" (default {model_default})" if model_default else ""))
    parser.add_argument("--dataset", default="fashion_mnist",
                        help="dataset name: fashion_mnist, imagenet, cub200, indoor67 (default fashion_mnist)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: the dataset's usual location)")
    parser.add_argument("--preprocessing", default="torchvision",
                        help="pixels to model input: torchvision (RGB 0-1, mean/std) or caffe (BGR 0-255 minus "
                             "the mean, for weights from `thinet convert-caffe`) (default torchvision)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128, as in the paper)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default 2)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """The training-protocol flags shared by `thinet train` and `thinet prune` (paper §4.2–4.4)."""
    parser.add_argument("--lr-schedule", default="step", choices=("step", "exp", "cosine"),
                        help="how a decaying learning rate falls to its end value: step (x0.1 twice, at 1/3 and "
                             "2/3 of the run, the paper's protocol; default), exp (every iteration), cosine")
    parser.add_argument("--caffe-bias", action="store_true",
                        help="Caffe's solver rule: conv/linear biases at twice the learning rate, no weight decay")


def optimizer_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The `optimizer` settings the protocol flags ask for."""
    return {"bias_lr_factor": 2.0, "bias_weight_decay": False} if args.caffe_bias else {}


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
    from thinet.models import PREFIXES, get_constructor

    if name is not None and not name.startswith(PREFIXES):
        get_constructor(name)


def check_dataset_name(name: str) -> None:
    from thinet.data import available_datasets

    if name not in available_datasets():
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")


def build_model(name: str | None, num_classes: int, checkpoint: str | None) -> nn.Module:
    """A model by name (optionally with weights), or the whole module stored in `checkpoint`."""
    from thinet.experiment import load_model
    from thinet.models import create_model

    if name is not None:
        return create_model(name, num_classes, checkpoint=checkpoint)
    if checkpoint is None:
        raise ValueError("give --model NAME or --checkpoint PATH")
    return load_model(checkpoint)


def check_fits(model: nn.Module, dataset: Any, model_label: str) -> tuple[int, int, int]:
    """The model's (C, H, W) input, after checking the dataset's channels and classes match."""
    from torch import nn

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
