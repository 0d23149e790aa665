"""Which rows of the tidy metrics table belong to which of the paper's tables.

Rows are told apart by model family (the model name), by phase, by criterion and
by whether the experiment is a transfer experiment (named by the config, see
`thinet.report.transfer_experiments`).

>>> model_family("vgg16_small"), model_family("resnet50_v1"), model_family("timm:mobilenetv3_small_100")
('vgg', 'resnet', 'other')
"""
from __future__ import annotations

import pandas as pd

from thinet.types import split_grouped_strategy

# ThiNet's own criterion: the rows that are "ThiNet variants" in Tables 1 and 3.
THINET_CRITERION = "thinet"
# The order criteria are listed in (tables, legends): ThiNet first, then the baselines.
CRITERION_ORDER = ("thinet", "thinet_nols", "thinet_forward", "weight_sum", "apoz", "taylor", "random")
SUMMARY_PHASES = ("base", "final")
STEP_PHASES = ("pruned", "finetuned")


def model_family(model: str) -> str:
    """'vgg', 'resnet' or 'other', from the model name given to `create_model`."""
    name = model.lower().split(":")[-1]
    for family in ("vgg", "resnet"):
        if name.startswith(family) or f"_{family}" in name:
            return family
    return "other"


def is_transfer(frame: pd.DataFrame, transfer_experiments: frozenset[str] | None = None) -> pd.Series:
    """Rows of transfer experiments (Table 4): those named in `transfer_experiments` (from the config),
    or, without a config, those whose experiment label starts with 'transfer'."""
    if transfer_experiments is None:
        return frame["experiment"].str.startswith("transfer")
    return frame["experiment"].isin(transfer_experiments)


def is_grouped(frame: pd.DataFrame) -> pd.Series:
    """Rows of grouped runs (gcos and its baselines: strategy '<chain strategy>/g<g>'); they have their
    own table and figure (`grouped_vs_gcos`), not the criteria's.

    >>> is_grouped(pd.DataFrame({"strategy": ["vgg16_conv", "vgg16_conv/g2", ""]})).tolist()
    [False, True, False]
    """
    return frame["strategy"].map(lambda s: split_grouped_strategy(s) is not None).astype(bool)


def family_rows(frame: pd.DataFrame, family: str, transfer: frozenset[str] | None = None) -> pd.DataFrame:
    """Unpruned and final rows of ThiNet (or of no criterion) for one model family, transfer excluded (Tables 1, 3)."""
    keep = (
        frame["model"].map(model_family).eq(family)
        & frame["phase"].isin(SUMMARY_PHASES)
        & frame["criterion"].isin(["", THINET_CRITERION])
        & ~is_transfer(frame, transfer)
    )
    return frame[keep]


def criteria_rows(frame: pd.DataFrame, transfer: frozenset[str] | None = None) -> pd.DataFrame:
    """Final rows of every pruned chain outside transfer experiments (Table 2); grouped runs left out."""
    keep = frame["phase"].eq("final") & frame["criterion"].ne("") & ~is_transfer(frame, transfer) & ~is_grouped(frame)
    return frame[keep]


def base_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the unpruned models."""
    return frame[frame["phase"].eq("base")]


def transfer_rows(frame: pd.DataFrame, transfer: frozenset[str] | None = None) -> pd.DataFrame:
    """Unpruned and final rows of transfer experiments (Table 4)."""
    return frame[is_transfer(frame, transfer) & frame["phase"].isin(SUMMARY_PHASES)]


def step_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-layer rows (after pruning a layer, and after its fine-tuning): Figure 4; grouped runs left out."""
    return frame[frame["phase"].isin(STEP_PHASES) & frame["criterion"].ne("") & ~is_grouped(frame)]


def criterion_rank(criterion: str) -> int:
    """Position of a criterion in CRITERION_ORDER; unknown (plugin) criteria come after the known ones."""
    return CRITERION_ORDER.index(criterion) if criterion in CRITERION_ORDER else len(CRITERION_ORDER)


def sort_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per experiment (file order; "" — unpruned rows shared by experiments — first): the unpruned rows,
    then by decreasing kept fraction, then criterion.

    >>> df = pd.DataFrame({"experiment": ["e"] * 3, "phase": ["final", "final", "base"],
    ...                    "keep_ratio": [0.3, 0.7, 1.0], "criterion": ["thinet", "random", ""]})
    >>> list(sort_summary(df)["keep_ratio"])
    [1.0, 0.7, 0.3]
    """
    experiments = {e: i for i, e in enumerate(dict.fromkeys(summary["experiment"]))}
    experiments[""] = -1
    key = pd.DataFrame({
        "experiment": summary["experiment"].map(experiments),
        "base": summary["phase"].ne("base").astype(int) if "phase" in summary else 1,
        "rate": -pd.to_numeric(summary["keep_ratio"]),
        "criterion": summary["criterion"].map(criterion_rank),
    }, index=summary.index)
    order = key.sort_values(list(key.columns), kind="stable").index
    return summary.loc[order].reset_index(drop=True)