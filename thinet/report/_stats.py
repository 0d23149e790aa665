"""Means and spreads over seeds.

Each seed counts once: duplicate rows of one seed (e.g. the same unpruned model
logged by several chains) are collapsed before averaging. The spread is the sample
standard deviation (ddof=1); it is NaN for a single seed.

>>> import pandas as pd
>>> df = pd.DataFrame({"variant": ["a", "a", "a"], "seed": [0, 1, 1], "top1": [70.0, 72.0, 72.0]})
>>> out = mean_std_over_seeds(df, ["variant"], ["top1"])
>>> float(out.loc[0, "top1_mean"]), round(float(out.loc[0, "top1_std"]), 4), int(out.loc[0, "n_seeds"])
(71.0, 1.4142, 2)
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def mean_std_over_seeds(frame: pd.DataFrame, keys: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """One row per distinct `keys` (in order of first appearance) with `<v>_mean`, `<v>_std` and `n_seeds`."""
    keys, values = list(keys), list(values)
    missing = [c for c in [*keys, *values, "seed"] if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot average over seeds: missing column(s) {missing}")
    per_seed = frame.drop_duplicates(subset=[*keys, "seed"], keep="first").copy()
    for value in values:
        per_seed[value] = pd.to_numeric(per_seed[value], errors="coerce")
    grouped = per_seed.groupby(keys, sort=False, dropna=False)
    out = grouped[values].agg(["mean", "std"])
    out.columns = [f"{value}_{stat}" for value, stat in out.columns]
    out["n_seeds"] = grouped["seed"].nunique()
    return out.reset_index()


def format_mean_std(mean: float, std: float, digits: int = 2) -> str:
    """'70.12 ± 0.34', or just the mean when there is no spread (one seed), '—' when missing.

    >>> format_mean_std(70.123, 0.337), format_mean_std(70.0, float("nan")), format_mean_std(float("nan"), 1.0)
    ('70.12 ± 0.34', '70.00', '—')
    """
    if mean is None or (isinstance(mean, float) and math.isnan(mean)) or pd.isna(mean):
        return "—"
    if std is None or pd.isna(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_value(value: float | None, digits: int = 2, suffix: str = "") -> str:
    """A number with fixed digits (and a unit suffix such as '×'), '—' when missing.

    >>> format_value(3.2345, 2, "×"), format_value(None)
    ('3.23×', '—')
    """
    if value is None or pd.isna(value):
        return "—"
    return f"{value:.{digits}f}{suffix}"


def format_difference(mean: float | None) -> str:
    """A paired difference with its sign, '—' when missing.

    >>> format_difference(0.5), format_difference(-1.234), format_difference(None)
    ('+0.50', '-1.23', '—')
    """
    text = format_value(mean)
    return text if text.startswith(("-", "—")) else f"+{text}"


def format_interval(low: float, high: float, n: int) -> str:
    """A paired interval over `n` pairs: none with one pair, '—' with none.

    >>> format_interval(-0.5, 0.25, 4), format_interval(0.1, 0.1, 3), format_interval(0.0, 0.0, 1)
    ('[-0.50, +0.25]', '[+0.10, +0.10] (every pair equal: zero width)', 'none (n = 1)')
    """
    if n == 1:
        return "none (n = 1)"
    if n == 0 or math.isnan(low):
        return "—"
    # Every pair differing by the same amount (on a discrete accuracy scale) gives a zero-width interval.
    same = " (every pair equal: zero width)" if math.isclose(low, high, abs_tol=1e-9) else ""
    return f"[{low:+.2f}, {high:+.2f}]{same}"
