"""The grouped variant (gcos and its baselines) in configs, plans and the report."""
from __future__ import annotations

import copy

import pandas as pd
import pytest

from thinet.experiment import ConfigError, build_plan
from thinet.report import (
    ReportContext,
    StatsSettings,
    build_table,
    draw_figure,
    report_plan,
)
from thinet.report._grouped import paired_to_gcos
from thinet.report._rows import criteria_rows, step_rows
from thinet.types import METRICS_COLUMNS

GROUPED = {"kind": "grouped", "from": "conv", "groups": [2, 4], "groupings": ["gcos", "contiguous", "random"],
           "seeds": [0, 1, 2], "train": {"iterations": 2, "lr": 0.005}}


def with_grouped(raw: dict, **changes) -> dict:
    raw = copy.deepcopy(raw)
    raw["experiments"]["vgg_grouped"]["variants"][1] = {**GROUPED, **changes}
    return raw


def test_a_grouped_variant_expands_per_grouping_g_and_seed(smoke_raw, load_raw):
    plan = build_plan(load_raw(with_grouped(smoke_raw)))
    runs = [plan.runs[r] for r in plan.of_kind("grouped")]
    assert len(runs) == 3 * 2 * 3
    gcos = plan.runs["vgg_grouped-gcos-g4-s2"]
    assert (gcos["variant"], gcos["criterion"], gcos["strategy"], gcos["keep_ratio"], gcos["after"]) == \
        ("gcos g=4", "gcos", "vgg16_conv/g4", 0.5, "vgg_grouped-conv")
    assert gcos["selection"] == "fashion_mnist-pc2-s2" and gcos["selection"] in plan.selections
    assert "grouped_vs_gcos" in report_plan(smoke_raw)["tables"]
    assert "grouped_vs_gcos_ci" in report_plan(smoke_raw)["figures"]


@pytest.mark.parametrize("changes, key, allowed", [
    ({"groupings": ["gcos", "shuffle"]}, "experiments.vgg_grouped.variants[1].groupings[1]", "contiguous"),
    ({"from": "base"}, "experiments.vgg_grouped.variants[1].from", "a pruned chain"),
    ({"from": "nowhere"}, "experiments.vgg_grouped.variants[1].from", "conv"),
    ({"groups": [1]}, "experiments.vgg_grouped.variants[1].groups[0]", "minimum of 2"),
    ({"train": None}, "experiments.vgg_grouped.variants[1].train", "None"),
])
def test_bad_grouped_variants_name_the_key(smoke_raw, load_raw, changes, key, allowed):
    raw = with_grouped(smoke_raw, **changes)
    with pytest.raises(ConfigError) as err:
        load_raw(raw)
    assert key in str(err.value) and allowed in str(err.value), str(err.value)


def test_a_grouped_variant_needs_its_keys(smoke_raw, load_raw):
    raw = with_grouped(smoke_raw)
    del raw["experiments"]["vgg_grouped"]["variants"][1]["groupings"]
    with pytest.raises(ConfigError, match=r"variants\[1\]'.*'groupings' is a required property"):
        load_raw(raw)


def metrics_frame() -> pd.DataFrame:
    """gcos 1.0 pp above contiguous and 2.0 above random on three seeds (with ±0.1 noise); a dense ThiNet
    chain of the same size 0.5 below gcos; a plain ThiNet chain of another size."""
    rows = []
    common = {"config": "t", "experiment": "e", "dataset": "fashion_mnist", "model": "vgg16_small", "keep_ratio": 0.5}
    for seed, noise in enumerate((0.1, -0.1, 0.0)):
        for name, after, final in (("gcos", 40.0, 90.0), ("contiguous", 20.0, 89.0), ("random", 15.0, 88.0)):
            grouped = {**common, "variant": f"{name} g=2", "strategy": "vgg16_conv/g2", "criterion": name,
                       "seed": seed, "params": 200_000}
            rows.append({**grouped, "step": 0, "layer": "", "phase": "pruned", "top1": after + noise})
            rows.append({**grouped, "step": -1, "layer": "", "phase": "final", "top1": final + noise})
        dense = {**common, "strategy": "vgg16_conv", "criterion": "thinet", "seed": seed, "phase": "final", "step": -1}
        rows.append({**dense, "variant": "thinet r=0.35", "keep_ratio": 0.35, "params": 204_000, "top1": 89.5 + noise})
        rows.append({**dense, "variant": "ThiNet-Conv", "params": 400_000, "top1": 91.0})
        rows.append({**dense, "variant": "ThiNet-Conv", "params": 400_000, "top1": 80.0, "phase": "pruned", "step": 0,
                     "layer": "features.0"})
    frame = pd.DataFrame(rows)
    for column in METRICS_COLUMNS:
        if column not in frame:
            frame[column] = ""
    return frame[list(METRICS_COLUMNS)]


def test_gcos_is_the_reference_of_the_paired_comparison():
    paired = paired_to_gcos(metrics_frame(), StatsSettings()).set_index(["outcome", "criterion"])
    assert paired.loc[("final", "contiguous"), "diff_mean"] == pytest.approx(-1.0)
    assert paired.loc[("after_grouping", "random"), "diff_mean"] == pytest.approx(-25.0)
    assert paired.loc[("final", "random"), "verdict"] == "worse than gcos"
    dense = paired.loc[("final", "thinet r=0.35 (dense)")]  # within 5 % of the grouped #Param; ThiNet-Conv is not
    assert dense["diff_mean"] == pytest.approx(-0.5) and dense["n_pairs"] == 3
    assert len(paired) == 5


def test_grouped_rows_get_their_own_table_and_figure_not_the_criteria_ones():
    metrics = metrics_frame()
    assert set(criteria_rows(metrics)["variant"]) == {"thinet r=0.35", "ThiNet-Conv"}
    assert set(step_rows(metrics)["variant"]) == {"ThiNet-Conv"}
    table = build_table("grouped_vs_gcos", {"metrics": metrics}, ReportContext("t"))
    shown = table.display.set_index(["Outcome", "Grouping"])
    assert shown.loc[("after the fine-tune", "gcos"), "Δ vs reference (pp)"] == "reference"
    assert shown.loc[("after the fine-tune", "contiguous"), "Δ vs reference (pp)"] == "-1.00 vs gcos"
    assert shown.loc[("just after grouping", "random"), "Top-1 (%)"] == "15.00 ± 0.10"
    assert list(table.display["g"].unique()) == [2]
    fig = draw_figure("grouped_vs_gcos_ci", {"metrics": metrics}, ReportContext("t"))
    assert len(fig.axes) == 2


def test_groupings_without_least_squares_are_compared_with_gcos_nols():
    frame = metrics_frame()
    nols = frame[frame["criterion"].isin(["gcos", "random"])].copy()
    nols["criterion"] = nols["criterion"] + "_nols"
    nols["top1"] = nols["top1"] - 30.0  # both fall by the same amount: their difference stays -2.0 / -25.0
    paired = paired_to_gcos(pd.concat([frame, nols], ignore_index=True), StatsSettings())
    ablation = paired[paired["criterion"].eq("random_nols")].set_index("outcome")
    assert ablation.loc["final", "diff_mean"] == pytest.approx(-2.0)  # against gcos_nols, not gcos (-32.0)
    assert ablation.loc["final", "verdict"] == "worse than gcos_nols"
    assert set(paired.loc[paired["criterion"].eq("random"), "family_size"]) == {2, 3}  # the gcos family only
