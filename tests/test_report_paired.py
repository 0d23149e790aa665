"""The paired-seed statistics of the criteria against ThiNet, on hand-made numbers.

Every expected value is worked out by hand in the test (differences, means, sample sds, and the
interval mean ± t · sd / √n with the tabulated t quantile), not read back from the code under test.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest
from test_report import _row, _through_csv, synthetic_metrics

from thinet.report import (
    METRICS_COLUMNS,
    ReportContext,
    build_table,
    draw_figure,
    report_plan,
)
from thinet.report._paired import chain_outcomes, paired_to_thinet, t_quantile

# t(0.975, df) from a printed table of Student's t.
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 10: 2.228, 30: 2.042}
T_975_DF2 = 4.302653  # df = 2 to six digits, for the hand-computed intervals below

# Final top-1 per seed. weight_sum − thinet: -1.0, +0.5, +1.5 (straddles zero); random: -5.0, -4.5, -6.0;
# apoz: +1.0, +1.2, +1.1; taylor: seeds 0 and 1 shared with thinet, seed 3 its own (thinet's seed 2 unmatched);
# thinet_nols: seed 0 only.
FINAL = {
    "thinet": {0: 90.0, 1: 91.0, 2: 92.0},
    "weight_sum": {0: 89.0, 1: 91.5, 2: 93.5},
    "random": {0: 85.0, 1: 86.5, 2: 86.0},
    "apoz": {0: 91.0, 1: 92.2, 2: 93.1},
    "taylor": {0: 88.0, 1: 90.0, 3: 70.0},
    "thinet_nols": {0: 89.5},
}
# Just after pruning each of three layers (seed 0). The chains' means differ by -5.0, their last steps by -3.0.
PRUNED = {"thinet": [80.0, 70.0, 66.0], "weight_sum": [78.0, 60.0, 63.0]}


def hand_metrics() -> pd.DataFrame:
    rows = [_row(experiment="e", dataset="fashion_mnist", model="vgg16_small", variant="Original", criterion="",
                 keep_ratio=1.0, phase="base", top1=95.0, top5=99.0, params=10, flops=10)]
    chain = {"experiment": "e", "dataset": "fashion_mnist", "model": "vgg16_small", "keep_ratio": 0.5, "top5": 99.0,
             "params": 5, "flops": 5}
    for criterion, per_seed in FINAL.items():
        for seed, top1 in per_seed.items():
            rows.append(_row(**chain, variant=f"{criterion} r=0.5", criterion=criterion, seed=seed, phase="final",
                             top1=top1))
            for step in range(3):
                pruned = PRUNED.get(criterion, [50.0, 50.0, 50.0])[step] + (seed if criterion in PRUNED else 0)
                rows.append(_row(**chain, variant=f"{criterion} r=0.5", criterion=criterion, seed=seed, step=step,
                                 layer=f"features.{step}", phase="pruned", top1=pruned))
                # after the layer's fine-tuning: not part of "just after pruning"
                rows.append(_row(**chain, variant=f"{criterion} r=0.5", criterion=criterion, seed=seed, step=step,
                                 layer=f"features.{step}", phase="finetuned", top1=99.0))
    # A variant fine-tuned from ThiNet's chain shares its criterion and rate, not its label: it stays out.
    rows.append(_row(**chain, variant="ThiNet-GAP", criterion="thinet", seed=0, phase="final", top1=10.0))
    return _through_csv(pd.DataFrame(rows, columns=list(METRICS_COLUMNS)))


def _paired(metrics=None) -> pd.DataFrame:
    return paired_to_thinet(hand_metrics() if metrics is None else metrics).set_index(["outcome", "criterion"])


def _hand_interval(diffs: list[float]) -> tuple[float, float, float, float]:
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = T_975_DF2 * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_t_quantiles_match_the_printed_table(df):
    assert t_quantile(df) == pytest.approx(T_TABLE[df], abs=5e-4)


def test_t_quantile_refuses_zero_degrees_of_freedom():
    with pytest.raises(ValueError, match="degree of freedom"):
        t_quantile(0)


def test_interval_that_includes_zero_is_undecided():
    row = _paired().loc[("final", "weight_sum")]
    mean, sd, low, high = _hand_interval([-1.0, 0.5, 1.5])
    assert low < 0 < high
    assert (row["n_pairs"], row["unpaired_seeds"]) == (3, 0)
    assert (row["diff_mean"], row["diff_sd"]) == (pytest.approx(mean), pytest.approx(sd))
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low, abs=1e-5), pytest.approx(high, abs=1e-5))
    assert row["verdict"] == row["verdict_unadjusted"] == "undecided"


def test_intervals_that_exclude_zero_are_differences():
    paired = _paired()
    worse = paired.loc[("final", "random")]
    mean, _, low, high = _hand_interval([-5.0, -4.5, -6.0])
    assert high < 0
    assert (worse["diff_mean"], worse["ci_low"], worse["ci_high"]) == (
        pytest.approx(mean), pytest.approx(low, abs=1e-5), pytest.approx(high, abs=1e-5))
    assert worse["verdict"] == "worse than ThiNet"
    better = paired.loc[("final", "apoz")]
    _, _, low, _ = _hand_interval([1.0, 1.2, 1.1])
    assert better["ci_low"] == pytest.approx(low, abs=1e-5) and low > 0
    assert better["verdict"] == "better than ThiNet"


def test_one_pair_has_no_interval():
    row = _paired().loc[("final", "thinet_nols")]
    assert row["n_pairs"] == 1 and row["diff_mean"] == pytest.approx(-0.5)
    assert math.isnan(row["diff_sd"]) and math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
    assert row["verdict"] == "n = 1: no interval"


def test_unpaired_seeds_are_dropped_and_counted():
    row = _paired().loc[("final", "taylor")]
    # seeds 0, 1 pair (-2.0, -1.0); taylor's seed 3 and thinet's seed 2 have no partner
    assert (row["n_pairs"], row["unpaired_seeds"]) == (2, 2)
    assert row["diff_mean"] == pytest.approx(-1.5)
    assert row["diff_sd"] == pytest.approx(math.sqrt(0.5))


def test_just_after_pruning_is_the_mean_over_the_steps():
    outcomes = chain_outcomes(hand_metrics()).set_index(["outcome", "criterion", "seed"])
    # thinet seed 1: (81 + 71 + 67) / 3; the last step alone would be 67, after fine-tuning 99
    assert outcomes.loc[("after_pruning", "thinet", 1), "top1"] == pytest.approx(73.0)
    assert outcomes.loc[("after_pruning", "thinet", 1), "steps"] == 3
    assert outcomes.loc[("final", "thinet", 0), "top1"] == 90.0  # not ThiNet-GAP's 10.0
    row = _paired().loc[("after_pruning", "weight_sum")]
    # (78 + 60 + 63) / 3 − (80 + 70 + 66) / 3 = 67 − 72 on every seed; the last steps differ by 63 − 66
    assert row["diff_mean"] == pytest.approx(-5.0)
    assert row["diff_sd"] == pytest.approx(0.0)


def test_chains_with_different_step_counts_are_refused():
    metrics = hand_metrics()
    drop = metrics["criterion"].eq("random") & metrics["seed"].eq(1) & metrics["phase"].eq("pruned") & metrics["step"].eq(2)
    with pytest.raises(ValueError, match="random seed 1: 2"):
        paired_to_thinet(metrics[~drop])


def test_table_ranks_and_marks_missing_intervals():
    t = build_table("criteria_vs_thinet", {"metrics": hand_metrics()}, ReportContext("demo"))
    final = t.display[t.display["Outcome"].eq("after the final fine-tune")].set_index("Criterion")
    # means: apoz 92.1, thinet 91, weight_sum 91.33, taylor 82.67, random 85.83, thinet_nols 89.5 (one seed)
    assert list(final.index) == ["apoz", "weight_sum", "thinet", "thinet_nols", "random", "taylor"]
    assert final.loc["thinet", "Δ vs ThiNet (pp)"] == "reference"
    assert final.loc["random", "Verdict (holm)"] == "worse than ThiNet"
    assert final.loc["thinet_nols", "95 % CI (pp)"] == "none (n = 1)"
    assert final.loc["thinet_nols", "Top-1 (%)"] == "89.50"
    assert final.loc["taylor", "Pairs"] == "2 (2 unpaired seeds dropped)"
    after = t.display[t.display["Outcome"].eq("just after pruning")].set_index("Criterion")
    assert after.loc["weight_sum", "95 % CI (pp)"] == "[-5.00, -5.00] (every pair equal: zero width)"
    assert final.loc["apoz", "Rank"] == "1 (tie)"  # its interval overlaps weight_sum's
    assert any("not a significant difference" in note for note in t.notes)


def test_table_and_figure_build_from_the_synthetic_frames():
    metrics = synthetic_metrics()
    t = build_table("criteria_vs_thinet", {"metrics": metrics}, ReportContext("default"))
    # 2 rates × 2 outcomes × 3 criteria of the VGG chains; the ResNet runs ThiNet alone and is left out
    assert len(t.data) == 12 and set(t.data["model"]) == {"vgg16_small"}
    ws = t.data.set_index(["keep_ratio", "outcome", "criterion"]).loc[(0.5, "final", "weight_sum")]
    assert ws["diff_mean"] == pytest.approx(-2.0) and ws["verdict"] == "worse than ThiNet"
    fig = draw_figure("criteria_vs_thinet_ci", {"metrics": metrics}, ReportContext("default"))
    assert len(fig.axes) == 2
    one_seed = metrics[metrics["seed"].eq(0)]
    single = build_table("criteria_vs_thinet", {"metrics": one_seed}, ReportContext("default"))
    assert set(single.display.loc[single.display["Criterion"].ne("thinet"), "Verdict (holm)"]) == {"n = 1: no interval"}
    fig = draw_figure("criteria_vs_thinet_ci", {"metrics": one_seed}, ReportContext("default"))
    assert "n=1" in [text.get_text() for text in fig.axes[0].texts]


def test_wanted_when_thinet_and_another_criterion_are_chained():
    def config(criteria):
        return {"name": "d", "bases": {"v": {"model": "vgg16_small"}},
                "experiments": {"e": {"base": "v", "variants": [{"kind": "chain", "criteria": criteria}]}}}

    for criteria, wanted in (("all", True), (["thinet", "random"], True), (["thinet"], False), (["random"], False)):
        plan = report_plan(config(criteria))
        assert ("criteria_vs_thinet" in plan["tables"], "criteria_vs_thinet_ci" in plan["figures"]) == (wanted, wanted)
