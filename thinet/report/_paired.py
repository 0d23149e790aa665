"""Every criterion against ThiNet, paired by seed, with a Student's t confidence interval.

A seed gives every criterion the same selection images and fine-tuning data order, so the
criteria are compared seed by seed: per (experiment, dataset, model, strategy, rate) and
outcome, the difference criterion − ThiNet on each seed both chains have (a seed only one of
them has is dropped and counted), then the mean, the sample sd, the number of pairs n and the
interval mean ± t(0.975, n−1) · sd / √n. Two outcomes per chain:

- `after_pruning`: the mean over the chain's steps of the accuracy just after pruning a layer,
  before that layer's fine-tuning (`pruned` rows: the paper's Figure 4 claim);
- `final`: the accuracy after the final fine-tune (the `final` row).

A difference is called one only when its interval excludes zero; with one pair there is no
interval at all, and the verdict says so.

>>> low, high = confidence_interval(mean=-2.0, sd=1.0, n=4)
>>> round(low, 3), round(high, 3)
(-3.591, -0.409)
>>> verdict(low, high, 4), verdict(-0.5, 0.7, 4), verdict(float("nan"), float("nan"), 1)
('worse than ThiNet', 'no difference shown', 'n = 1: no interval')
"""
from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from thinet.report._rows import THINET_CRITERION, criterion_rank, is_transfer
from thinet.report._stats import mean_std_over_seeds
from thinet.report._style import series_label

LEVEL = 0.95
# What a chain is compared within: the same base model pruned by the same plan at the same rate.
GROUP_KEYS = ["experiment", "dataset", "model", "strategy", "keep_ratio"]
CHAIN_KEYS = [*GROUP_KEYS, "criterion", "seed"]
OUTCOMES = {"after_pruning": "just after pruning", "final": "after the final fine-tune"}


def t_quantile(df: int, level: float = LEVEL) -> float:
    """The two-sided Student's t quantile t((1 + level) / 2, df).

    >>> round(t_quantile(4), 3)
    2.776
    """
    if df < 1:
        raise ValueError(f"Student's t needs at least 1 degree of freedom, got {df}")
    return float(stats.t.ppf(0.5 + level / 2, df))


