"""Reproduce the #Param and #FLOPs columns of the paper's Tables 1 and 3, without data.

Builds VGG-16 and ResNet-50 (v1), applies each recipe (ThiNet-Conv, -GAP, -Tiny,
ThiNet-70/50/30) by real channel removal and counts parameters and FLOPs
(2 x MACs of conv and linear layers) at 3x224x224, next to the paper's values.

    $ thinet arch-table
    $ thinet arch-table --format md --out results/arch_table.md
"""
from __future__ import annotations

import argparse
import sys

NAME = "arch-table"
HELP = "#Param/#FLOPs of VGG-16 and ResNet-50 ThiNet variants vs. Tables 1 and 3 (data-free)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="write the table to this file (atomically) instead of stdout")
    parser.add_argument("--format", default="csv", choices=("csv", "md"), help="csv (default) or md")


def run(args: argparse.Namespace) -> int:
    from thinet.experiment import FORMATS, arch_table
    from thinet.runtime import write_text_atomic

    if args.out is not None and args.out.endswith(("/", "\\")):
        raise ValueError(f"--out {args.out!r} is a directory; give a file name like arch_table.csv")
    text = FORMATS[args.format](arch_table())
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(args.out, text)
    return 0
