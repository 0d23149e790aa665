"""Evaluate a model: top-1/top-5 on the validation split, parameters, FLOPs, and optionally timing.

Top-1/top-5 use a single centre view per image (the dataset's evaluation
transform). --timing adds the median (and interquartile range) forward and
backward time of one batch of --timing-batch-size (32, as in the paper's Tables
1 and 3) on --device, measured with torch.utils.benchmark. With --original, the
unpruned model is evaluated too and both are timed interleaved, side by side,
with the speed-ups and the FLOPs ratio.

Example:

    $ thinet eval --checkpoint pruned.pt --dataset fashion_mnist --timing --json pruned_eval.json
    $ thinet eval --checkpoint pruned.pt --original vgg16_small.pt --timing
    $ thinet eval --model vgg16_small --checkpoint vgg16_small.pt --dataset fashion_mnist --max-images 2000
"""
from __future__ import annotations

import argparse
import sys

NAME = "eval"
HELP = "evaluate a model (top-1/top-5, parameters, FLOPs, forward/backward time), optionally beside its original"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thinet.cli._args import add_data_arguments

    add_data_arguments(parser, model_default=None)
    parser.add_argument("--checkpoint", default=None,
                        help="model file: a whole pickled module (as written by train/prune), or a state_dict "
                             "together with --model")
    parser.add_argument("--original", default=None, metavar="PATH",
                        help="the unpruned model's file (a whole module): evaluated and timed beside --checkpoint")
    parser.add_argument("--max-images", type=int, default=None, help="evaluate the first N validation images only")
    parser.add_argument("--timing", action="store_true", help="also time forward and backward passes")
    parser.add_argument("--timing-batch-size", type=int, default=32, help="batch size of the timing (default 32)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved timing rounds, each a torch.utils.benchmark blocked_autorange (default 5)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    parser.set_defaults(batch_size=256)


def _timing_lines(results: dict[str, dict], batch_size: int) -> list[str]:
    """One line per model: f./b. ms (IQR), and against the first (the original) the speed-ups and FLOPs ratio."""
    lines, first = [], next(iter(results.values()))
    for label, r in results.items():
        line = (f"{label}: forward {r['forward_ms']:.2f} ms (IQR {r['forward_iqr_ms']:.2f}) / backward "
                f"{r['backward_ms']:.2f} ms (IQR {r['backward_iqr_ms']:.2f})")
        if r is not first:
            line += (f"; speed-up {first['forward_ms'] / r['forward_ms']:.2f}x / "
                     f"{first['backward_ms'] / r['backward_ms']:.2f}x for a FLOPs reduction of "
                     f"{first['flops'] / r['flops']:.2f}x")
        lines.append(line)
    lines.append(f"(batch {batch_size}, {first['device']}, {first['threads']} thread(s), median of "
                 "interleaved torch.utils.benchmark rounds)")
    return lines


def run(args: argparse.Namespace) -> int:
    import torch

    from thinet.cli._args import (build_model, check_dataset_name, check_fits, check_model_name, check_output,
                                  check_positive)
    from thinet.data import get_dataset
    from thinet.experiment import device_label, load_model, make_loader, resolve_device
    from thinet.runtime import atomic_write_json, count_flops, count_params, evaluate, time_models

    if args.model is None and args.checkpoint is None:
        raise ValueError("give --checkpoint PATH (a saved model) or --model NAME")
    check_positive(args, "batch_size", "max_images", "timing_batch_size", "rounds")
    check_model_name(args.model)
    check_dataset_name(args.dataset)
    device = resolve_device(args.device)
    json_path = check_output(args.json, "--json") if args.json else None
    val = get_dataset(args.dataset, "val", root=args.data_root, preprocessing=args.preprocessing)
    label = args.checkpoint or args.model
    if args.checkpoint is None:
        print(f"thinet eval: warning: no --checkpoint; {args.model} has random weights", file=sys.stderr)
    torch.manual_seed(args.seed)
    models = {}
    if args.original is not None:
        models[args.original] = load_model(args.original).to(device)
    models[label] = build_model(args.model, val.num_classes, args.checkpoint).to(device)
    sizes = {name: check_fits(model, val, name) for name, model in models.items()}
    results = {}
    for name, model in models.items():
        results[name] = {"model": args.model if name == label else None, "checkpoint": name, "dataset": args.dataset,
                         **evaluate(model, make_loader(val, args.batch_size, workers=args.workers), device=device,
                                    max_images=args.max_images),
                         "params": count_params(model), "flops": count_flops(model, sizes[name]),
                         "device": device_label(device)}
    if args.timing:
        times = time_models(models, sizes[label], batch_size=args.timing_batch_size, device=device,
                            rounds=args.rounds, seed=args.seed)
        for name in models:
            results[name].update(times[name])
    for name, result in results.items():
        print(f"{name} on {args.dataset} ({result['images']} images): top-1 {result['top1']:.2f}%  "
              f"top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}")
        print(f"{result['params'] / 1e6:.3f}M parameters, {result['flops'] / 1e9:.4f}B FLOPs")
    if args.timing:
        print("\n".join(_timing_lines(results, args.timing_batch_size)))
    if json_path is not None:
        atomic_write_json(results[label] if args.original is None else
                          {**results[label], "original": results[args.original]}, json_path)
    return 0
