"""Table 1: the VGG-16 family (original and each ThiNet variant), beside the paper's Table 1."""
from __future__ import annotations

import pandas as pd

from thinet.report import _paper_values as pv
from thinet.report._context import ReportContext
from thinet.report._table import Table
from thinet.report.tables._family import family_table
from thinet.report.tables._registry import table

CAPTION = """\
**Table 1 — the VGG-16 family** (config ``{{ snakemake.config["name"] }}``). The unpruned network
(*Original*) and each ThiNet variant of the config (ThiNet-Conv, ThiNet-GAP, ThiNet-Tiny, train from
scratch, or ``thinet r=<r>`` for each kept fraction *r*), from the ``base`` and ``final`` rows of
metrics.csv: Top-1/Top-5 accuracy (%), parameters, FLOPs (2 × multiply-accumulates of convolutions
and fully-connected layers, one image) and the median forward/backward time of a batch of
{{ snakemake.config.get("data", {}).get("timing_batch_size", 32) }} images.
In the paper's setting (ImageNet, VGG-16) the paper's Table 1 stands beside it in *paper* columns;
there ThiNet-Conv is slightly *more* accurate than the original with 3.2× fewer FLOPs, and ThiNet-GAP
loses about 1 point top-1 with 16.6× fewer parameters. Compare the *direction* of these changes with
the measured columns; absolute timings differ with the device (paper: one M40 GPU, Caffe).
"""


def _paper_row_name(row: pd.Series) -> str | None:
    return row["method"]  # the paper's variant labels are the config's (ThiNet-Conv, ThiNet-GAP, ...)


@table("table1_vgg", order=1, source="metrics", wanted=lambda facts: "vgg" in facts.families,
       needs="'base'/'final' rows of a VGG model outside transfer experiments",
       section=("Tables", "Table 1: VGG-16 family"), caption=CAPTION)
def table1(metrics: pd.DataFrame, ctx: ReportContext) -> Table:
    """Table 1: the VGG-16 family (original and each ThiNet variant).

    >>> from thinet.report._schema import METRICS_COLUMNS
    >>> table1(pd.DataFrame(columns=list(METRICS_COLUMNS)), ReportContext("x")).display.empty
    True
    """
    return family_table(metrics, ctx, name="table1_vgg", number=1, family="vgg",
                        family_title="VGG-16 family pruned by ThiNet", paper=pv.PAPER_TABLE1,
                        paper_row_name=_paper_row_name)
