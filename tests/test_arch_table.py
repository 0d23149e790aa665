"""`thinet arch-table`: #Param/#FLOPs of the paper's recipes by real surgery, vs. Tables 1 and 3."""
from __future__ import annotations

import csv
import math

import pytest

import thinet.experiment as arch_table_module
from thinet.experiment import FORMATS, RECIPES, TimingPlan, arch_table, build_recipe
from thinet.cli import main
from thinet.runtime import count_flops, count_params
from thinet.types import ARCH_TABLE_COLUMNS, ARCH_TIMING_COLUMNS

ROWS = ["VGG-16", "ThiNet-Conv", "ThiNet-GAP", "ThiNet-Tiny", "ThiNet-Tiny gcos g=2", "ThiNet-Tiny gcos g=4",
        "ResNet-50", "ThiNet-70", "ThiNet-50", "ThiNet-30"]
# The rows with the paper's own counts (the gcos rows have none: the journal gives only a size).
PAPER_ROWS = [r for r in ROWS if "gcos" not in r]


@pytest.fixture(scope="module")
def measured() -> list[dict]:
    return arch_table()


def test_params_in_the_papers_convention_read_the_papers_numbers(measured):
    # #Param without conv/linear biases: all eight rows of Tables 1 and 3, to the paper's two decimals
    # (the bias-inclusive count reads VGG-16 138.36M and ThiNet-70 16.95M).
    paper = [r for r in measured if r["model"] in PAPER_ROWS]
    assert {r["model"]: round(r["params_M"], 2) for r in paper} == {r["model"]: r["paper_params_M"] for r in paper}
    vgg = measured[0]
    assert round(vgg["params_with_biases_M"], 2) == 138.36 and vgg["params_with_biases_M"] > vgg["params_M"]


def test_every_row_within_half_a_percent_of_the_paper(measured):
    assert [r["model"] for r in measured] == ROWS
    for row in (r for r in measured if r["model"] in PAPER_ROWS):
        for ours, paper in (("params_M", "paper_params_M"), ("flops_B", "paper_flops_B")):
            assert abs(row[ours] / row[paper] - 1) <= 0.005, f"{row['model']} {ours}: {row[ours]:.4f} vs {row[paper]}"


