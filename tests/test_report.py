"""Paper tables, figures and the Snakemake report, from synthetic result files.

The numbers below are made up for the tests only; expected values are recomputed by
hand from the generator's formulas, not read back from the code under test.
"""
from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from thinet.report import (
    COMPARE_LAYER_COLUMNS, METRICS_COLUMNS, ReportContext, build_table, read_metrics,
    report_plan, write_figures, write_tables,
)
from thinet.report import _paper_values as pv

REPO = Path(__file__).resolve().parent.parent
CRIT_OFFSET = {"thinet": 3.0, "weight_sum": 1.0, "random": 0.0}
LAYERS = ["features.0", "features.3", "features.7"]
BASE_PARAMS, BASE_FLOPS = 400_000, 8_000_000


def _row(**kw):
    row = dict.fromkeys(METRICS_COLUMNS, "")
    row.update(config="default", device="cpu", mlflow_run_id="r", loss=0.3, eval_images=1000, step=-1, layer="",
               strategy="vgg16_conv", seed=0, forward_ms=None, backward_ms=None)
    row.update(kw)
    return row


def synthetic_metrics(config="default", dataset="fashion_mnist", vgg="vgg16_small", resnet="resnet_small"):
    """VGG: base (seed 0 logged twice, as by two chains; seed 1 once), 3 criteria × r ∈ {0.7, 0.5} × seeds {0, 1}
    with per-layer rows; ResNet: one seed of ThiNet at r ∈ {0.7, 0.5, 0.3}."""
    c = dict(config=config, dataset=dataset)
    rows = [_row(**c, experiment="vgg_criteria", model=vgg, variant="Original", criterion="", keep_ratio=1.0, seed=s,
                 phase="base", top1=90.0 + s, top5=99.0, params=BASE_PARAMS, flops=BASE_FLOPS, forward_ms=10.0,
                 backward_ms=20.0) for s in (0, 0, 1)]
    for crit, off in CRIT_OFFSET.items():
        for r in (0.7, 0.5):
            for seed in (0, 1):
                chain = dict(**c, experiment="vgg_criteria", model=vgg, variant=f"{crit} r={r}", criterion=crit,
                             keep_ratio=r, seed=seed)
                for step, layer in enumerate(LAYERS):
                    for phase, extra in (("pruned", -5.0), ("finetuned", 0.0)):
                        rows.append(_row(**chain, step=step, layer=layer, phase=phase, eval_images=500,
                                         top1=80 + 10 * r + off + seed - step + extra, top5=95.0,
                                         params=BASE_PARAMS, flops=BASE_FLOPS))
                rows.append(_row(**chain, phase="final", top1=80 + 10 * r + off + 2 * seed, top5=95 + seed,
                                 params=int(BASE_PARAMS * r * r), flops=int(BASE_FLOPS * r), forward_ms=5.0 + seed,
                                 backward_ms=9.0))
    res = dict(**c, experiment="resnet_thinet", model=resnet, strategy="resnet_bottleneck")
    rows.append(_row(**res, variant="Original", criterion="", keep_ratio=1.0, phase="base", top1=91.0, top5=99.5,
                     params=300_000, flops=6_000_000, forward_ms=8.0, backward_ms=16.0))
    for r in (0.7, 0.5, 0.3):
        rows.append(_row(**res, variant=f"ThiNet-{round(100 * r)}", criterion="thinet", keep_ratio=r, phase="final",
                         top1=85 + 5 * r, top5=99.0, params=int(300_000 * r), flops=int(6_000_000 * r),
                         forward_ms=6.0, backward_ms=12.0))
    return _through_csv(pd.DataFrame(rows, columns=list(METRICS_COLUMNS)))


def synthetic_compare_layer(dataset="fashion_mnist", model="vgg16_small"):
    rows = [dict(config="default", dataset=dataset, model=model, layer="features.0", keep_ratio=0.4, seed=0,
                 criterion="none", top1=90.0, top5=99.0, eval_images=1000)]
    rows += [dict(config="default", dataset=dataset, model=model, layer="features.0", keep_ratio=0.4, seed=s,
                  criterion=c, top1=60 + 5 * off + s, top5=90.0, eval_images=1000)
             for c, off in CRIT_OFFSET.items() for s in (0, 1)]
    return pd.DataFrame(rows, columns=list(COMPARE_LAYER_COLUMNS))


def _through_csv(frame):
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    return read_metrics(buffer)


