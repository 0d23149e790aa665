"""Write the report's tables (CSV, Markdown, HTML) for one config.

    python workflow/scripts/report_tables.py --config default --out-dir results/default/tables \
        --metrics results/default/metrics.csv --arch results/default/arch_table.csv \
        --tables table1_vgg table2_criteria arch_table [--transfer transfer_cub200] [--timing-batch-size 32]
"""
from __future__ import annotations

import argparse
import sys

from thinet.report import ReportContext, available_tables, write_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="config name (titles)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--metrics", help="results/<config>/metrics.csv")
    parser.add_argument("--arch", help="results/<config>/arch_table.csv")
    parser.add_argument("--tables", nargs="+", required=True, choices=available_tables())
    parser.add_argument("--transfer", nargs="*", default=[], help="experiments that belong in Table 4")
    parser.add_argument("--timing-batch-size", type=int, default=32, help="batch of the f./b. timings")
    args = parser.parse_args(argv)
    files = {k: v for k, v in (("metrics", args.metrics), ("arch", args.arch)) if v}
    ctx = ReportContext(args.config, frozenset(args.transfer), args.timing_batch_size)
    try:
        written = write_tables(args.tables, files, args.out_dir, ctx)
    except (ValueError, FileNotFoundError) as err:
        print(f"report_tables: error: {err}", file=sys.stderr)
        return 2
    for name, paths in written.items():
        print(f"{name}: {', '.join(paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
