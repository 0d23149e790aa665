"""Reproduce the #Param, #FLOPs and f./b. columns of the paper's Tables 1 and 3, without data.

Builds VGG-16 and ResNet-50 (v1), applies each recipe (ThiNet-Conv, -GAP, -Tiny,
ThiNet-70/50/30) by real channel removal and counts parameters, FLOPs
(2 x MACs of conv and linear layers) at 3x224x224 and the model size (float32, 1 MB = 2^20 bytes), next
to the paper's values; two more rows group ThiNet-Tiny's convs into g = 2 and 4 groups (gcos, TPAMI
2019, reconstructed: thinet.grouping), beside the journal abstract's 2.66 MB.
--timing adds the median (IQR) forward and backward ms of every row, all rows measured
interleaved on one device, their speed-up against the original and the FLOPs ratio, beside the
paper's M40 numbers; --breakdown prints the forward time of the ResNet-50 rows by layer type.

    $ thinet arch-table
    $ thinet arch-table --format md --out results/arch_table.md
    $ thinet arch-table --timing --format md                   # CPU, batch 8: a few minutes on 2 cores
    $ thinet arch-table --timing --device cuda --channels-last --amp --breakdown
"""
from __future__ import annotations

import argparse
import sys

NAME = "arch-table"
HELP = "#Param/#FLOPs/size (and with --timing f./b. ms) of VGG-16 and ResNet-50 ThiNet variants vs. Tables 1 and 3"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="write the table to this file (atomically) instead of stdout")
    parser.add_argument("--format", default="csv", choices=("csv", "md"), help="csv (default) or md")
    parser.add_argument("--rows", nargs="+", default=None, metavar="MODEL",
                        help="only these rows (e.g. ResNet-50 ThiNet-30 'ThiNet-Tiny gcos g=2'); default all ten")
    timing = parser.add_argument_group("timing (data-free f./b. columns)")
    timing.add_argument("--timing", action="store_true", help="also time forward and backward of every row")
    timing.add_argument("--breakdown", action="store_true",
                        help="also print the forward time by layer type of the ResNet-50 rows (paper §4.3)")
    timing.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N")
    timing.add_argument("--batch-size", type=int, default=None, help="images per pass (default 32 on CUDA, 8 on CPU)")
    timing.add_argument("--image-size", type=int, default=224, help="square input side (default 224, the paper's)")
    timing.add_argument("--rounds", type=int, default=5, help="interleaved rounds over the rows (default 5)")
    timing.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's current count)")
    timing.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    timing.add_argument("--amp", action="store_true", help="autocast (fp16/bf16 on CUDA, bf16 on CPU)")


def run(args: argparse.Namespace) -> int:
    from thinet.cli._args import check_positive
    from thinet.experiment import FORMATS, TimingPlan, arch_layer_times, arch_table, format_breakdown, resolve_device
    from thinet.runtime import write_text_atomic

    if args.out is not None and args.out.endswith(("/", "\\")):
        raise ValueError(f"--out {args.out!r} is a directory; give a file name like arch_table.csv")
    check_positive(args, "batch_size", "image_size", "rounds", "threads")
    if args.timing or args.breakdown:
        resolve_device(args.device)  # a missing CUDA fails here, before anything is built
    plan = TimingPlan.for_device(args.device, args.batch_size, image_size=args.image_size, rounds=args.rounds,
                                 threads=args.threads, amp=args.amp, channels_last=args.channels_last)
    if args.timing:
        print(plan.describe(), file=sys.stderr)
    progress = (lambda what: print(f"  {what}", file=sys.stderr, flush=True)) if args.timing else None
    text = FORMATS[args.format](arch_table(args.rows, progress=progress, timing=plan if args.timing else None))
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(args.out, text)
    if args.breakdown:
        sys.stdout.write("\n" + format_breakdown(arch_layer_times(timing=plan), plan))
    return 0
