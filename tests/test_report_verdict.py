"""The four verdict words, the equivalence test, Holm's correction and Welch's interval, on hand-made numbers.

Every expected value is worked out by hand here (means, sds, standard errors, and Student's t
quantiles from a printed table), not read back from the code under test.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest
from test_report import _row, _through_csv

from thinet.report import METRICS_COLUMNS, ReportContext, StatsSettings, build_table, draw_figure, report_plan
from thinet.report._paired import paired_to_thinet
from thinet.report._verdict import holm, welch

# Printed t quantiles: t(0.95, 4) (the 90 % two-sided interval, 4 df), t(0.975, 2), t(0.9875, 2).
T_95_DF4, T_975_DF2, T_9875_DF2 = 2.132, 4.303, 6.205


def family(final: dict[str, dict[int, float]], experiment: str = "e") -> pd.DataFrame:
    """Final rows (and one 'pruned' step per chain, so that the chains count as chains) per criterion and seed."""
    rows = []
    chain = {"experiment": experiment, "dataset": "fashion_mnist", "model": "vgg16_small", "keep_ratio": 0.5,
             "top5": 99.0, "params": 5, "flops": 5, "strategy": "vgg16_conv"}
    for criterion, per_seed in final.items():
        for seed, top1 in per_seed.items():
            rows.append(_row(**chain, variant=f"{criterion} r=0.5", criterion=criterion, seed=seed, phase="final",
                             top1=top1))
            rows.append(_row(**chain, variant=f"{criterion} r=0.5", criterion=criterion, seed=seed, step=0,
                             layer="features.0", phase="pruned", top1=50.0))
    return _through_csv(pd.DataFrame(rows, columns=list(METRICS_COLUMNS)))


def seeds(*values: float) -> dict[int, float]:
    return dict(enumerate(values))


THINET = seeds(90.0, 90.0, 90.0, 90.0, 90.0)


def final_row(metrics: pd.DataFrame, criterion: str, settings: StatsSettings | None = None) -> pd.Series:
    paired = paired_to_thinet(metrics, settings=settings)
    return paired[paired["outcome"].eq("final")].set_index("criterion").loc[criterion]


def test_every_verdict_word_from_hand_made_differences():
    metrics = family({
        "thinet": THINET,
        "worse": seeds(88.0, 87.8, 88.2, 88.0, 88.0),       # diffs -2.0, -2.2, -1.8, -2.0, -2.0
        "better": seeds(92.0, 92.2, 91.8, 92.0, 92.0),      # the mirror image
        "same": seeds(90.05, 89.95, 90.0, 90.02, 89.98),    # |diff| <= 0.05, sd 0.04: inside +-0.3
        "unclear": seeds(89.0, 90.5, 91.5, 89.5, 90.0),     # diffs -1.0, +0.5, +1.5, -0.5, 0.0: wide
    })
    words = paired_to_thinet(metrics).set_index(["outcome", "criterion"]).loc["final", "verdict"]
    assert words.to_dict() == {"worse": "worse than ThiNet", "better": "better than ThiNet",
                               "same": "equivalent to ThiNet within ±0.3 pp", "unclear": "undecided"}


def test_equivalence_is_the_90_percent_interval_inside_the_margin():
    # diffs +0.1 +- {0.2, -0.2, 0.25, -0.25, 0}: mean 0.1, sd = sqrt((0.04+0.04+0.0625+0.0625)/4) = 0.22638
    metrics = family({"thinet": THINET, "close": seeds(90.3, 89.9, 90.35, 89.85, 90.1)})
    mean, sd = 0.1, math.sqrt(0.205 / 4)
    half = T_95_DF4 * sd / math.sqrt(5)   # 0.2158: the 90 % interval is [-0.116, 0.316]
    row = final_row(metrics, "close")
    assert (row["eq_low"], row["eq_high"]) == (pytest.approx(mean - half, abs=2e-3), pytest.approx(mean + half, abs=2e-3))
    # 0.316 > 0.3: not equivalent within 0.3 pp; within 0.35 pp it is
    assert row["verdict"] == "undecided" and row["p_equiv"] > 0.05
    wider = final_row(metrics, "close", StatsSettings(margin=0.35))
    assert wider["verdict"] == "equivalent to ThiNet within ±0.35 pp" and wider["p_equiv"] < 0.05


def test_holm_by_hand():
    # sorted 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1, but not below the running 0.06)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == [0.2]
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def hand_family() -> pd.DataFrame:
    """A family of three criteria against ThiNet (n = 3 each):
    - far: diffs -5.0, -5.1, -4.9 (t = 86.6: p far below 0.05 / 3): kept by Holm;
    - near: diffs -1.0, -1.5, -2.0, mean -1.5, sd 0.5, t = 1.5 / (0.5 / sqrt 3) = 5.196: above t(0.975, 2)
      = 4.303 (p < 0.05, the raw interval excludes zero) but below t(0.9875, 2) = 6.205 (p > 0.025); Holm
      multiplies its p, second smallest of three, by 2: above 0.05, dropped;
    - flat: diffs +1, -1, 0: p = 1.
    """
    return family({"thinet": seeds(90.0, 90.0, 90.0), "far": seeds(85.0, 84.9, 85.1),
                   "near": seeds(89.0, 88.5, 88.0), "flat": seeds(91.0, 89.0, 90.0)})


def test_holm_keeps_a_large_difference_and_drops_a_marginal_one():
    paired = paired_to_thinet(hand_family())
    final = paired[paired["outcome"].eq("final")].set_index("criterion")
    assert 1.5 / (0.5 / math.sqrt(3)) == pytest.approx(5.196, abs=1e-3)
    assert T_975_DF2 < 5.196 < T_9875_DF2
    assert 0.025 < final.loc["near", "p_diff"] < 0.05 and final.loc["near", "ci_high"] < 0
    assert final.loc["near", "p_diff_adj"] == pytest.approx(2 * final.loc["near", "p_diff"])
    assert final.loc["near", "verdict_unadjusted"] == "worse than ThiNet"
    assert final.loc["near", "verdict"] == "undecided"
    assert final.loc["far", "verdict"] == final.loc["far", "verdict_unadjusted"] == "worse than ThiNet"
    assert set(final["family_size"]) == {3}
    uncorrected = paired_to_thinet(hand_family(), settings=StatsSettings(correction="none"))
    assert uncorrected.set_index(["outcome", "criterion"]).loc[("final", "near"), "verdict"] == "worse than ThiNet"


def test_families_are_separate_per_budget():
    # The same "near" comparison alone in its own experiment (budget): a family of one, nothing to correct.
    metrics = pd.concat([hand_family(), family({"thinet": seeds(90.0, 90.0, 90.0), "near": seeds(89.0, 88.5, 88.0)},
                                               experiment="long")], ignore_index=True)
    paired = paired_to_thinet(metrics)
    near = paired[paired["outcome"].eq("final") & paired["criterion"].eq("near")].set_index("experiment")
    assert near.loc["e", "verdict"] == "undecided" and near.loc["long", "verdict"] == "worse than ThiNet"
    assert near.loc["long", "family_size"] == 1


def test_welch_by_hand():
    # a: mean 2, var 1; b: mean 0, var 4; se = sqrt(1/3 + 4/3) = 1.2910; df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 2.941
    mean, se, df = welch([1.0, 2.0, 3.0], [-2.0, 0.0, 2.0])
    assert (mean, se, df) == (2.0, pytest.approx(math.sqrt(5 / 3)), pytest.approx((5 / 3) ** 2 / (17 / 18), rel=1e-6))
    assert all(math.isnan(v) for v in welch([1.0], [1.0, 2.0])[1:])


def test_pruned_vs_scratch_table():
    rows = []
    common = {"experiment": "t1", "dataset": "fashion_mnist", "model": "vgg16_small", "keep_ratio": 0.5,
              "strategy": "vgg16_conv", "top5": 99.0, "params": 5, "flops": 5}
    for seed, (pruned, scratch) in enumerate([(88.0, 91.0), (88.5, 91.5), (87.5, 90.5)]):
        rows.append(_row(**common, variant="ThiNet-Conv", criterion="thinet", seed=seed, phase="final", top1=pruned))
        rows.append(_row(**common, variant="ThiNet-Conv", criterion="thinet", seed=seed, step=0, layer="f.0",
                         phase="pruned", top1=50.0))
        rows.append(_row(**common, variant="Train from scratch", criterion="", seed=seed, phase="final", top1=scratch))
    # ThiNet-GAP is fine-tuned from the chain: same criterion and rate, no per-layer rows: not compared
    rows.append(_row(**common, variant="ThiNet-GAP", criterion="thinet", seed=0, phase="final", top1=10.0))
    metrics = _through_csv(pd.DataFrame(rows, columns=list(METRICS_COLUMNS)))
    t = build_table("pruned_vs_scratch", {"metrics": metrics}, ReportContext("demo"))
    assert len(t.data) == 1
    row = t.data.iloc[0]
    # both sides sd 0.5, n 3: se = sqrt(2 * 0.25 / 3) = 0.4082, df = 4, t(0.975, 4) = 2.776
    half = 2.776 * math.sqrt(0.5 / 3)
    assert row["diff_mean"] == pytest.approx(-3.0) and row["df"] == pytest.approx(4.0)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(-3.0 - half, abs=1e-3), pytest.approx(-3.0 + half, abs=1e-3))
    assert row["verdict"] == "worse than scratch"


def test_budget_figure_and_wanted():
    metrics = pd.concat([hand_family(), family({"thinet": seeds(90.0, 90.0, 90.0), "near": seeds(89.0, 88.5, 88.0)},
                                               experiment="long")], ignore_index=True)
    ctx = ReportContext("demo", budgets={"e": "50 it/layer, 600 it final", "long": "250 it/layer, 3000 it final"})
    fig = draw_figure("criteria_vs_budget", {"metrics": metrics}, ctx)
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["e\n50 it/layer, 600 it final",
                                                                      "long\n250 it/layer, 3000 it final"]
    with pytest.raises(ValueError, match="two experiments"):
        draw_figure("criteria_vs_budget", {"metrics": hand_family()}, ctx)

    def config(*finetunes):
        chain = {"kind": "chain", "criteria": ["thinet", "random"]}
        return {"name": "d", "bases": {"v": {"model": "vgg16_small"}},
                "experiments": {f"e{i}": {"base": "v", "variants": [{**chain, "finetune": ft}]}
                                for i, ft in enumerate(finetunes)}}

    short, long = ({"per_layer": {"iterations": n}, "final": {"iterations": 12 * n}} for n in (50, 250))
    assert "criteria_vs_budget" in report_plan(config(short, long))["figures"]
    assert "criteria_vs_budget" not in report_plan(config(short))["figures"]
    assert "criteria_vs_budget" not in report_plan(config(short, short))["figures"]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="equivalence_margin"):
        StatsSettings(margin=0)
    with pytest.raises(ValueError, match="correction"):
        StatsSettings(correction="bonferroni")
    assert StatsSettings.from_config({"equivalence_margin": 0.5}).margin == 0.5


def test_paper_claims_from_the_verdicts():
    t = build_table("paper_claims", {"metrics": hand_family()}, ReportContext("demo", budgets={"e": "short"}))
    final = t.data[t.data["claim"].str.endswith("after the final fine-tune")].set_index("claim")
    assert final.loc["ThiNet more accurate than far after the final fine-tune", "status"] == "holds here"
    assert final.loc["ThiNet more accurate than near after the final fine-tune", "status"] == "undecided"  # Holm
    # ThiNet's lead is the negated difference, with the interval negated and swapped
    far = final.loc["ThiNet more accurate than far after the final fine-tune"]
    assert far["diff"] == pytest.approx(5.0) and far["ci_low"] < 5.0 < far["ci_high"]
    same = family({"thinet": THINET, "same": seeds(90.05, 89.95, 90.0, 90.02, 89.98)})
    claims = build_table("paper_claims", {"metrics": same}, ReportContext("demo")).data
    assert set(claims["status"]) == {"does not hold here"}  # equivalent within 0.3 pp: not "significantly higher"


def test_two_arms_at_chance_get_no_word_and_leave_the_family():
    # The grouped `_nols` rows at g = 4: every seed of both arms at 10.00 % (chance on Fashion-MNIST's 10 classes).
    # Before: zero spread made se = 0 and the pair "equivalent within ±0.3 pp".
    metrics = family({"thinet": seeds(10.0, 10.0, 10.0), "dead": seeds(10.0, 10.0, 10.0),
                      "near": seeds(89.0, 88.5, 88.0), "stuck": seeds(55.0, 55.0, 55.0)})
    rows = paired_to_thinet(metrics).set_index(["outcome", "criterion"])
    assert rows.loc[("final", "dead"), "verdict"] == "both at chance (10.00 %): no test"
    assert rows.loc[("final", "dead"), "verdict_unadjusted"] == "both at chance (10.00 %): no test"
    assert rows.loc[("after_pruning", "near"), "verdict"] == "both 50.00 % on every seed: no test"
    assert rows.loc[("final", "stuck"), "verdict"] == "better than ThiNet"  # constant but different: still tested
    assert rows.loc[("final", "near"), "family_size"] == 2  # the untestable pair is not counted by Holm
