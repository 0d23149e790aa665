"""Draw the report's figures (PNG and PDF) for one config.

    python workflow/scripts/report_figures.py --config default --out-dir results/default/figures \
        --metrics results/default/metrics.csv --compare-layer results/default/compare_layer.csv \
        --figures fig4_layerwise tradeoff compare_layer
"""
from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")  # no display on workers; the figures never need one

from thinet.report import ReportContext, available_figures, write_figures  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="config name (titles)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--metrics", help="results/<config>/metrics.csv")
    parser.add_argument("--compare-layer", help="results/<config>/compare_layer.csv")
    parser.add_argument("--figures", nargs="+", required=True, choices=available_figures())
    args = parser.parse_args(argv)
    files = {k: v for k, v in (("metrics", args.metrics), ("compare_layer", args.compare_layer)) if v}
    try:
        written = write_figures(args.figures, files, args.out_dir, ReportContext(args.config))
    except (ValueError, FileNotFoundError) as err:
        print(f"report_figures: error: {err}", file=sys.stderr)
        return 2
    for name, paths in written.items():
        print(f"{name}: {', '.join(paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
