"""Every criterion against ThiNet, paired by seed: intervals, equivalence and Holm-adjusted verdicts.

A seed gives every criterion the same selection images and fine-tuning data order, so the
criteria are compared seed by seed: per (experiment, dataset, model, strategy, rate) and
outcome, the difference criterion − ThiNet on each seed both chains have (a seed only one of
them has is dropped and counted), then the mean, the sample sd, the number of pairs n, the
`level` interval mean ± t · sd / √n, and the tests of `thinet.report._verdict` (a difference, an
equivalence within ±δ, Holm's correction within the family). Two outcomes per chain:

- `after_pruning`: the mean over the chain's steps of the accuracy just after pruning a layer,
  before that layer's fine-tuning (`pruned` rows: the paper's Figure 4 claim);
- `final`: the accuracy after the final fine-tune (the `final` row).

A family is one experiment, strategy, rate and outcome: a config gives each fine-tuning budget its
own experiment (config/verdict.yaml), so a family is outcome × rate × budget. With one pair there is
no interval at all, and the verdict says so.

>>> low, high = confidence_interval(mean=-2.0, sd=1.0, n=4)
>>> round(low, 3), round(high, 3)
(-3.591, -0.409)
"""
from __future__ import annotations

import math
from typing import Mapping

import pandas as pd

from thinet.report._rows import THINET_CRITERION, criterion_rank, is_transfer
from thinet.report._stats import mean_std_over_seeds
from thinet.report._style import series_label
from thinet.report._verdict import (
    StatsSettings, adjust, confidence_interval, decide, t_quantile, verdict_word,
)

__all__ = ["GROUP_KEYS", "CHAIN_KEYS", "OUTCOMES", "LEVEL", "PAIRED_COLUMNS", "chain_outcomes", "confidence_interval",
           "paired_differences", "paired_to_thinet", "ranked_outcomes", "t_quantile"]

LEVEL = StatsSettings().level
# What a chain is compared within: the same base model pruned by the same plan at the same rate.
GROUP_KEYS = ["experiment", "dataset", "model", "strategy", "keep_ratio"]
CHAIN_KEYS = [*GROUP_KEYS, "criterion", "seed"]
OUTCOMES = {"after_pruning": "just after pruning", "final": "after the final fine-tune"}


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


PAIRED_COLUMNS = [*GROUP_KEYS, "outcome", "criterion", "n_pairs", "unpaired_seeds", "diff_mean", "diff_sd", "ci_low",
                  "ci_high", "eq_low", "eq_high", "p_diff", "p_equiv", "family_size", "p_diff_adj", "p_equiv_adj",
                  "verdict_unadjusted", "verdict"]


def paired_to_thinet(metrics: pd.DataFrame, transfer: frozenset[str] | None = None,
                     settings: StatsSettings | None = None) -> pd.DataFrame:
    """Per group, outcome and criterion ≠ thinet: criterion − ThiNet paired by seed.

    Columns (PAIRED_COLUMNS): GROUP_KEYS, `outcome`, `criterion`, `n_pairs`, `unpaired_seeds` (seeds only
    one side has), `diff_mean`, `diff_sd` (sample sd), `ci_low`/`ci_high` (the `settings.level` interval),
    `eq_low`/`eq_high` (the 1 − 2α interval of the equivalence test), the unadjusted p values `p_diff` and
    `p_equiv`, `family_size` (the criteria with an interval in the family), the adjusted `p_diff_adj` and
    `p_equiv_adj`, `verdict_unadjusted` (from the unadjusted p values) and `verdict` (after the
    correction). NaN for n < 2. Groups without a ThiNet chain, or with ThiNet alone, give no rows.
    """
    return paired_differences(chain_outcomes(metrics, transfer), {THINET_CRITERION: "ThiNet"}, settings)


