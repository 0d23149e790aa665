"""Benchmarks of the pruning engine, each measured side by side in one run.

    $ thinet bench selection            # Gram greedy vs X̂ᵀX̂ vs thinet_forward vs literal Algorithm 1 in float32
    $ thinet bench selection --literal-float64   # also the literal Algorithm 1 in float64 (labelled)
    $ thinet bench selection --samples 20000 --channels 256 --no-literal
    $ thinet bench sampling --image-size 112   # collect_samples vs a full VGG-16 forward pass
    $ thinet bench train                # the suite's training loop vs a bare SGD loop
    $ thinet bench models --threads 1   # ThiNet with --strategy auto on the torchvision/timm CNNs of the README table
    $ thinet bench refit --threads 1    # does w-hat help at 1, 2, 4, 8 x the channels in samples? (README table)
    $ thinet bench refit --models timm:regnetx_002 --factors 1 4 16 --per-unit
    $ thinet bench startup              # thinet criteria, thinet --help and a chain job's start-up vs import torch
    $ thinet bench startup --runs 3 --no-job

The benchmarks live in `thinet.bench`; this module imports them (and torch) only when one runs.
"""
from __future__ import annotations

import argparse

NAME = "bench"
HELP = ("time channel selection, sampling, training, ThiNet on today's CNNs, or the start-up of the command "
        "and of a job; measure w-hat against sample counts")


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["selection", "sampling", "train", "models", "refit", "startup"],
                        help="which benchmark to run")
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
    mdl = parser.add_argument_group("models and refit")
    mdl.add_argument("--models", nargs="+", default=None, metavar="NAME",
                     help="models to prune (default: every model of the README table; refit: its three networks "
                          "with grouped units)")
    mdl.add_argument("--shared-channels", action="store_true", help="also prune shared channels (residual streams)")
    mdl.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    mdl.add_argument("--samples-per-channel", type=float, default=None, metavar="K",
                     help="models: samples per channel of the widest unit, as thinet prune --strategy auto draws "
                          "them (default 16)")
    mdl.add_argument("--factors", type=float, nargs="+", default=None, metavar="K",
                     help="refit: sample counts to measure, as multiples of each unit's channels (default 1 2 4 8 16)")
    mdl.add_argument("--grow", choices=["samples", "images"], default="samples",
                     help="refit: reach K x C samples by more samples per image (default) or more images "
                          "(10 samples each)")
    mdl.add_argument("--per-unit", action="store_true", help="refit: also print every unit's row")
    trn = parser.add_argument_group("train")
    trn.add_argument("--train-steps", type=int, default=10, help="SGD steps per timed block (default 10)")
    trn.add_argument("--train-batch-size", type=int, default=128, help="batch size (default 128)")
    trn.add_argument("--train-model", default="vgg16_small", help="model name (default vgg16_small)")
    trn.add_argument("--train-threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    trn.add_argument("--train-json", default=None, metavar="PATH", help="also write the figures as JSON here")
    sup = parser.add_argument_group("startup")
    sup.add_argument("--runs", type=int, default=5, help="timed rounds; each command's minimum is reported (default 5)")
    sup.add_argument("--no-job", action="store_true", help="leave out the chain job (seconds instead of minutes)")
    sup.add_argument("--work", default=None, metavar="DIR",
                     help="keep the job's files (fixture, specs, logs, MLflow store) here (default: a temporary folder)")


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")


def run_train(args: argparse.Namespace) -> int:
    """`thinet bench train` (reads its options via getattr, with defaults, so tests may pass a namespace)."""
    import torch

    from thinet.bench import TARGET_RATIO, run_train_bench

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
    import torch

    from thinet.bench import MODELS, models_markdown, run_models_bench
    from thinet.sampling import SAMPLES_PER_CHANNEL

    images, size, keep_ratio = _models_settings(args)
    per_channel = args.samples_per_channel if args.samples_per_channel is not None else SAMPLES_PER_CHANNEL
    if per_channel < 1:
        raise ValueError(f"--samples-per-channel must be at least 1 (Eq. 6), got {per_channel}")
    rows = run_models_bench(args.models or MODELS, keep_ratio, image_size=size, images=images,
                            shared_channels=args.shared_channels, seed=args.seed, samples_per_channel=per_channel)
    print(f"ThiNet, --strategy auto{' --shared-channels' if args.shared_channels else ''}, r = {keep_ratio}, "
          f"{images} random {size}x{size} images, {per_channel:g} samples per channel of each model's widest unit, "
          f"no fine-tuning, CPU, {torch.get_num_threads()} thread(s):\n")
    print(models_markdown(rows))
    return 0


def _models_settings(args: argparse.Namespace) -> tuple[int, int, float]:
    """(images, image size, keep ratio) of `models` and `refit`, checked before any model is built."""
    import torch

    from thinet.types import check_keep_ratio

    if args.threads:
        torch.set_num_threads(args.threads)
    images, size = args.images or 8, args.image_size or 64
    keep_ratio = check_keep_ratio(args.keep_ratio, "--keep-ratio")
    if images < 1 or size < 1:
        raise ValueError(f"--images and --image-size must be at least 1, got {images} and {size}")
    return images, size, keep_ratio


def run_refit(args: argparse.Namespace) -> int:
    """`thinet bench refit`: per model and sample count, the units where ŵ beats no rescaling (markdown)."""
    import sys

    import torch

    from thinet.bench import (
        REFIT_FACTORS,
        REFIT_MODELS,
        refit_markdown,
        refit_summary,
        refit_units_markdown,
        run_refit_bench,
    )

    images, size, keep_ratio = _models_settings(args)
    factors = args.factors or REFIT_FACTORS
    if any(f <= 0 for f in factors):
        raise ValueError(f"--factors must be positive, got {factors}")
    rows = run_refit_bench(args.models or REFIT_MODELS, factors, keep_ratio=keep_ratio, image_size=size,
                           images=images, shared_channels=args.shared_channels, grow=args.grow, seed=args.seed,
                           progress=lambda line: print(line, file=sys.stderr))
    grown = "samples per image" if args.grow == "samples" else "images (10 samples each)"
    print(f"w-hat vs no rescaling, --strategy auto{' --shared-channels' if args.shared_channels else ''}, "
          f"r = {keep_ratio}, models without weights, {images} random {size}x{size} images ({grown} raised to reach "
          f"K x C samples), error on the consumers' full output maps of {images} held-out images, CPU, "
          f"{torch.get_num_threads()} thread(s):\n")
    print(refit_markdown(refit_summary(rows)))
    if args.per_unit:
        print()
        print(refit_units_markdown(rows))
    return 0


def run_startup(args: argparse.Namespace) -> int:
    """`thinet bench startup`: every command's minimum seconds and its ratio to `import torch` (markdown)."""
    import sys

    from thinet.bench import COMMAND_TARGET, JOB_TARGET, run_startup_bench, startup_markdown

    _check_positive(args, "runs")
    result = run_startup_bench(args.runs, jobs=not args.no_job, work=args.work,
                               progress=lambda line: print(line, file=sys.stderr))
    print(f"start-up, wall seconds from process start, minimum of {result['runs']} runs each, the commands run "
          f"in turn in every round; targets: thinet criteria and thinet --help <= {COMMAND_TARGET}x import torch, "
          f"a job to its first training step <= {JOB_TARGET}x:\n")
    print(startup_markdown(result))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.what == "train":
        return run_train(args)
    if args.what == "models":
        return run_models(args)
    if args.what == "refit":
        return run_refit(args)
    if args.what == "startup":
        return run_startup(args)
    from thinet.bench import print_results, run_sampling_bench, run_selection_bench
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
