"""Table 3: the ResNet family at each rate, beside the paper's Table 3 (ThiNet-70/50/30)."""
from __future__ import annotations

import pandas as pd

from thinet.report import _paper_values as pv
from thinet.report._context import ReportContext
from thinet.report._rows import THINET_CRITERION
from thinet.report._table import Table
from thinet.report.tables._family import family_table
from thinet.report.tables._registry import table

CAPTION = """\
**Table 3 — the ResNet family at each rate** (config ``{{ snakemake.config["name"] }}``). A
bottleneck ResNet whose first two convolutions of every block are pruned by ThiNet (§3.3) at each
configured kept fraction *r* (the paper: 70 %, 50 % and 30 % of the filters, ThiNet-70/50/30):
Top-1/Top-5 (%), parameters, FLOPs and the median forward/backward time of a batch of
{{ snakemake.config.get("data", {}).get("timing_batch_size", 32) }} images. In the paper (ResNet-50
on ImageNet) ThiNet-50 halves parameters and FLOPs for about one point of top-5 and ThiNet-30 costs
about three; the measured accuracy should fall in the same order as *r* decreases. *paper* columns
appear only for the paper's setting.
"""


def _paper_row_name(row: pd.Series) -> str | None:
    if row["phase"] == "base":
        return "Original"
    if row["method"] in pv.PAPER_TABLE3:
        return row["method"]
    if row["criterion"] == THINET_CRITERION:  # 'thinet r=0.7' is the paper's ThiNet-70
        return pv.PAPER_TABLE3_ROW_OF_KEEP_RATIO.get(round(float(row["keep_ratio"]), 6))
    return None


@table("table3_resnet", order=3, source="metrics", wanted=lambda facts: "resnet" in facts.families,
       needs="'base'/'final' rows of a ResNet model outside transfer experiments",
       section=("Tables", "Table 3: ResNet family"), caption=CAPTION)
def table3(metrics: pd.DataFrame, ctx: ReportContext) -> Table:
    """Table 3: the ResNet family at each rate.

    >>> from thinet.report._schema import METRICS_COLUMNS
    >>> table3(pd.DataFrame(columns=list(METRICS_COLUMNS)), ReportContext("x")).title
    'Table 3. ResNet family pruned by ThiNet at each rate, config `x`: dataset no dataset; model no model'
    """
    return family_table(metrics, ctx, name="table3_resnet", number=3, family="resnet",
                        family_title="ResNet family pruned by ThiNet at each rate", paper=pv.PAPER_TABLE3,
                        paper_row_name=_paper_row_name)