def _by_method(table):
    return table.data.set_index("method")


# ---------------------------------------------------------------- tables

def test_table1_rows_mean_std_and_dedup_of_seeds():
    t = build_table("table1_vgg", {"metrics": synthetic_metrics()}, ReportContext("default"))
    assert list(t.data["method"]) == ["Original", "thinet r=0.7", "thinet r=0.5"]
    d = _by_method(t)
    # base: seed 0 logged twice counts once -> mean(90, 91), not mean(90, 90, 91)
    assert d.loc["Original", "top1_mean"] == pytest.approx(90.5)
    assert d.loc["Original", "top1_std"] == pytest.approx(math.sqrt(0.5))
    assert d.loc["Original", "n_seeds"] == 2
    # thinet r=0.7: 80 + 7 + 3 + 2*seed -> 90, 92
    assert d.loc["thinet r=0.7", "top1_mean"] == pytest.approx(91.0)
    assert d.loc["thinet r=0.7", "top1_std"] == pytest.approx(math.sqrt(2.0))
    assert d.loc["thinet r=0.5", "params"] == pytest.approx(100_000)
    assert d.loc["thinet r=0.7", "forward_ms_mean"] == pytest.approx(5.5)
    shown = t.display.set_index("Model")
    assert shown.loc["thinet r=0.7", "Top-1 (%)"] == "91.00 ± 1.41"
    assert shown.loc["thinet r=0.5", "#Param. (K)"] == "100.00"
    assert shown.loc["Original", "f./b. (ms)"] == "10.00/20.00"
    small_batch = build_table("table1_vgg", {"metrics": synthetic_metrics()}, ReportContext("smoke", None, 4))
    assert any("batch of 4 on cpu" in note for note in small_batch.notes)


def test_table2_changes_and_reduction_factors():
    t = build_table("table2_criteria", {"metrics": synthetic_metrics()}, ReportContext("default"))
    assert len(t.data) == 3 * 2 + 3  # VGG criteria × rates, plus the ResNet rates
    vgg = t.data[t.data["model"] == "vgg16_small"]
    assert list(vgg["method"]) == [f"{c} r={r}" for r in (0.7, 0.5) for c in ("thinet", "weight_sum", "random")]
    d = t.data.set_index(["model", "method"])
    ws = d.loc[("vgg16_small", "weight_sum r=0.5")]
    # top-1 per seed 86, 88 against the unpruned mean 90.5 -> -4.5, -2.5
    assert ws["d_top1_mean"] == pytest.approx(-3.5)
    assert ws["d_top1_std"] == pytest.approx(math.sqrt(2.0))
    assert ws["d_top5_mean"] == pytest.approx(95.5 - 99.0)
    assert ws["params_reduction"] == pytest.approx(4.0)
    assert ws["flops_reduction"] == pytest.approx(2.0)
    r30 = d.loc[("resnet_small", "ThiNet-30")]
    assert r30["params_reduction"] == pytest.approx(300_000 / 90_000)
    assert r30["d_top1_mean"] == pytest.approx(85 + 1.5 - 91.0)
    assert math.isnan(r30["d_top1_std"])
    shown = t.display.set_index(["Network", "Method"])
    assert shown.loc[("fashion_mnist / vgg16_small", "thinet r=0.7"), "Top-1 change (pp)"] == "+0.50 ± 1.41"
    assert shown.loc[("fashion_mnist / vgg16_small", "weight_sum r=0.5"), "#Param. ↓ (×)"] == "4.00×"


def test_table3_lists_each_rate():
    t = build_table("table3_resnet", {"metrics": synthetic_metrics()}, ReportContext("default"))
    assert list(t.data["method"]) == ["Original", "ThiNet-70", "ThiNet-50", "ThiNet-30"]
    assert list(t.data["keep_ratio"]) == [1.0, 0.7, 0.5, 0.3]