def paired_differences(outcomes: pd.DataFrame, references: Mapping[str, str],
                       settings: StatsSettings | None = None, family_of=lambda criterion: "") -> pd.DataFrame:
    """Per group (GROUP_KEYS), outcome and family: each method − the family's reference, paired by seed.

    `outcomes` has one row per run and outcome (GROUP_KEYS, `outcome`, `criterion`, `seed`, `top1`).
    `references` maps a family's reference method to the name its verdicts use ({'thinet': 'ThiNet'});
    `family_of(criterion)` says which reference a method is compared with (the key of `references`; by
    default the only one). Holm's correction runs within each (group, outcome, reference) family.
    Columns: PAIRED_COLUMNS (see `paired_to_thinet`).
    """
    settings = settings or StatsSettings()
    single = next(iter(references)) if len(references) == 1 else None
    rows: list[dict] = []
    for keys, group in outcomes.groupby([*GROUP_KEYS, "outcome"], sort=False):
        for reference_name, word in references.items():
            reference = group[group["criterion"].eq(reference_name)].set_index("seed")["top1"]
            members = group[group["criterion"].ne(reference_name)
                            & group["criterion"].map(lambda c: single or family_of(c)).eq(reference_name)]
            if reference.empty or members.empty:
                continue
            family = []
            for criterion, chain in members.groupby("criterion", sort=False):
                values = chain.set_index("seed")["top1"]
                common = values.index.intersection(reference.index)
                diffs = (values[common] - reference[common]).to_numpy(dtype=float)
                n = len(diffs)
                mean = float(diffs.mean()) if n else math.nan
                sd = float(diffs.std(ddof=1)) if n > 1 else math.nan
                row = {**dict(zip([*GROUP_KEYS, "outcome"], keys)), "criterion": criterion, "n_pairs": n,
                       "unpaired_seeds": len(values.index.symmetric_difference(reference.index)),
                       "diff_mean": mean, "diff_sd": sd,
                       **decide(mean, sd / math.sqrt(n) if n > 1 else math.nan, n - 1, n, settings)}
                same = _same_constant(values[common], reference[common])
                if same is not None:  # no spread on either side: nothing to test, and no place in the family
                    row.update(p_diff=math.nan, p_equiv=math.nan,
                               constant=constant_words(same, keys[GROUP_KEYS.index("dataset")]))
                family.append(row)
            rows += _decide_family(family, settings, word)
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def _same_constant(values: pd.Series, reference: pd.Series) -> float | None:
    """The one value both arms take on every common seed, when they do (two or more seeds), else None."""
    both = pd.concat([values, reference]).to_numpy(dtype=float)
    if len(values) < 2 or both.size == 0 or not bool((both == both[0]).all()):
        return None
    return float(both[0])


def constant_words(value: float, dataset: str) -> str:
    """The word for two arms that take one and the same value on every seed: no test can be made. At the
    dataset's chance level (100 / classes, for a dataset with a fixed label set) both arms are at chance.

    >>> constant_words(10.0, "fashion_mnist"), constant_words(55.0, "fashion_mnist")
    ('both at chance (10.00 %): no test', 'both 55.00 % on every seed: no test')
    """
    classes = _fixed_classes(dataset)
    if classes and abs(value - 100.0 / classes) < 0.005:
        return f"both at chance ({value:.2f} %): no test"
    return f"both {value:.2f} % on every seed: no test"


def _fixed_classes(dataset: str) -> int | None:
    from thinet.data import get_entry

    try:
        return get_entry(dataset).fixed_classes
    except ValueError:  # a dataset of a plugin no longer installed: no chance level known
        return None


def _decide_family(rows: list[dict], settings: StatsSettings, reference: str = "ThiNet") -> list[dict]:
    """The family's p values adjusted together, and each row's verdict words before and after. Two arms
    with no spread at one and the same value (`constant`) get no test and no word of difference or
    equivalence: they say so (`constant_words`) and do not count in the family."""
    p_diff = adjust([r["p_diff"] for r in rows], settings.correction)
    p_equiv = adjust([r["p_equiv"] for r in rows], settings.correction)
    size = sum(not math.isnan(r["p_diff"]) for r in rows)
    for row, pd_adj, pe_adj in zip(rows, p_diff, p_equiv):
        words = {"mean": row["diff_mean"], "n": row["n_pairs"], "settings": settings, "reference": reference}
        constant = row.pop("constant", None)
        row.update(family_size=size, p_diff_adj=pd_adj, p_equiv_adj=pe_adj,
                   verdict_unadjusted=constant or verdict_word(p_diff=row["p_diff"], p_equiv=row["p_equiv"], **words),
                   verdict=constant or verdict_word(p_diff=pd_adj, p_equiv=pe_adj, **words))
    return rows


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
