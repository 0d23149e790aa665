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

import math

import pandas as pd

from thinet.report._paired import GROUP_KEYS
from thinet.report._rows import is_grouped
from thinet.report._verdict import StatsSettings, adjust, decide, verdict_word

REFERENCE = "gcos"
OUTCOMES = {"after_grouping": "just after grouping", "final": "after the fine-tune"}
RUN_KEYS = [*GROUP_KEYS, "criterion", "seed"]
# A dense chain within this relative distance of the grouped models' #Param counts as the same size.
SAME_SIZE = 0.05
PAIRED_COLUMNS = [*GROUP_KEYS, "outcome", "criterion", "n_pairs", "unpaired_seeds", "diff_mean", "diff_sd", "ci_low",
                  "ci_high", "eq_low", "eq_high", "p_diff", "p_equiv", "family_size", "p_diff_adj", "p_equiv_adj",
                  "verdict_unadjusted", "verdict"]


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


def paired_to_gcos(metrics: pd.DataFrame, settings: StatsSettings) -> pd.DataFrame:
    """Per group, outcome and compared method ≠ gcos: method − gcos paired by seed (PAIRED_COLUMNS, as
    `paired_to_thinet`'s, with verdicts worded against gcos). Groups without gcos give no rows."""
    outcomes = compared_outcomes(metrics)
    rows = []
    for keys, group in outcomes.groupby([*GROUP_KEYS, "outcome"], sort=False):
        reference = group[group["criterion"].eq(REFERENCE)].set_index("seed")["top1"]
        if reference.empty:
            continue
        family = []
        for criterion, runs in group[group["criterion"].ne(REFERENCE)].groupby("criterion", sort=False):
            values = runs.set_index("seed")["top1"]
            common = values.index.intersection(reference.index)
            diffs = (values[common] - reference[common]).to_numpy(dtype=float)
            n = len(diffs)
            mean = float(diffs.mean()) if n else math.nan
            sd = float(diffs.std(ddof=1)) if n > 1 else math.nan
            family.append({**dict(zip([*GROUP_KEYS, "outcome"], keys)), "criterion": criterion, "n_pairs": n,
                           "unpaired_seeds": len(values.index.symmetric_difference(reference.index)),
                           "diff_mean": mean, "diff_sd": sd,
                           **decide(mean, sd / math.sqrt(n) if n > 1 else math.nan, n - 1, n, settings)})
        p_diff = adjust([r["p_diff"] for r in family], settings.correction)
        p_equiv = adjust([r["p_equiv"] for r in family], settings.correction)
        size = sum(not math.isnan(r["p_diff"]) for r in family)
        for row, pd_adj, pe_adj in zip(family, p_diff, p_equiv):
            words = {"mean": row["diff_mean"], "n": row["n_pairs"], "settings": settings, "reference": REFERENCE}
            row.update(family_size=size, p_diff_adj=pd_adj, p_equiv_adj=pe_adj,
                       verdict_unadjusted=verdict_word(p_diff=row["p_diff"], p_equiv=row["p_equiv"], **words),
                       verdict=verdict_word(p_diff=pd_adj, p_equiv=pe_adj, **words))
        rows += family
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)
