"""Train a model from scratch (or continue a checkpoint) and save the whole model.

SGD with momentum 0.9 and weight decay 5e-4 (the paper's setup); the learning
rate decays geometrically from --lr to --lr-end when --lr-end is given. An
epoch-end checkpoint (<out>.train.pt) lets a killed run resume where it was;
it is removed once <out> is written. It trains channels-last, with AMP on CUDA;
under `torchrun` it trains data-parallel.

Example (Fashion-MNIST, a few minutes on a laptop CPU):

    $ thinet train --model vgg16_small --dataset fashion_mnist --epochs 5 --lr 0.05 --lr-end 0.0005 --out vgg16_small.pt
    $ thinet train --model vgg16_small --dataset fashion_mnist --iterations 200 --out quick.pt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "train"
HELP = "train a model on a dataset and save it (SGD, momentum 0.9, weight decay 5e-4)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thinet.cli._args import add_data_arguments, add_protocol_arguments

    add_data_arguments(parser)
    add_protocol_arguments(parser)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=float, default=None, help="training epochs, fractions allowed (default 10)")
    budget.add_argument("--iterations", type=int, default=None, help="training iterations instead of epochs")
    parser.add_argument("--lr", type=float, default=0.05, help="start learning rate (default 0.05)")
    parser.add_argument("--lr-end", type=float, default=None,
                        help="end learning rate, reached as --lr-schedule says (default: constant)")
    parser.add_argument("--checkpoint", default=None, help="start from these weights instead of a fresh model")
    parser.add_argument("--out", default="model.pt", help="where to write the trained model (default model.pt)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation on the validation split")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from thinet.cli._args import (build_model, check_dataset_name, check_fits, check_model_name, check_output,
                                  check_positive, optimizer_settings)
    from thinet.data import get_dataset
    from thinet.experiment import make_loader, resolve_device, save_model
    from thinet.runtime import Schedule, dist_info, evaluate, seed_everything, train

    check_positive(args, "batch_size", "iterations")
    schedule = Schedule.from_config({"epochs": args.epochs if args.epochs is not None or args.iterations else 10.0,
                                     "iterations": args.iterations, "lr": args.lr, "lr_end": args.lr_end,
                                     "lr_schedule": args.lr_schedule},
                                    "command line")
    check_model_name(args.model)
    check_dataset_name(args.dataset)
    device = resolve_device(args.device)
    out = check_output(args.out)
    train_set = get_dataset(args.dataset, "train", root=args.data_root, train_transform=True,
                            preprocessing=args.preprocessing)
    seed_everything(args.seed)  # the model's initial weights come from the seed too
    model = build_model(args.model, train_set.num_classes, args.checkpoint)
    check_fits(model, train_set, args.model)
    resume = Path(f"{out}.train.pt")
    if resume.exists():
        print(f"thinet train: resuming from {resume}", file=sys.stderr)
    history = train(model, make_loader(train_set, args.batch_size, workers=args.workers, shuffle=True), schedule, device=device,
                    checkpoint_path=resume, seed=args.seed, progress=not args.no_progress,
                    optimizer=optimizer_settings(args))
    if not dist_info().is_main:
        return 0  # rank 0 writes the model and reports
    save_model(model, out)
    resume.unlink(missing_ok=True)
    last = history[-1]
    print(f"trained {args.model} on {args.dataset}: {last['step']} iterations, last training loss "
          f"{last['loss']:.4f}, training accuracy {last['accuracy']:.2f}%; saved {out}")
    if not args.no_eval:
        val = get_dataset(args.dataset, "val", root=args.data_root, preprocessing=args.preprocessing)
        result = evaluate(model.to(device), make_loader(val, 256, workers=args.workers), device=device)
        print(f"validation: top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}  "
              f"({result['images']} images)")
    return 0
