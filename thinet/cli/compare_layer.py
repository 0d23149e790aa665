"""Prune one layer with every criterion and report top-1/top-5 before fine-tuning (§4.1).

Each criterion gets the same selection images (--per-class per class from the
training split, evaluation transform) and the same evaluation; the unpruned
model is reported too, as criterion `none`.

    $ thinet compare-layer --checkpoint runs/vgg16_small.pt --out-csv compare_layer.csv --out-md compare_layer.md
    $ thinet compare-layer --layer conv2_1 --keep-ratio 0.5 --criteria thinet,random --eval-max-images 2000
"""
from __future__ import annotations

import argparse
import sys

NAME = "compare-layer"
HELP = "prune one layer with each criterion; top-1/top-5 before fine-tuning (paper §4.1)"


def _criteria_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"--criteria {text!r} names no criterion")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="vgg16_small", help="model name for create_model (default vgg16_small)")
    parser.add_argument("--checkpoint", default=None, help="trained weights: a state_dict or a whole pickled module")
    parser.add_argument("--dataset", default="fashion_mnist", help="dataset name for get_dataset (default fashion_mnist)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: the dataset's usual location)")
    parser.add_argument("--layer", default="conv1_1",
                        help="producer layer: a module name or a VGG paper name like conv1_1 (default conv1_1)")
    parser.add_argument("--keep-ratio", type=float, default=0.4,
                        help="fraction of filters kept (default 0.4: the paper removes 60%% of conv1_1)")
    parser.add_argument("--criteria", type=_criteria_list, default=None,
                        help="comma-separated criteria (default: every registered one, see `thinet criteria`)")
    parser.add_argument("--criteria-module", action="append", default=[], metavar="MODULE_OR_FILE",
                        help="extra criterion module to load (dotted name or .py file); repeatable")
    parser.add_argument("--per-class", type=int, default=10, help="selection images per class (default 10)")
    parser.add_argument("--samples-per-image", type=int, default=10, help="ThiNet samples per image (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the selection images and criteria (default 0)")
    parser.add_argument("--eval-max-images", type=int, default=None,
                        help="evaluate on the first N validation images only (default: all)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--config", default="adhoc", help="value of the CSV's config column (default adhoc)")
    parser.add_argument("--out-csv", default=None, help="write compare_layer.csv here (atomically)")
    parser.add_argument("--out-md", default=None, help="write the Markdown table here (atomically)")


def run(args: argparse.Namespace) -> int:
    from thinet.experiment import run_compare_layer, write_compare_outputs

    if args.checkpoint is None:
        print(f"thinet compare-layer: warning: no --checkpoint; {args.model} is untrained, so its accuracies "
              "say nothing about the criteria", file=sys.stderr)
    rows = run_compare_layer(
        model=args.model, dataset=args.dataset, checkpoint=args.checkpoint, data_root=args.data_root,
        layer=args.layer, keep_ratio=args.keep_ratio, per_class=args.per_class,
        samples_per_image=args.samples_per_image, seed=args.seed, eval_max_images=args.eval_max_images,
        device=args.device, criteria=args.criteria, criteria_modules=args.criteria_module, config=args.config)
    print(write_compare_outputs(rows, args.layer, args.out_csv, args.out_md))
    return 0
