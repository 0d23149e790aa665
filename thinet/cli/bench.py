"""Benchmarks of the pruning engine, each measured side by side in one run.

    $ thinet bench selection            # Gram greedy vs X̂ᵀX̂ vs thinet_forward vs literal Algorithm 1 in float32
    $ thinet bench selection --literal-float64   # also the literal Algorithm 1 in float64 (labelled)
    $ thinet bench selection --samples 20000 --channels 256 --no-literal
    $ thinet bench sampling --image-size 112   # collect_samples vs a full VGG-16 forward pass
    $ thinet bench train                # the suite's training loop vs a bare SGD loop
    $ thinet bench models --threads 1   # ThiNet with --strategy auto on 8 torchvision/timm CNNs (README table)
"""
from __future__ import annotations

import argparse

import torch

NAME = "bench"
HELP = "time channel selection, sampling, training, or ThiNet on today's CNNs"


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["selection", "sampling", "train", "models"], help="which benchmark to run")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    sel = parser.add_argument_group("selection")
    sel.add_argument("--samples", type=int, default=100_000, help="rows m of X̂")
    sel.add_argument("--channels", type=int, default=512, help="channels C")
    sel.add_argument("--keep-ratio", type=float, default=0.5, help="fraction of channels kept r")
    sel.add_argument("--no-literal", action="store_true", help="skip the slow literal Algorithm 1")
    sel.add_argument("--literal-float64", action="store_true",
                     help="also time the literal Algorithm 1 in float64 (the fast path and the default literal run "
                          "use the samples' float32)")
    smp = parser.add_argument_group("sampling")
    smp.add_argument("--images", type=int, default=None, help="random images (default 16; models: 8)")
    smp.add_argument("--batch-size", type=int, default=8)
    smp.add_argument("--image-size", type=int, default=None, help="input size (default 224; models: 64)")
    smp.add_argument("--samples-per-image", type=int, default=10)
    smp.add_argument("--pair", nargs=2, metavar=("PRODUCER", "CONSUMER"), default=["features.12", "features.14"],
                     help="VGG-16 layer pair to sample")
    mdl = parser.add_argument_group("models")
    mdl.add_argument("--models", nargs="+", default=None, metavar="NAME",
                     help="models to prune (default: the eight of the README table)")
    mdl.add_argument("--shared-channels", action="store_true", help="also prune shared channels (residual streams)")
    mdl.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    trn = parser.add_argument_group("train")
    trn.add_argument("--train-steps", type=int, default=10, help="SGD steps per timed block (default 10)")
    trn.add_argument("--train-batch-size", type=int, default=128, help="batch size (default 128)")
    trn.add_argument("--train-model", default="vgg16_small", help="model name (default vgg16_small)")
    trn.add_argument("--train-threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    trn.add_argument("--train-json", default=None, metavar="PATH", help="also write the figures as JSON here")


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")


def run_train(args: argparse.Namespace) -> int:
    """`thinet bench train` (reads its options via getattr, with defaults, so tests may pass a namespace)."""
    from thinet.experiment import TARGET_RATIO, run_train_bench

    threads = getattr(args, "train_threads", None)
    if threads:
        torch.set_num_threads(threads)
    device = getattr(args, "device", None) or _default_device()
    result = run_train_bench(steps=getattr(args, "train_steps", 10),
                             batch_size=getattr(args, "train_batch_size", 128), repeats=getattr(args, "repeats", 3),
                             model_name=getattr(args, "train_model", "vgg16_small"), device=device,
                             seed=getattr(args, "seed", 0))
    verdict = "meets" if result["ratio"] >= TARGET_RATIO else "misses"
    print(f"training throughput, {result['model']}, batch {result['batch_size']}, {result['device']}, "
          f"median of {result['repeats']} blocks of {result['steps']} steps:")
    print(f"  suite train(): {result['suite_images_per_s']:9.1f} images/s")
    print(f"  bare SGD loop: {result['bare_images_per_s']:9.1f} images/s")
    print(f"  ratio suite/bare: {result['ratio']:.3f} ({verdict} the target >= {TARGET_RATIO:.2f})")
    path = getattr(args, "train_json", None)
    if path:
        from thinet.runtime import atomic_write_json

        atomic_write_json(result, path)
    return 0


def run_models(args: argparse.Namespace) -> int:
    """`thinet bench models`: prints the README's model table (markdown)."""
    from thinet.experiment import MODELS, models_markdown, run_models_bench

    if args.threads:
        torch.set_num_threads(args.threads)
    from thinet.types import check_keep_ratio

    images, size = args.images or 8, args.image_size or 64
    keep_ratio = check_keep_ratio(args.keep_ratio, "--keep-ratio")
    if images < 1 or size < 1:
        raise ValueError(f"--images and --image-size must be at least 1, got {images} and {size}")
    rows = run_models_bench(args.models or MODELS, keep_ratio, image_size=size, images=images,
                            shared_channels=args.shared_channels, seed=args.seed)
    print(f"ThiNet, --strategy auto{' --shared-channels' if args.shared_channels else ''}, r = {keep_ratio}, "
          f"{images} random {size}x{size} images, no fine-tuning, CPU, {torch.get_num_threads()} thread(s):\n")
    print(models_markdown(rows))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.what == "train":
        return run_train(args)
    if args.what == "models":
        return run_models(args)
    from thinet.experiment import print_results, run_sampling_bench, run_selection_bench
    from thinet.types import LayerPair

    device = args.device or _default_device()
    if args.what == "selection":
        _check_positive(args, "samples", "channels", "repeats")
        result = run_selection_bench(args.samples, args.channels, args.keep_ratio, repeats=args.repeats,
                                     seed=args.seed, literal=not args.no_literal,
                                     literal_float64=args.literal_float64, device=device)
        print_results(result)
        return 0 if result.get("same_channels", True) else 1
    args.images, args.image_size = args.images or 16, args.image_size or 224
    _check_positive(args, "images", "batch_size", "image_size", "samples_per_image", "repeats")
    print_results(run_sampling_bench(images=args.images, batch_size=args.batch_size, image_size=args.image_size,
                                     samples_per_image=args.samples_per_image, pair=LayerPair(*args.pair),
                                     repeats=args.repeats, seed=args.seed, device=device))
    return 0