def test_paper_columns_only_in_the_papers_setting():
    ours = build_table("table1_vgg", {"metrics": synthetic_metrics()}, ReportContext("default"))
    assert not [c for c in ours.data.columns if c.startswith("paper")]
    assert not [c for c in ours.display.columns if c.startswith("paper")]
    assert "fashion_mnist" in ours.title and "vgg16_small" in ours.title and "`default`" in ours.title

    metrics = synthetic_metrics("imagenet_vgg16", "imagenet", "vgg16", "resnet50_v1")
    t1 = build_table("table1_vgg", {"metrics": metrics}, ReportContext("imagenet_vgg16"))
    assert _by_method(t1).loc["Original", "paper_top1"] == pytest.approx(68.34)
    assert pd.isna(_by_method(t1).loc["thinet r=0.7", "paper_top1"])  # no such row in the paper
    assert "paper Top-1 (%)" in t1.display.columns and any("Table 1" in n for n in t1.notes)

    t2 = build_table("table2_criteria", {"metrics": metrics}, ReportContext("imagenet_vgg16")).data
    t2 = t2.set_index(["model", "method"])
    assert t2.loc[("vgg16", "weight_sum r=0.5"), "paper_row"] == "ThiNet-WS"
    assert t2.loc[("vgg16", "thinet r=0.5"), "paper_d_top1"] == pytest.approx(1.46)
    assert t2.loc[("vgg16", "thinet r=0.7"), "paper_row"] == ""  # the paper's Table 2 is at r = 0.5 only
    assert t2.loc[("resnet50_v1", "ThiNet-30"), "paper_row"] == ""

    t3 = build_table("table3_resnet", {"metrics": metrics}, ReportContext("imagenet_resnet50"))
    assert _by_method(t3).loc["ThiNet-70", "paper_top1"] == pytest.approx(72.04)
    assert _by_method(t3).loc["Original", "paper_params_M"] == pytest.approx(25.56)


def test_table4_transfer_rows_and_paper_values():
    rows = []
    for dataset in ("cub200", "indoor67"):
        for variant, crit, top1, params in (("Original", "", 70.0, 135e6), ("FT & prune", "thinet", 60.0, 8e6),
                                            ("ThiNet-GAP", "", 65.0, 8e6)):
            for seed in (0, 1):
                rows.append(_row(config="transfer", experiment=f"transfer_{dataset}", dataset=dataset, model="vgg16",
                                 variant=variant, criterion=crit, keep_ratio=1.0 if not crit else 0.5, seed=seed,
                                 phase="base" if variant == "Original" else "final", top1=top1 + seed, top5=90.0,
                                 params=params, flops=9e9))
    metrics = _through_csv(pd.DataFrame(rows, columns=list(METRICS_COLUMNS)))
    ctx = ReportContext("transfer", frozenset({"transfer_cub200", "transfer_indoor67"}))
    t = build_table("table4_transfer", {"metrics": metrics}, ctx)
    d = t.data.set_index(["dataset", "method"])
    assert len(d) == 6
    assert d.loc[("cub200", "Original"), "paper_top1"] == pytest.approx(72.30)  # the paper's "VGG-16" row
    assert d.loc[("indoor67", "FT & prune"), "paper_top1"] == pytest.approx(64.70)
    assert d.loc[("cub200", "ThiNet-GAP"), "top1_mean"] == pytest.approx(65.5)
    # transfer rows stay out of the other tables
    assert build_table("table2_criteria", {"metrics": metrics}, ctx).data.empty


def test_table2_without_unpruned_row_names_the_experiment():
    metrics = synthetic_metrics()
    metrics = metrics[metrics["phase"].ne("base")]
    with pytest.raises(ValueError, match="vgg_criteria/vgg16_small"):
        build_table("table2_criteria", {"metrics": metrics}, ReportContext("default"))


def test_paper_values_are_consistent_across_the_papers_tables():
    """Table 2's changes and factors follow from Table 1: catches a mistyped transcription."""
    t1, t2 = pv.PAPER_TABLE1, pv.PAPER_TABLE2
    for row in ("ThiNet-Conv", "ThiNet-GAP"):
        assert t2[row]["d_top1"] == pytest.approx(t1[row]["top1"] - t1["Original"]["top1"], abs=0.006)
        assert t2[row]["d_top5"] == pytest.approx(t1[row]["top5"] - t1["Original"]["top5"], abs=0.006)
        assert t2[row]["params_x"] == pytest.approx(t1["Original"]["params_M"] / t1[row]["params_M"], abs=0.006)
        assert t2[row]["flops_x"] == pytest.approx(t1["Original"]["flops_B"] / t1[row]["flops_B"], abs=0.006)
    assert pv.PAPER_TABLE3["ThiNet-50"]["params_M"] < pv.PAPER_TABLE3["ThiNet-70"]["params_M"]


# ---------------------------------------------------------------- inputs and files