def confidence_interval(mean: float, sd: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """(low, high) of the t interval of a mean over `n` values with sample sd `sd`; (nan, nan) for n < 2."""
    if n < 2:
        return math.nan, math.nan
    half = t_quantile(n - 1, level) * sd / math.sqrt(n)
    return mean - half, mean + half


def verdict(low: float, high: float, n: int, reference: str = "ThiNet") -> str:
    """Plain words for a difference criterion − reference with interval [low, high] over `n` pairs."""
    if n == 0:
        return f"no seed in common with {reference}"
    if n == 1:
        return "n = 1: no interval"
    if low > 0:
        return f"better than {reference}"
    if high < 0:
        return f"worse than {reference}"
    return "no difference shown"


def chain_outcomes(metrics: pd.DataFrame, transfer: frozenset[str] | None = None) -> pd.DataFrame:
    """One row per chain (CHAIN_KEYS) and outcome: `outcome`, `top1`, and `steps` (the steps averaged).

    Only the criteria chains outside transfer experiments count: variants fine-tuned from a chain
    (ThiNet-GAP, ...) share its criterion and rate but not its label, and stay out. A row logged twice
    (one seed, one step) counts once. Chains of one group with different step counts are an error:
    their after-pruning means would average different layers.
    """
    chains = metrics[metrics["criterion"].ne("") & ~is_transfer(metrics, transfer)]
    own = [series_label(v, c, r) == c for v, c, r in zip(chains["variant"], chains["criterion"], chains["keep_ratio"])]
    chains = chains[pd.Series(own, index=chains.index, dtype=bool)].copy()
    chains["top1"] = pd.to_numeric(chains["top1"], errors="coerce")

    pruned = chains[chains["phase"].eq("pruned")].drop_duplicates([*CHAIN_KEYS, "step"], keep="first")
    after = pruned.groupby(CHAIN_KEYS, sort=False).agg(top1=("top1", "mean"), steps=("step", "nunique")).reset_index()
    _check_same_steps(after)
    after["outcome"] = "after_pruning"

    final = chains[chains["phase"].eq("final")].drop_duplicates(CHAIN_KEYS, keep="first")[[*CHAIN_KEYS, "top1"]].copy()
    final["steps"] = pd.NA
    final["outcome"] = "final"
    return pd.concat([after, final], ignore_index=True)[[*CHAIN_KEYS, "outcome", "top1", "steps"]]


def _check_same_steps(after: pd.DataFrame) -> None:
    for keys, group in after.groupby(GROUP_KEYS, sort=False):
        if group["steps"].nunique() > 1:
            counts = ", ".join(f"{c} seed {s}: {n}" for c, s, n in group[["criterion", "seed", "steps"]].itertuples(index=False))
            raise ValueError(f"metrics table: the chains of {dict(zip(GROUP_KEYS, keys))} have 'pruned' rows for different "
                             f"numbers of steps ({counts}); a chain's rows are incomplete")


def paired_to_thinet(metrics: pd.DataFrame, transfer: frozenset[str] | None = None,
                     level: float = LEVEL) -> pd.DataFrame:
    """Per group, outcome and criterion ≠ thinet: criterion − ThiNet paired by seed.

    Columns: GROUP_KEYS, `outcome`, `criterion`, `n_pairs`, `unpaired_seeds` (seeds only one side has),
    `diff_mean`, `diff_sd` (sample sd), `ci_low`, `ci_high` (NaN for n < 2) and `verdict`. Groups
    without a ThiNet chain, or with ThiNet alone, give no rows.
    """
    outcomes = chain_outcomes(metrics, transfer)
    rows = []
    for keys, group in outcomes.groupby([*GROUP_KEYS, "outcome"], sort=False):
        reference = group[group["criterion"].eq(THINET_CRITERION)].set_index("seed")["top1"]
        if reference.empty:
            continue
        for criterion, chain in group[group["criterion"].ne(THINET_CRITERION)].groupby("criterion", sort=False):
            values = chain.set_index("seed")["top1"]
            common = values.index.intersection(reference.index)
            diffs = (values[common] - reference[common]).to_numpy(dtype=float)
            n = len(diffs)
            mean = float(diffs.mean()) if n else math.nan
            sd = float(diffs.std(ddof=1)) if n > 1 else math.nan
            low, high = confidence_interval(mean, sd, n, level)
            rows.append({**dict(zip([*GROUP_KEYS, "outcome"], keys)), "criterion": criterion, "n_pairs": n,
                         "unpaired_seeds": len(values.index.symmetric_difference(reference.index)),
                         "diff_mean": mean, "diff_sd": sd, "ci_low": low, "ci_high": high,
                         "verdict": verdict(low, high, n)})
    columns = [*GROUP_KEYS, "outcome", "criterion", "n_pairs", "unpaired_seeds", "diff_mean", "diff_sd", "ci_low",
               "ci_high", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def ranked_outcomes(metrics: pd.DataFrame, transfer: frozenset[str] | None = None,
                    level: float = LEVEL) -> pd.DataFrame:
    """Per group, outcome and criterion (ThiNet included): top-1 over the criterion's own seeds
    (`top1_mean`, `top1_std`, `n_seeds`, the t interval `top1_ci_low`/`top1_ci_high`), its `rank` by
    mean within the group and outcome (1 = most accurate), and `tied`: whether its interval overlaps
    the interval of a criterion ranked next to it (NA where it or both neighbours have none).

    A rank orders means only; it is no evidence of a difference (the paired verdict is).
    """
    keys = [*GROUP_KEYS, "outcome", "criterion"]
    summary = mean_std_over_seeds(chain_outcomes(metrics, transfer), keys, ["top1"])
    bounds = [confidence_interval(m, s, n, level)
              for m, s, n in zip(summary["top1_mean"], summary["top1_std"], summary["n_seeds"])]
    summary["top1_ci_low"] = [low for low, _ in bounds]
    summary["top1_ci_high"] = [high for _, high in bounds]
    summary["order"] = summary["criterion"].map(criterion_rank)
    summary = summary.sort_values([*GROUP_KEYS[:-1], "keep_ratio", "outcome", "top1_mean", "order"],
                                  ascending=[True] * 4 + [False, True, False, True], kind="stable")
    ranked = []
    for _, group in summary.groupby([*GROUP_KEYS, "outcome"], sort=False):
        group = group.copy()
        group["rank"] = range(1, len(group) + 1)
        group["tied"] = _ties(group["top1_ci_low"].tolist(), group["top1_ci_high"].tolist())
        ranked.append(group)
    columns = [*keys, "top1_mean", "top1_std", "n_seeds", "top1_ci_low", "top1_ci_high", "rank", "tied"]
    if not ranked:
        return pd.DataFrame(columns=columns)
    return pd.concat(ranked, ignore_index=True)[columns]


def _ties(lows: list[float], highs: list[float]) -> list[object]:
    """For intervals in rank order: True where one overlaps a neighbour's, False where it overlaps
    neither, NA where there is nothing to compare (its own or both neighbours' intervals missing)."""
    def overlap(i: int, j: int) -> bool | None:
        if not 0 <= j < len(lows) or any(math.isnan(v) for v in (lows[i], highs[i], lows[j], highs[j])):
            return None
        return lows[i] <= highs[j] and lows[j] <= highs[i]

    marks: list[object] = []
    for i in range(len(lows)):
        found = [o for o in (overlap(i, i - 1), overlap(i, i + 1)) if o is not None]
        marks.append(any(found) if found else pd.NA)
    return marks
