"""Table 1's claim with its interval: the pruned and fine-tuned network against the same architecture
trained from scratch.

The paper: ThiNet-Conv 69.80 % top-1, the same architecture trained from scratch 67.00 %. Here, per
experiment, every `scratch` variant (criterion empty, the strategy and rate of the chain it is
`like`) against the ThiNet chains of the same strategy and rate (variants with per-layer rows: not
ThiNet-GAP, which is fine-tuned from the chain): final top-1 over their seeds, the difference
pruned − scratch with Welch's interval (independent runs: a seed does not pair them) and a verdict in
the words of `thinet.report._verdict` (one comparison per experiment: no multiplicity correction).
"""
from __future__ import annotations

import pandas as pd

from thinet.report._context import ReportContext
from thinet.report._rows import THINET_CRITERION, is_transfer
from thinet.report._stats import format_mean_std, format_value
from thinet.report._table import Table
from thinet.report._verdict import decide, verdict_word, welch
from thinet.report.tables._common import setting_text
from thinet.report.tables._registry import table

CAPTION = """\
**Pruned against trained from scratch** (config ``{{ snakemake.config["name"] }}``): the final Top-1 of
the ThiNet chain (e.g. ThiNet-Conv) and of the same architecture trained from random initialisation
(*Train from scratch*), mean ± sd over their seeds, the difference pruned − scratch in percentage points
with Welch's *t* interval (level ``statistics.level``; the runs are independent, so nothing pairs them)
and the verdict: *better*/*worse*, *equivalent within ±δ* (two one-sided tests), or *undecided*. The paper
(VGG-16, ImageNet): ThiNet-Conv 69.80 %, Train from scratch 67.00 %.
"""

KEYS = ["experiment", "dataset", "model", "strategy", "keep_ratio"]


def pruned_vs_scratch_rows(metrics: pd.DataFrame, transfer: frozenset[str] | None, ctx: ReportContext) -> pd.DataFrame:
    """One row per (experiment, strategy, rate, scratch label, chain label) with both sides' final top-1."""
    frame = metrics[~is_transfer(metrics, transfer)].copy()
    frame["top1"] = pd.to_numeric(frame["top1"], errors="coerce")
    final = frame[frame["phase"].eq("final")]
    chains = set(frame.loc[frame["phase"].eq("pruned"), "variant"])
    scratch = final[final["criterion"].eq("") & final["strategy"].ne("")]
    pruned = final[final["criterion"].eq(THINET_CRITERION) & final["variant"].isin(chains)]
    settings = ctx.statistics
    rows = []
    for keys, ours in scratch.groupby([*KEYS, "variant"], sort=False):
        match = pruned
        for key, value in zip(KEYS, keys):
            match = match[match[key].eq(value)]
        for label, theirs in match.groupby("variant", sort=False):
            a, b = theirs["top1"].tolist(), ours["top1"].tolist()
            mean, se, df = welch(a, b)
            n = min(len(a), len(b))
            decision = decide(mean, se, df, n, settings)
            rows.append({**dict(zip([*KEYS, "scratch"], keys)), "pruned": label,
                         "pruned_mean": pd.Series(a).mean(), "pruned_std": pd.Series(a).std(), "pruned_n": len(a),
                         "scratch_mean": pd.Series(b).mean(), "scratch_std": pd.Series(b).std(), "scratch_n": len(b),
                         "diff_mean": mean, "df": df, **decision,
                         "verdict": verdict_word(p_diff=decision["p_diff"], p_equiv=decision["p_equiv"], mean=mean,
                                                 n=n, settings=settings, reference="scratch")})
    columns = [*KEYS, "scratch", "pruned", "pruned_mean", "pruned_std", "pruned_n", "scratch_mean", "scratch_std",
               "scratch_n", "diff_mean", "df", "ci_low", "ci_high", "eq_low", "eq_high", "p_diff", "p_equiv", "verdict"]
    return pd.DataFrame(rows, columns=columns)


@table("pruned_vs_scratch", order=3, source="metrics", wanted=lambda facts: facts.scratch_compared,
       needs="final rows of a ThiNet chain and of a scratch variant like it (same experiment, strategy and rate)",
       section=("Tables", "Pruned against trained from scratch"), caption=CAPTION)
def pruned_vs_scratch(metrics: pd.DataFrame, ctx: ReportContext) -> Table:
    """The ThiNet chain against its architecture trained from scratch, with Welch's interval and a verdict."""
    data = pruned_vs_scratch_rows(metrics, ctx.transfer_experiments, ctx)
    level = round(100 * ctx.statistics.level)
    display = pd.DataFrame({
        "Experiment": data["experiment"],
        "r (kept)": [format_value(v) for v in data["keep_ratio"]],
        "Pruned": [f"{label}: {format_mean_std(m, s)} (n = {n})"
                   for label, m, s, n in zip(data["pruned"], data["pruned_mean"], data["pruned_std"], data["pruned_n"])],
        "From scratch": [f"{label}: {format_mean_std(m, s)} (n = {n})" for label, m, s, n
                         in zip(data["scratch"], data["scratch_mean"], data["scratch_std"], data["scratch_n"])],
        "Δ pruned − scratch (pp)": [f"{m:+.2f}" for m in data["diff_mean"]],
        f"{level} % CI (Welch)": ["—" if pd.isna(lo) else f"[{lo:+.2f}, {hi:+.2f}]"
                                  for lo, hi in zip(data["ci_low"], data["ci_high"])],
        "df": [format_value(v, 1) for v in data["df"]],
        "Verdict": data["verdict"],
    })
    notes = [f"Top-1: final accuracy (%), mean ± sample sd over each side's seeds. Welch's interval: "
             f"difference ± t(df) · √(s₁²/n₁ + s₂²/n₂), df by Welch–Satterthwaite; the verdict as in "
             f"criteria_vs_thinet (equivalence margin ±{ctx.statistics.margin:g} pp), without a correction "
             f"(one comparison per experiment). With a single seed on either side there is no interval."]
    title = f"Pruned and fine-tuned against trained from scratch, {setting_text(data, ctx.config)}"
    return Table(name="pruned_vs_scratch", title=title, data=data, display=display, notes=notes)
