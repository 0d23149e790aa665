"""The paper's claims, one per line, with the interval and the word that decides each here.

The paper claims that ThiNet chooses better channels than every other criterion, just after pruning
(Figure 4) and after fine-tuning ("consistently and significantly higher accuracy", §4.1), and that
the pruned ThiNet-Conv beats its architecture trained from scratch (Table 1). Per claim, from the
Holm-adjusted verdict of `criteria_vs_thinet` (and the Welch verdict of `pruned_vs_scratch`):
*holds here* where ThiNet is shown better, *does not hold here* where the other side is shown
better or the two are shown equivalent within ±δ (then ThiNet is not "significantly higher"),
*undecided* otherwise.
"""
from __future__ import annotations

import pandas as pd

from thinet.report._context import ReportContext
from thinet.report._paired import OUTCOMES, paired_to_thinet
from thinet.report._table import Table
from thinet.report.tables._common import setting_text
from thinet.report.tables._registry import table
from thinet.report.tables.pruned_vs_scratch import pruned_vs_scratch_rows

CAPTION = """\
**The paper's claims, decided here** (config ``{{ snakemake.config["name"] }}``). One line per claim:
ThiNet against each criterion per fine-tuning budget, rate and outcome (the paired difference
criterion − ThiNet, its interval and the Holm-adjusted verdict of *criteria_vs_thinet*), and the pruned
network against its architecture trained from scratch (Welch's interval, *pruned_vs_scratch*). *Holds
here*: ThiNet (the pruned network) is shown more accurate; *does not hold here*: the other side is shown
more accurate, or the two are shown equivalent within the margin; *undecided*: neither.
"""

_STATUS = {"worse than ThiNet": "holds here", "better than ThiNet": "does not hold here",
           "worse than scratch": "does not hold here", "better than scratch": "holds here"}


def claim_status(verdict: str) -> str:
    """'holds here', 'does not hold here' or 'undecided' for a verdict word (of the other side vs ThiNet,
    or of the pruned network vs scratch).

    >>> claim_status("worse than ThiNet"), claim_status("equivalent to ThiNet within ±0.3 pp")
    ('holds here', 'does not hold here')
    >>> claim_status("both at chance (10.00 %): no test")  # the same value on every seed: no lead
    'does not hold here'
    """
    if verdict.startswith(("equivalent", "both ")):
        return "does not hold here"
    return _STATUS.get(verdict, "undecided")


def _interval(low: float, high: float) -> str:
    return "—" if pd.isna(low) else f"[{low:+.2f}, {high:+.2f}]"


@table("paper_claims", order=2, source="metrics",
       wanted=lambda facts: facts.criteria_compared or facts.scratch_compared,
       needs="chains of ThiNet and another criterion, or a ThiNet chain and its scratch variant",
       section=("Tables", "The paper's claims, decided"), caption=CAPTION)
def paper_claims(metrics: pd.DataFrame, ctx: ReportContext) -> Table:
    """Each claim with its difference, interval, verdict and status."""
    paired = paired_to_thinet(metrics, ctx.transfer_experiments, ctx.statistics)
    paired = paired[paired["n_pairs"] > 1]
    level = round(100 * ctx.statistics.level)
    rows = [{"claim": f"ThiNet more accurate than {p.criterion} {OUTCOMES[p.outcome]}",
             "experiment": p.experiment, "budget": ctx.budgets.get(p.experiment, ""), "keep_ratio": p.keep_ratio,
             "pairs": p.n_pairs, "diff": -p.diff_mean, "ci_low": -p.ci_high, "ci_high": -p.ci_low,
             "verdict": p.verdict, "status": claim_status(p.verdict)} for p in paired.itertuples(index=False)]
    scratch = pruned_vs_scratch_rows(metrics, ctx.transfer_experiments, ctx)
    rows += [{"claim": f"{s.pruned} more accurate than {s.scratch}", "experiment": s.experiment,
              "budget": ctx.budgets.get(s.experiment, ""), "keep_ratio": s.keep_ratio,
              "pairs": f"{s.pruned_n} vs {s.scratch_n}", "diff": s.diff_mean, "ci_low": s.ci_low,
              "ci_high": s.ci_high, "verdict": s.verdict, "status": claim_status(s.verdict)}
             for s in scratch.itertuples(index=False)]
    data = pd.DataFrame(rows, columns=["claim", "experiment", "budget", "keep_ratio", "pairs", "diff", "ci_low",
                                       "ci_high", "verdict", "status"])
    display = pd.DataFrame({
        "Claim": data["claim"],
        "Fine-tune": [f"{e}: {b}" if b else e for e, b in zip(data["experiment"], data["budget"])],
        "r": [f"{r:g}" for r in data["keep_ratio"]],
        "n": data["pairs"].astype(str),
        "ThiNet's lead (pp)": [f"{d:+.2f}" for d in data["diff"]],
        f"{level} % CI": [_interval(lo, hi) for lo, hi in zip(data["ci_low"], data["ci_high"])],
        "Verdict": data["verdict"],
        "Here": data["status"],
    })
    notes = ["ThiNet's lead: ThiNet − criterion (or pruned − scratch) in percentage points; the interval is the "
             "unadjusted one, the verdict the Holm-adjusted one (criteria) or Welch's (scratch). Comparisons with "
             "a single pair are left out: they decide nothing."]
    title = f"The paper's claims, decided here, {setting_text(metrics, ctx.config)}"
    return Table(name="paper_claims", title=title, data=data, display=display, notes=notes)
