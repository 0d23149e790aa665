"""Write the report's tables (CSV, Markdown, HTML) or figures (PNG, PDF) for one config.

    python workflow/scripts/report_outputs.py --what tables --config default --out-dir results/default/tables \
        --metrics results/default/metrics.csv --arch results/default/arch_table.csv \
        --names table1_vgg table2_criteria arch_table [--transfer transfer_cub200] [--timing-batch-size 32]
    python workflow/scripts/report_outputs.py --what figures --config default --out-dir results/default/figures \
        --metrics results/default/metrics.csv --compare-layer results/default/compare_layer.csv \
        --names fig4_layerwise tradeoff compare_layer

One option per result file an output can be computed from (`--metrics`, `--arch`, `--compare-layer`).
"""
from __future__ import annotations

import argparse
import json
import sys

from thinet.report import (
    SOURCE_FILES, ReportContext, StatsSettings, available_figures, available_tables, write_figures, write_tables,
)

WRITERS = {"tables": write_tables, "figures": write_figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", required=True, choices=sorted(WRITERS))
    parser.add_argument("--config", required=True, help="config name (titles)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--names", nargs="+", required=True, metavar="NAME",
                        choices=available_tables() + available_figures())
    for source, file in SOURCE_FILES.items():
        parser.add_argument(f"--{source.replace('_', '-')}", help=f"results/<config>/{file}")
    # None (no --transfer): experiments named 'transfer*' are the transfer ones (see ReportContext)
    parser.add_argument("--transfer", nargs="*", help="experiments that belong in Table 4")
    parser.add_argument("--timing-batch-size", type=int, default=32, help="batch of the f./b. timings")
    parser.add_argument("--statistics", type=json.loads, default={},
                        help="the config's `statistics` as JSON (level, equivalence_margin, correction)")
    parser.add_argument("--budgets", type=json.loads, default={},
                        help="JSON {experiment: fine-tuning budget in words}, in config order")
    parser.add_argument("--refused", type=json.loads, default=[],
                        help="JSON [[experiment, criterion, layer, reason], ...]: criteria the plan left out")
    args = parser.parse_args(argv)
    files = {source: getattr(args, source) for source in SOURCE_FILES if getattr(args, source)}
    transfer = None if args.transfer is None else frozenset(args.transfer)
    try:
        context = ReportContext(args.config, transfer, args.timing_batch_size,
                                StatsSettings.from_config(args.statistics), args.budgets,
                                tuple(tuple(r) for r in args.refused))
        written = WRITERS[args.what](args.names, files, args.out_dir, context)
    except (ValueError, FileNotFoundError) as err:
        print(f"report_outputs: error: {err}", file=sys.stderr)
        return 2
    for name, paths in written.items():
        print(f"{name}: {', '.join(paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
