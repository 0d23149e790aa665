# The paper's tables and figures for config["name"], and the HTML report:
#   snakemake --cores all                                   (tables + figures are part of `all`)
#   snakemake --report results/<name>/report.html           (every table and figure, with captions)
# Which tables/figures a config yields is decided from the config alone (thinet.report.outputs).
import os
import sys

from thinet.report.outputs import report_plan, transfer_experiments
from thinet.report.style import FIGURE_FORMATS
from thinet.report.table import TABLE_FORMATS

REPORT_NAME = config["name"]
REPORT_RESULTS = f"results/{REPORT_NAME}"
REPORT_PLAN = report_plan(config)
# Relative to this file, so a Snakefile elsewhere (tests) can include it.
REPORT_SCRIPTS = os.path.normpath(os.path.join(workflow.current_basedir, "..", "scripts"))

# (category, subcategory) of each output in the HTML report; captions are workflow/report/<name>.rst.
REPORT_SECTIONS = {
    "table1_vgg": ("Tables", "Table 1: VGG-16 family"),
    "table2_criteria": ("Tables", "Table 2: criteria compared"),
    "table3_resnet": ("Tables", "Table 3: ResNet family"),
    "table4_transfer": ("Tables", "Table 4: transfer strategies"),
    "arch_table": ("Tables", "Architectures"),
    "fig4_layerwise": ("Figures", "Figure 4: layer by layer"),
    "tradeoff": ("Figures", "Accuracy vs FLOPs and parameters"),
    "compare_layer": ("Figures", "Single-layer comparison (4.1)"),
}

report: "../report/workflow.rst"


def report_outputs(name):
    """Every table and figure file of config `name` (the config loaded in this workflow)."""
    base = f"results/{name}"
    tables = [f"{base}/tables/{t}.{fmt}" for t in REPORT_PLAN["tables"] for fmt in TABLE_FORMATS]
    figures = [f"{base}/figures/{f}.{fmt}" for f in REPORT_PLAN["figures"] for fmt in FIGURE_FORMATS]
    return tables + figures


def _reported(kind, name, fmt):
    folder = "tables" if kind == "table" else "figures"
    category, subcategory = REPORT_SECTIONS[name]
    return report(f"{REPORT_RESULTS}/{folder}/{name}.{fmt}", caption=f"../report/{name}.rst",
                  category=category, subcategory=subcategory, labels={kind: name, "format": fmt})


rule arch_table:
    """Parameters and FLOPs of every model, beside the paper's (`thinet arch-table`)."""
    output:
        f"{REPORT_RESULTS}/arch_table.csv",
    log:
        f"{REPORT_RESULTS}/logs/arch_table.log",
    shell:
        "{sys.executable} -m thinet arch-table --out {output:q} > {log:q} 2>&1"


rule report_tables:
    """Tables 1-4 and the architecture table, as CSV (numbers), Markdown and HTML."""
    input:
        metrics=f"{REPORT_RESULTS}/metrics.csv",
        arch=f"{REPORT_RESULTS}/arch_table.csv",
    output:
        [_reported("table", t, fmt) for t in REPORT_PLAN["tables"] for fmt in TABLE_FORMATS],
    params:
        tables=" ".join(REPORT_PLAN["tables"]),
        transfer=" ".join(sorted(transfer_experiments(config))),
        timing_batch=(config.get("data") or {}).get("timing_batch_size", 32),
    log:
        f"{REPORT_RESULTS}/logs/report_tables.log",
    shell:
        "{sys.executable} {REPORT_SCRIPTS}/report_tables.py --config {REPORT_NAME} --out-dir {REPORT_RESULTS}/tables"
        " --metrics {input.metrics:q} --arch {input.arch:q} --tables {params.tables} --transfer {params.transfer}"
        " --timing-batch-size {params.timing_batch}"
        " > {log:q} 2>&1"


if REPORT_PLAN["figures"]:  # a config without pruning or comparison has no figures

    rule report_figures:
        """Figure 4, the accuracy/FLOPs/parameter trade-off and the single-layer comparison (PNG and PDF)."""
        input:
            metrics=f"{REPORT_RESULTS}/metrics.csv",
            compare_layer=[f"{REPORT_RESULTS}/compare_layer.csv"] if "compare_layer" in REPORT_PLAN["figures"] else [],
        output:
            [_reported("figure", f, fmt) for f in REPORT_PLAN["figures"] for fmt in FIGURE_FORMATS],
        params:
            figures=" ".join(REPORT_PLAN["figures"]),
            compare_layer=lambda wildcards, input: f"--compare-layer {input.compare_layer}" if input.compare_layer else "",
        log:
            f"{REPORT_RESULTS}/logs/report_figures.log",
        shell:
            "{sys.executable} {REPORT_SCRIPTS}/report_figures.py --config {REPORT_NAME} --out-dir {REPORT_RESULTS}/figures"
            " --metrics {input.metrics:q} {params.compare_layer} --figures {params.figures} > {log:q} 2>&1"