def test_bad_inputs_name_the_culprit(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_metrics(tmp_path / "nowhere.csv")
    broken = tmp_path / "metrics.csv"
    synthetic_metrics().drop(columns=["flops"]).to_csv(broken, index=False)
    with pytest.raises(ValueError, match="flops"):
        read_metrics(broken)
    bad_phase = synthetic_metrics()
    bad_phase.loc[0, "phase"] = "halfway"
    bad_phase.to_csv(broken, index=False)
    with pytest.raises(ValueError, match="halfway"):
        read_metrics(broken)
    with pytest.raises(ValueError, match="table9"):
        build_table("table9", {}, ReportContext("x"))


def test_write_tables_files(tmp_path):
    metrics = tmp_path / "metrics.csv"
    synthetic_metrics().to_csv(metrics, index=False)
    arch = tmp_path / "arch_table.csv"
    arch.write_text("model,params_M,params_with_biases_M,flops_B,paper_params_M,paper_flops_B\nvgg16,138.36,138.38,30.95,138.34,30.94\n")
    out = tmp_path / "tables"
    written = write_tables(["table1_vgg", "arch_table"], {"metrics": metrics, "arch": arch}, out,
                           ReportContext("default"))
    assert sorted(os.listdir(out)) == sorted(f"{t}.{f}" for t in ("table1_vgg", "arch_table") for f in ("csv", "md", "html"))
    back = pd.read_csv(written["table1_vgg"]["csv"])
    assert list(back["method"]) == ["Original", "thinet r=0.7", "thinet r=0.5"]
    markdown = Path(written["table1_vgg"]["md"]).read_text()
    assert markdown.startswith("**Table 1.") and "| thinet r=0.5 |" in markdown
    assert "<table" in Path(written["arch_table"]["html"]).read_text()
    assert pd.read_csv(written["arch_table"]["csv"])["params_diff_pct"][0] == pytest.approx(100 * 0.02 / 138.34, rel=1e-4)
    # the config promised a transfer table but metrics.csv has none of its rows
    with pytest.raises(ValueError, match="table4_transfer"):
        write_tables(["table4_transfer"], {"metrics": metrics}, out, ReportContext("default"))


def test_figures_written_as_png_and_pdf(tmp_path):
    metrics, compare = tmp_path / "metrics.csv", tmp_path / "compare_layer.csv"
    synthetic_metrics().to_csv(metrics, index=False)
    synthetic_compare_layer("cub200", "vgg16_gap").to_csv(compare, index=False)
    names = ["fig4_layerwise", "tradeoff", "compare_layer"]
    written = write_figures(names, {"metrics": metrics, "compare_layer": compare}, tmp_path / "fig",
                            ReportContext("default"))
    for name in names:
        png, pdf = Path(written[name]["png"]), Path(written[name]["pdf"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
    no_steps = synthetic_metrics()
    no_steps = no_steps[no_steps["phase"].isin(["base", "final"])]
    no_steps.to_csv(metrics, index=False)
    with pytest.raises(ValueError, match="per-layer rows"):
        write_figures(["fig4_layerwise"], {"metrics": metrics}, tmp_path / "fig", ReportContext("default"))


def test_layerwise_curves_band_is_min_max_over_seeds():
    from thinet.report.figures.fig4_layerwise import layerwise_curves

    curves = layerwise_curves(synthetic_metrics())
    one = curves[(curves["series"] == "thinet") & (curves["keep_ratio"] == 0.5) & (curves["phase"] == "pruned")
                 & (curves["step"] == 1)].iloc[0]
    # 80 + 5 + 3 + seed - 1 - 5 for seeds 0, 1
    assert (one["min"], one["max"], one["mean"]) == (82.0, 83.0, 82.5)
    assert one["layer"] == "conv1_2"  # vgg16_small's features.3, named as in the paper


# ---------------------------------------------------------------- which outputs, and the Snakemake rules

TINY_CONFIG = {
    "name": "demo",
    "bases": {"vgg": {"model": "vgg16_small"}, "resnet": {"model": "resnet_small"}},
    "experiments": {
        "vgg_criteria": {"base": "vgg", "variants": [{"kind": "original"}, {"kind": "chain"}]},
        "resnet_thinet": {"base": "resnet", "variants": [{"kind": "original"}, {"kind": "chain"}]},
    },
    "compare_layer": {"base": "vgg", "layer": "conv1_1", "keep_ratio": 0.4},
}


def test_report_plan_follows_the_config():
    plan = report_plan(TINY_CONFIG)
    assert plan["tables"] == ["table1_vgg", "table2_criteria", "table3_resnet", "arch_table"]
    assert plan["figures"] == ["fig4_layerwise", "tradeoff", "compare_layer", "speedup_vs_flops"]
    transfer = {"name": "t", "bases": {"v": {"model": "vgg16"}},
                "experiments": {"cub": {"base": "v", "variants": [{"kind": "original"}, {"kind": "transfer"}]}}}
    assert report_plan(transfer) == {"tables": ["table4_transfer", "arch_table"],
                                     "figures": ["tradeoff", "speedup_vs_flops"]}
    # Nothing pruned and the architectures not timed: no speed-up to draw.
    unpruned = {**transfer, "experiments": {"e": {"base": "v", "variants": [{"kind": "original"}]}}}
    assert report_plan(unpruned)["figures"] == ["speedup_vs_flops"]
    assert report_plan({**unpruned, "arch_timing": None})["figures"] == []
    with pytest.raises(ValueError, match="experiments.vgg_criteria.base"):
        report_plan({**TINY_CONFIG, "bases": {}})


@pytest.mark.slow
def test_report_smk_runs_and_builds_the_html_report(tmp_path):
    """A tiny Snakefile including report.smk: dry run, real run on synthetic results, then --report."""
    snakemake = shutil.which("snakemake", path=os.path.dirname(sys.executable)) or shutil.which("snakemake")
    if snakemake is None:
        pytest.fail("snakemake is not installed next to the test interpreter")
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""
        configfile: "config.yaml"
        include: "{REPO / 'workflow' / 'rules' / 'report.smk'}"
        rule all:
            input: report_outputs(config["name"])
    """))
    results = tmp_path / "results" / "demo"
    results.mkdir(parents=True)
    synthetic_metrics().to_csv(results / "metrics.csv", index=False)
    synthetic_compare_layer().to_csv(results / "compare_layer.csv", index=False)
    (results / "arch_table.csv").write_text(
        "model,params_M,params_with_biases_M,flops_B,paper_params_M,paper_flops_B\nvgg16,138.36,138.38,30.95,138.34,30.94\n")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}

    def run(*args):
        done = subprocess.run([snakemake, "--cores", "1", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout + done.stderr

    dry = run("-n")
    assert "report_tables" in dry and "report_figures" in dry
    run()
    assert (results / "tables" / "table3_resnet.md").read_text().startswith("**Table 3.")
    assert (results / "figures" / "compare_layer.pdf").stat().st_size > 0
    run("--report", str(results / "report.html"))
    assert (results / "report.html").stat().st_size > 100_000


def test_speedup_figure_draws_the_timed_architectures_and_the_runs_models():
    from thinet.report import draw_figure, read_arch_table
    from thinet.report.figures.speedup import arch_points, run_points
    from thinet.types import ARCH_TABLE_COLUMNS, ARCH_TIMING_COLUMNS

    header = ",".join(ARCH_TABLE_COLUMNS + ARCH_TIMING_COLUMNS)
    timed = ("ThiNet-30,8.66,8.67,2.19,33.04,8.66,2.20,3.52,40.0,1.0,90.0,2.0,2.0,1.5,144.45,200.67,1.30,1.34,cpu,8,224,"
             "2,0,0")
    untimed = "ResNet-50,25.56,25.56,7.72,97.49,25.56,7.72" + "," * len(ARCH_TIMING_COLUMNS)
    arch = read_arch_table(io.StringIO(f"{header}\n{untimed}\n{timed}\n"))
    assert arch_points(arch)["label"].tolist() == ["ThiNet-30"]  # the untimed row has no point
    metrics = synthetic_metrics()
    points = run_points(metrics)
    assert len(points) and (points["flops_ratio"] > 1).all() and points["forward_speedup"].notna().all()
    fig = draw_figure("speedup_vs_flops", {"arch": arch, "metrics": metrics}, ReportContext("demo"))
    assert len(fig.axes) == 2
    table = build_table("arch_table", {"arch": arch}, ReportContext("demo"))
    assert table.display.loc[1, "speed-up f./b."] == "2.00×/1.50×" and table.display.loc[0, "f./b. (ms)"] == "—"
    assert table.display.loc[0, "speed-up f./b."] == "—" and table.display.loc[1, "IQR f./b. (ms)"] == "±1.00/±2.00"