def test_cli_writes_csv_atomically(measured, tmp_path, monkeypatch):
    monkeypatch.setattr(arch_table_module, "arch_table", lambda *args, **kwargs: measured)  # counted once, in the fixture
    out = tmp_path / "sub" / "table.csv"
    assert main(["arch-table", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "model,params_M,params_with_biases_M,flops_B,size_MB,paper_params_M,paper_flops_B"
    rows = list(csv.DictReader(lines))
    assert [r["model"] for r in rows] == ROWS
    # exact counts in the CSV (a Δ % from rounded values is wrong: ThiNet-Tiny 0.00 % instead of +0.24 %)
    assert rows[0]["paper_flops_B"] == "30.940000" and rows[0]["flops_B"] == f"{measured[0]['flops_B']:.6f}"
    assert float(rows[0]["params_M"]) * 1e6 == pytest.approx(138_344_128, abs=0.5)
    assert [p.name for p in out.parent.iterdir()] == ["table.csv"]  # no temporary file left behind


def test_markdown_format_to_stdout(measured, capsys, monkeypatch):
    monkeypatch.setattr(arch_table_module, "arch_table", lambda *args, **kwargs: measured)
    assert main(["arch-table", "--format", "md"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| model | params_M | params_with_biases_M | flops_B | size_MB | paper_params_M | paper_flops_B |"
    assert len(lines) == 2 + len(ROWS) and lines[5].startswith("| ThiNet-Tiny | ")


def test_meta_device_counts_equal_real_tensors():
    recipe = next(r for r in RECIPES if r.name == "ThiNet-30")
    real, meta = build_recipe(recipe, "cpu"), build_recipe(recipe, "meta")
    assert count_params(real) == count_params(meta)
    assert count_flops(real, (3, 224, 224)) == count_flops(meta, (3, 224, 224))


def test_unknown_row_is_rejected():
    with pytest.raises(ValueError, match="ThiNet-99"):
        arch_table(["ThiNet-99"])


def test_timing_columns_time_the_row_and_its_original():
    # Small input and batch: seconds on a CPU. ThiNet-Tiny has ~1/15 of VGG-16's FLOPs, so it is faster
    # whatever the machine's load; VGG-16, its original, is timed though it is not a requested row.
    plan = TimingPlan(batch_size=1, image_size=32, rounds=1, min_run_time=0.01, threads=1, rows=("ThiNet-Tiny",))
    row, untimed = arch_table(["ThiNet-Tiny", "ThiNet-30"], timing=plan)
    assert untimed["model"] == "ThiNet-30" and untimed["forward_ms"] is None  # not in plan.rows
    assert row["model"] == "ThiNet-Tiny" and row["flops_ratio"] == pytest.approx(30.94 / 2.01, rel=0.01)
    assert row["forward_speedup"] > 1 and row["backward_speedup"] > 1
    assert row["forward_iqr_ms"] >= 0 and row["timing_threads"] == 1 and row["timing_image_size"] == 32
    assert round(row["paper_forward_speedup"], 2) == 6.44 and round(row["paper_backward_speedup"], 2) == 7.30
    lines = FORMATS["csv"]([row, untimed]).splitlines()
    assert lines[0].split(",") == list(ARCH_TABLE_COLUMNS + ARCH_TIMING_COLUMNS)
    assert lines[2].endswith("," * len(ARCH_TIMING_COLUMNS))  # empty timing cells


def test_a_timed_row_the_paper_never_timed_has_no_paper_time():
    # The gcos rows (the TPAMI version's, reconstructed) have no time in the paper: NaN, and the timing
    # of every row (a CI fixture config times them all) must not stop on them.
    plan = TimingPlan(batch_size=1, image_size=32, rounds=1, min_run_time=0.01, threads=1)
    (row,) = arch_table(["ThiNet-Tiny gcos g=2"], timing=plan)
    assert row["forward_ms"] > 0 and row["forward_speedup"] > 1
    assert math.isnan(row["paper_forward_ms"]) and math.isnan(row["paper_backward_speedup"])


def test_timing_on_a_missing_gpu_fails_before_anything_is_built(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(arch_table_module, "arch_table", lambda *a, **k: pytest.fail("built before the check"))
    assert main(["arch-table", "--timing", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_model_size_and_the_gcos_rows(measured):
    # §4.2: ThiNet-Tiny "only takes 5.05MB disk space (1MB=2^20 bytes)"; gcos groups every conv but conv1_1
    # (3 input channels) into g groups: those weights shrink g-fold, the classifier (256 -> 1000) stays.
    rows = {r["model"]: r for r in measured}
    tiny = rows["ThiNet-Tiny"]
    assert round(tiny["size_MB"], 2) == 5.05 and tiny["size_MB"] == pytest.approx(tiny["params_M"] * 4e6 / 2**20)
    conv1_1, classifier = 3 * 16 * 9, 256 * 1000
    grouped_convs = tiny["params_M"] * 1e6 - conv1_1 - classifier
    for g in (2, 4):
        row = rows[f"ThiNet-Tiny gcos g={g}"]
        assert row["params_M"] * 1e6 == pytest.approx(conv1_1 + classifier + grouped_convs / g, abs=0.5)
        assert row["paper_params_M"] is None and row["size_MB"] == pytest.approx(row["params_M"] * 4e6 / 2**20)
    assert rows["ThiNet-Tiny gcos g=4"]["size_MB"] < 2.66 < rows["ThiNet-Tiny gcos g=2"]["size_MB"]


def test_an_arch_table_written_before_the_size_column_still_reads():
    import io

    from thinet.report import ReportContext, build_table, read_arch_table

    old = "model,params_M,params_with_biases_M,flops_B,paper_params_M,paper_flops_B\nThiNet-Tiny,1.323184,1.325368,2.0,1.32,2.01\n"
    arch = read_arch_table(io.StringIO(old))
    assert list(arch.columns) == list(ARCH_TABLE_COLUMNS) and round(float(arch.loc[0, "size_MB"]), 2) == 5.05
    assert build_table("arch_table", {"arch": arch}, ReportContext("x")).display.loc[0, "Size (MB)"] == "5.05"


def test_a_batch_batchnorm_cannot_train_on_is_refused_before_any_network_is_built(monkeypatch):
    # ResNet-50 at 32x32 ends in 1x1 maps: with one image its last BatchNorm sees one value per channel and
    # its backward pass fails after every network was built and timed forward (found in CI's override).
    import thinet.experiment._arch_timing as timing

    monkeypatch.setattr(timing, "time_models", lambda *a, **k: pytest.fail("timed before the check"))
    rows = arch_table(["ThiNet-30"])
    with pytest.raises(ValueError, match=r"batch_size 1 at image_size 32 .*BatchNorm"):
        timing.add_timing(rows, {"ThiNet-30": "ResNet-50"}, lambda *a: pytest.fail("built before the check"),
                          TimingPlan(batch_size=1, image_size=32))
    assert timing.timing_shape_problem(2, 32) is None
    assert timing.timing_shape_problem(1, 64) is None  # 2x2 maps
    vgg = arch_table(["ThiNet-Tiny"])  # no BatchNorm: one image at 32x32 is fine
    monkeypatch.setattr(timing, "time_models", lambda models, *a, **k: {n: dict.fromkeys(
        ["forward_ms", "forward_iqr_ms", "backward_ms", "backward_iqr_ms", "threads"], 1.0) for n in models})
    timing.add_timing(vgg, {"ThiNet-Tiny": "VGG-16"}, lambda *a: None, TimingPlan(batch_size=1, image_size=32))


def test_the_config_key_arch_timing_names_the_batch_it_cannot_train_on(smoke_raw, load_raw):
    from thinet.experiment import ConfigError

    smoke_raw["arch_timing"] = {"rows": ["ThiNet-30"], "batch_size": 1, "image_size": 32}
    with pytest.raises(ConfigError, match=r"config key 'arch_timing': batch_size 1 at image_size 32"):
        load_raw(smoke_raw)
