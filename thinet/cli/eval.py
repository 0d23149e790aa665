"""Evaluate a model: top-1/top-5 on the validation split, parameters, FLOPs, and optionally timing.

Top-1/top-5 use a single centre view per image (the dataset's evaluation
transform). --timing adds the median forward and backward time of one batch
of --timing-batch-size (32, as in the paper's Tables 1 and 3) on --device.

Example:

    $ thinet eval --checkpoint pruned.pt --dataset fashion_mnist --timing --json pruned_eval.json
    $ thinet eval --model vgg16_small --checkpoint vgg16_small.pt --dataset fashion_mnist --max-images 2000
"""
from __future__ import annotations

import argparse
import sys

NAME = "eval"
HELP = "evaluate a model (top-1/top-5, parameters, FLOPs, forward/backward time)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thinet.cli._args import add_data_arguments

    add_data_arguments(parser, model_default=None)
    parser.add_argument("--checkpoint", default=None,
                        help="model file: a whole pickled module (as written by train/prune), or a state_dict "
                             "together with --model")
    parser.add_argument("--max-images", type=int, default=None, help="evaluate the first N validation images only")
    parser.add_argument("--timing", action="store_true", help="also time forward and backward passes")
    parser.add_argument("--timing-batch-size", type=int, default=32, help="batch size of the timing (default 32)")
    parser.add_argument("--repeats", type=int, default=10, help="timed passes, median reported (default 10)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    parser.set_defaults(batch_size=256)


def run(args: argparse.Namespace) -> int:
    import torch

    from thinet.runtime import atomic_write_json
    from thinet.cli._args import (build_model, check_dataset_name, check_fits, check_model_name, check_output,
                                  check_positive)
    from thinet.data import get_dataset
    from thinet.experiment import make_loader, resolve_device
    from thinet.runtime import count_flops, count_params, evaluate, time_forward_backward

    if args.model is None and args.checkpoint is None:
        raise ValueError("give --checkpoint PATH (a saved model) or --model NAME")
    check_positive(args, "batch_size", "max_images", "timing_batch_size", "repeats")
    check_model_name(args.model)
    check_dataset_name(args.dataset)
    device = resolve_device(args.device)
    json_path = check_output(args.json, "--json") if args.json else None
    val = get_dataset(args.dataset, "val", root=args.data_root, preprocessing=args.preprocessing)
    label = args.checkpoint or args.model
    if args.checkpoint is None:
        print(f"thinet eval: warning: no --checkpoint; {args.model} has random weights", file=sys.stderr)
    torch.manual_seed(args.seed)
    model = build_model(args.model, val.num_classes, args.checkpoint).to(device)
    size = check_fits(model, val, label)
    result = {"model": args.model, "checkpoint": args.checkpoint, "dataset": args.dataset,
              **evaluate(model, make_loader(val, args.batch_size, workers=args.workers), device=device,
                         max_images=args.max_images),
              "params": count_params(model), "flops": count_flops(model, size),
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    if args.timing:
        result.update(time_forward_backward(model, size, batch_size=args.timing_batch_size, device=device,
                                            repeats=args.repeats, seed=args.seed))
    print(f"{label} on {args.dataset} ({result['images']} images): top-1 {result['top1']:.2f}%  "
          f"top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}")
    print(f"{result['params'] / 1e6:.3f}M parameters, {result['flops'] / 1e9:.4f}B FLOPs")
    if args.timing:
        print(f"forward {result['forward_ms']:.2f} ms / backward {result['backward_ms']:.2f} ms "
              f"(batch {args.timing_batch_size}, {result['device']})")
    if json_path is not None:
        atomic_write_json(result, json_path)
    return 0
