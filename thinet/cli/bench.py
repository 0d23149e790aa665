"""Benchmarks of the pruning engine.

    $ thinet bench selection            # Gram greedy vs X̂ᵀX̂ vs literal Algorithm 1 (m=100000, C=512, r=0.5)
    $ thinet bench selection --samples 20000 --channels 256 --no-literal
    $ thinet bench sampling --image-size 112   # collect_samples vs a full VGG-16 forward pass
    $ thinet bench train                # training/inference timing (thinet.bench_train)
"""
from __future__ import annotations

import argparse
import importlib

import torch

from thinet.types import LayerPair

NAME = "bench"
HELP = "time channel selection, sampling or training"

_TRAIN_MODULE = "thinet.bench_train"


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["selection", "sampling", "train"], help="which benchmark to run")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    sel = parser.add_argument_group("selection")
    sel.add_argument("--samples", type=int, default=100_000, help="rows m of X̂")
    sel.add_argument("--channels", type=int, default=512, help="channels C")
    sel.add_argument("--keep-ratio", type=float, default=0.5, help="fraction of channels kept r")
    sel.add_argument("--no-literal", action="store_true", help="skip the slow literal Algorithm 1")
    smp = parser.add_argument_group("sampling")
    smp.add_argument("--images", type=int, default=16, help="random images")
    smp.add_argument("--batch-size", type=int, default=8)
    smp.add_argument("--image-size", type=int, default=224)
    smp.add_argument("--samples-per-image", type=int, default=10)
    smp.add_argument("--pair", nargs=2, metavar=("PRODUCER", "CONSUMER"), default=["features.12", "features.14"],
                     help="VGG-16 layer pair to sample")
    _add_train_arguments(parser)


def _train_module():
    """thinet.bench_train if it exists (written separately), else None."""
    try:
        return importlib.import_module(_TRAIN_MODULE)
    except ModuleNotFoundError as err:
        if err.name != _TRAIN_MODULE:
            raise
        return None


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    module = _train_module()
    if module is not None and hasattr(module, "add_arguments"):
        module.add_arguments(parser.add_argument_group("train"))


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")


def run(args: argparse.Namespace) -> int:
    device = args.device or _default_device()
    if args.what == "train":
        module = _train_module()
        if module is None:
            print(f"thinet bench train: {_TRAIN_MODULE} is not available in this installation")
            return 1
        return int(module.run(args) or 0)
    from thinet.bench_selection import print_results
    if args.what == "selection":
        from thinet.bench_selection import run_selection_bench
        _check_positive(args, "samples", "channels", "repeats")
        result = run_selection_bench(args.samples, args.channels, args.keep_ratio, repeats=args.repeats,
                                     seed=args.seed, literal=not args.no_literal, device=device)
        print_results(result)
        return 0 if result.get("same_channels", True) else 1
    from thinet.sampling_bench import run_sampling_bench
    _check_positive(args, "images", "batch_size", "image_size", "samples_per_image", "repeats")
    print_results(run_sampling_bench(images=args.images, batch_size=args.batch_size, image_size=args.image_size,
                                     samples_per_image=args.samples_per_image, pair=LayerPair(*args.pair),
                                     repeats=args.repeats, seed=args.seed, device=device))
    return 0
