"""Deciding a difference to a reference: t intervals, two one-sided tests, Holm's correction, words.

A difference Δ (criterion − ThiNet, percentage points) estimated from n paired seeds has standard
error se = sd / √n and n − 1 degrees of freedom. With α = 1 − level:

- *different*: the two-sided t test of Δ = 0, p_diff; p_diff < α exactly when the `level` interval
  mean ± t(1 − α/2) · se excludes zero;
- *equivalent within δ*: two one-sided tests (TOST) of Δ ≤ −δ and of Δ ≥ +δ; p_equiv is the larger of
  their p values, and p_equiv < α exactly when the (1 − 2α) interval mean ± t(1 − α) · se lies inside
  ±δ (90 % for α = 0.05);
- *Holm*: within one family of m tests (the criteria compared with ThiNet in one outcome × rate ×
  budget panel), the i-th smallest p is adjusted to max over j ≤ i of min(1, (m − j + 1) · p_(j)); a
  test is rejected when its adjusted p is below α. This keeps the chance of any false call in the
  family below α, where the unadjusted calls let it grow with m. Difference and equivalence tests are
  adjusted separately, each over the family's m criteria.

The verdict word, from the (adjusted) p values: "worse"/"better than ThiNet" where the difference
test rejects, else "equivalent to ThiNet within ±δ" where the equivalence test rejects, else
"undecided". A difference can be shown and still be smaller than δ: the word then names the
difference, and the p_equiv column tells the rest.

>>> settings = StatsSettings(level=0.95, margin=0.3, correction="holm")
>>> round(settings.alpha, 3)
0.05
>>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
[0.03, 0.06, 0.06]
>>> verdict_word(p_diff=0.2, p_equiv=0.01, mean=-0.1, n=10, settings=settings)
'equivalent to ThiNet within ±0.3 pp'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from scipy import stats

CORRECTIONS = ("holm", "none")


@dataclass(frozen=True)
class StatsSettings:
    """How differences are decided (config key `statistics`): the interval `level`, the equivalence
    `margin` δ in percentage points, and the multiplicity `correction` of the verdict words."""

    level: float = 0.95
    margin: float = 0.3
    correction: str = "holm"

    def __post_init__(self) -> None:
        if not 0.5 < self.level < 1:
            raise ValueError(f"statistics.level must lie in (0.5, 1), got {self.level}")
        if not self.margin > 0:
            raise ValueError(f"statistics.equivalence_margin must be positive, got {self.margin}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"statistics.correction must be one of {CORRECTIONS}, got {self.correction!r}")

    @property
    def alpha(self) -> float:
        return 1.0 - self.level

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> "StatsSettings":
        """From the config's `statistics` mapping (missing keys take the defaults above)."""
        config = config or {}
        return cls(level=float(config.get("level", cls.level)),
                   margin=float(config.get("equivalence_margin", cls.margin)),
                   correction=str(config.get("correction", cls.correction)))

    def to_config(self) -> dict[str, Any]:
        return {"level": self.level, "equivalence_margin": self.margin, "correction": self.correction}


def t_quantile(df: float, level: float = 0.95) -> float:
    """The two-sided Student's t quantile t((1 + level) / 2, df).

    >>> round(t_quantile(4), 3)
    2.776
    """
    if not df >= 1:
        raise ValueError(f"Student's t needs at least 1 degree of freedom, got {df}")
    return float(stats.t.ppf(0.5 + level / 2, df))


def confidence_interval(mean: float, sd: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """(low, high) of the t interval of a mean over `n` values with sample sd `sd`; (nan, nan) for n < 2."""
    if n < 2:
        return math.nan, math.nan
    half = t_quantile(n - 1, level) * sd / math.sqrt(n)
    return mean - half, mean + half


def difference_p(mean: float, se: float, df: float) -> float:
    """Two-sided p value of the t test of a zero difference (NaN without degrees of freedom)."""
    if not df >= 1 or math.isnan(mean):
        return math.nan
    if se == 0:
        return 0.0 if mean != 0 else 1.0
    return float(2 * stats.t.sf(abs(mean) / se, df))


def equivalence_p(mean: float, se: float, df: float, margin: float) -> float:
    """p value of the two one-sided tests of |difference| ≥ margin: the larger of the two."""
    if not df >= 1 or math.isnan(mean):
        return math.nan
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    below = stats.t.sf((mean + margin) / se, df)   # H0: difference <= -margin
    above = stats.t.cdf((mean - margin) / se, df)  # H0: difference >= +margin
    return float(max(below, above))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p values, in the input order; NaN stays NaN and does not count in m.

    >>> holm([0.001, float("nan"), 0.02])
    [0.002, nan, 0.02]
    """
    present = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted = [math.nan] * len(pvalues)
    running, m = 0.0, len(present)
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def adjust(pvalues: Sequence[float], correction: str) -> list[float]:
    """The family's p values after `correction` ('holm' or 'none')."""
    if correction == "none":
        return list(pvalues)
    if correction == "holm":
        return holm(pvalues)
    raise ValueError(f"unknown multiplicity correction {correction!r}; allowed: {', '.join(CORRECTIONS)}")


def verdict_word(*, p_diff: float, p_equiv: float, mean: float, n: int, settings: StatsSettings,
                 reference: str = "ThiNet") -> str:
    """Plain words for a difference to `reference` from its (adjusted) p values over `n` pairs."""
    if n == 0:
        return f"no seed in common with {reference}"
    if n == 1:
        return "n = 1: no interval"
    if p_diff < settings.alpha:
        return f"{'better' if mean > 0 else 'worse'} than {reference}"
    if p_equiv < settings.alpha:
        return f"equivalent to {reference} within ±{settings.margin:g} pp"
    return "undecided"


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(mean(a) − mean(b), its standard error, Welch–Satterthwaite degrees of freedom) for two
    independent samples; NaN where either has fewer than two values.

    >>> d, se, df = welch([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    >>> d, round(se, 4), round(df, 1)
    (1.0, 0.8165, 4.0)
    """
    if len(a) < 2 or len(b) < 2:
        mean = (sum(a) / len(a) - sum(b) / len(b)) if a and b else math.nan
        return mean, math.nan, math.nan
    va, vb = stats.tvar(a) / len(a), stats.tvar(b) / len(b)
    se = math.sqrt(va + vb)
    mean = sum(a) / len(a) - sum(b) / len(b)
    if se == 0:
        return mean, 0.0, float(len(a) + len(b) - 2)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return mean, se, df


def decide(mean: float, se: float, df: float, n: int, settings: StatsSettings) -> dict[str, float]:
    """The interval (`ci_low`, `ci_high` at `level`), the equivalence interval (`eq_low`, `eq_high` at
    1 − 2α) and the two unadjusted p values of one difference."""
    if not df >= 1 or math.isnan(se):
        nan = math.nan
        return {"ci_low": nan, "ci_high": nan, "eq_low": nan, "eq_high": nan, "p_diff": nan, "p_equiv": nan}
    half = t_quantile(df, settings.level) * se
    half_eq = t_quantile(df, 1 - 2 * settings.alpha) * se
    return {"ci_low": mean - half, "ci_high": mean + half, "eq_low": mean - half_eq, "eq_high": mean + half_eq,
            "p_diff": difference_p(mean, se, df), "p_equiv": equivalence_p(mean, se, df, settings.margin)}
