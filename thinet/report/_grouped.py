"""gcos against its baselines (the grouped runs of `thinet.grouping`), paired by seed, with the statistics
the criteria get against ThiNet (`_verdict`: t intervals, two one-sided tests, Holm within a family) and
gcos as the reference.

A group is one experiment, dataset, model, `strategy` cell ('<chain strategy>/g<g>': one source chain
and one g) and rate. Two outcomes per run: `after_grouping`, the top-1 right after the conversion, before
any fine-tuning (its `pruned` row, step 0), and `final`, after the fine-tune (its `final` row). A dense
ThiNet chain of the same experiment whose final #Param lies within `SAME_SIZE` of the grouped models' is
compared too, on the final outcome, as "thinet r=<r> (dense)": ThiNet pruning to the same size.

>>> settings = StatsSettings()
>>> rows = pd.DataFrame({"experiment": "e", "dataset": "d", "model": "m", "strategy": "vgg16_conv/g2",
...     "keep_ratio": 0.5, "criterion": ["gcos", "gcos", "random", "random"], "seed": [0, 1, 0, 1],
...     "phase": "final", "step": -1, "top1": [90.0, 91.0, 88.0, 88.5], "params": 1000})
>>> paired_to_gcos(rows, settings)[["criterion", "n_pairs", "diff_mean"]].values.tolist()
[['random', 2, -2.25]]
"""
from __future__ import annotations

import pandas as pd

from thinet.report._paired import GROUP_KEYS, paired_differences
from thinet.report._rows import is_grouped
from thinet.report._verdict import StatsSettings

REFERENCE = "gcos"
OUTCOMES = {"after_grouping": "just after grouping", "final": "after the fine-tune"}
RUN_KEYS = [*GROUP_KEYS, "criterion", "seed"]
# A dense chain within this relative distance of the grouped models' #Param counts as the same size.
SAME_SIZE = 0.05
NOLS = "_nols"  # thinet.grouping's suffix for a partition without least squares (the report does not import the engine)


def grouped_outcomes(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per grouped run and outcome: RUN_KEYS, `outcome`, `top1`, `params` (a row logged twice counts once)."""
    rows = metrics[is_grouped(metrics)].copy()
    rows["top1"] = pd.to_numeric(rows["top1"], errors="coerce")
    rows["params"] = pd.to_numeric(rows["params"], errors="coerce")
    after = rows[rows["phase"].eq("pruned") & pd.to_numeric(rows["step"]).eq(0)].assign(outcome="after_grouping")
    final = rows[rows["phase"].eq("final")].assign(outcome="final")
    both = pd.concat([after, final], ignore_index=True).drop_duplicates([*RUN_KEYS, "outcome"], keep="first")
    return both[[*RUN_KEYS, "outcome", "top1", "params"]]


def dense_at_same_size(metrics: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Final rows of dense ThiNet chains of the grouped groups' experiments whose #Param is within
    SAME_SIZE of the group's mean final #Param, re-keyed into that group as 'thinet r=<r> (dense)'."""
    finals = metrics[metrics["phase"].eq("final") & metrics["criterion"].eq("thinet") & ~is_grouped(metrics)].copy()
    finals["top1"] = pd.to_numeric(finals["top1"], errors="coerce")
    finals["params"] = pd.to_numeric(finals["params"], errors="coerce")
    found = []
    grouped_final = outcomes[outcomes["outcome"].eq("final")]
    for keys, group in grouped_final.groupby(GROUP_KEYS, sort=False):
        where = dict(zip(GROUP_KEYS, keys))
        size = group["params"].mean()
        same = finals[finals["experiment"].eq(where["experiment"]) & finals["model"].eq(where["model"])
                      & ((finals["params"] - size).abs() <= SAME_SIZE * size)]
        for r, chain in same.groupby("keep_ratio", sort=False):
            found.append(chain.assign(**{**where, "criterion": f"thinet r={float(r):g} (dense)", "outcome": "final"}))
    if not found:
        return pd.DataFrame(columns=[*RUN_KEYS, "outcome", "top1", "params"])
    return pd.concat(found, ignore_index=True).drop_duplicates([*RUN_KEYS, "outcome"])[
        [*RUN_KEYS, "outcome", "top1", "params"]]


def compared_outcomes(metrics: pd.DataFrame) -> pd.DataFrame:
    """`grouped_outcomes` and the dense chains of the same size (`dense_at_same_size`)."""
    outcomes = grouped_outcomes(metrics)
    return pd.concat([outcomes, dense_at_same_size(metrics, outcomes)], ignore_index=True)


def family_of(criterion: str) -> str:
    """The reference a grouped method is compared with: gcos, or gcos_nols for the groupings without least
    squares (the ablation compares partitions that are not rescaled).

    >>> family_of("random"), family_of("random_nols"), family_of("thinet r=0.93 (dense)")
    ('gcos', 'gcos_nols', 'gcos')
    """
    return f"{REFERENCE}{NOLS}" if criterion.endswith(NOLS) else REFERENCE


def paired_to_gcos(metrics: pd.DataFrame, settings: StatsSettings) -> pd.DataFrame:
    """Per group, outcome and compared method: method − gcos (or − gcos_nols for the `_nols` groupings)
    paired by seed (PAIRED_COLUMNS, as `paired_to_thinet`'s, with verdicts worded against the reference).
    Groups without the reference give no rows."""
    references = {REFERENCE: REFERENCE, f"{REFERENCE}{NOLS}": f"{REFERENCE}{NOLS}"}
    return paired_differences(compared_outcomes(metrics), references, settings, family_of)
