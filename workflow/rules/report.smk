# The paper's tables and figures for config["name"], and the HTML report:
#   snakemake --cores all                                   (tables + figures are part of `all`)
#   snakemake --report results/<name>/report.html           (every table and figure, with captions)
# Which tables/figures a config yields, the files they read, their report sections and captions all
# come from their declarations (one module per output in thinet/report/tables/ and figures/).
import json
import os
import shlex
import sys

from thinet.report import (
    FIGURE_FORMATS, TABLE_FORMATS, finetune_budgets, report_inputs, report_plan, report_section, transfer_experiments,
    write_captions,
)

REPORT_NAME = config["name"]
REPORT_RESULTS = f"results/{REPORT_NAME}"
REPORT_PLAN = report_plan(config)
REPORT_FORMATS = {"tables": TABLE_FORMATS, "figures": FIGURE_FORMATS}
# Relative to this file, so a Snakefile elsewhere (tests) can include it.
REPORT_SCRIPTS = os.path.normpath(os.path.join(workflow.current_basedir, "..", "scripts"))
# report() wants a caption *file*: the declared captions are written while the workflow is parsed
# (only those that changed, so their mtimes stay put), as absolute paths (Snakemake joins a relative
# caption path to this file's folder).
REPORT_CAPTIONS = write_captions(REPORT_PLAN["tables"] + REPORT_PLAN["figures"], f"{REPORT_RESULTS}/report_captions")

report: "../report/workflow.rst"


def report_outputs(name):
    """Every table and figure file of config `name` (the config loaded in this workflow)."""
    return [f"results/{name}/{kind}/{output}.{fmt}"
            for kind, formats in REPORT_FORMATS.items() for output in REPORT_PLAN[kind] for fmt in formats]


def _reported(kind, name, fmt):
    category, subcategory = report_section(name)
    return report(f"{REPORT_RESULTS}/{kind}/{name}.{fmt}", caption=REPORT_CAPTIONS[name], category=category,
                  subcategory=subcategory, labels={kind.removesuffix("s"): name, "format": fmt})


def _report_inputs(kind):
    """{source: path} of the result files the planned outputs of `kind` are computed from."""
    return {source: f"{REPORT_RESULTS}/{file}" for source, file in report_inputs(REPORT_PLAN[kind]).items()}


def _refused():
    """The criteria the plan left out (common.smk's PLAN.refused); none where this file runs alone (tests)."""
    plan = globals().get("PLAN")
    return [[r.experiment, r.criterion, r.layer, r.reason] for r in getattr(plan, "refused", [])]


def _report_args(kind):
    """The arguments of report_outputs.py for the planned outputs of `kind` ('tables' or 'figures')."""
    args = ["--what", kind, "--config", REPORT_NAME, "--out-dir", f"{REPORT_RESULTS}/{kind}",
            "--names", *REPORT_PLAN[kind], "--transfer", *sorted(transfer_experiments(config)),
            "--timing-batch-size", str((config.get("data") or {}).get("timing_batch_size", 32)),
            "--statistics", json.dumps(config.get("statistics") or {}, sort_keys=True),
            "--budgets", json.dumps(finetune_budgets(config)), "--refused", json.dumps(_refused())]
    for source, path in _report_inputs(kind).items():
        args += [f"--{source.replace('_', '-')}", path]
    return shlex.join(args)


def _arch_timing_args():
    """The timing flags of the arch-table job: the config's `arch_timing` on its `device` (none when null)."""
    timing = config.get("arch_timing")
    if timing is None:
        return ""
    return shlex.join(["--timing", json.dumps(timing, sort_keys=True), "--device", config.get("device", "auto")])


rule arch_table:
    """Parameters and FLOPs of every model (and with `arch_timing` their f./b. ms), beside the paper's."""
    output:
        f"{REPORT_RESULTS}/arch_table.csv",
    params:
        timing=_arch_timing_args(),
    threads: config.get("threads", 1)  # this file stands alone (tests include it without common.smk)
    resources:
        gpu=min(config.get("gpus", 0), 1),
    log:
        f"{REPORT_RESULTS}/logs/arch_table.log",
    shell:
        "{sys.executable} {REPORT_SCRIPTS}/arch_table.py --out {output:q} {params.timing} --threads {threads}"
        " --log {log:q}"


# report_tables (CSV for the numbers, Markdown, HTML) and report_figures (PNG, PDF). Everything a rule
# needs is computed here, not in lambdas: the loop variable would be read after the loop.
for _kind in ("tables", "figures"):
    if not REPORT_PLAN[_kind]:
        continue  # a config without pruning or comparison has no figures

    rule:
        name:
            f"report_{_kind}"
        input:
            **_report_inputs(_kind),
        output:
            [_reported(_kind, name, fmt) for name in REPORT_PLAN[_kind] for fmt in REPORT_FORMATS[_kind]],
        params:
            args=_report_args(_kind),
        log:
            f"{REPORT_RESULTS}/logs/report_{_kind}.log",
        shell:
            "{sys.executable} {REPORT_SCRIPTS}/report_outputs.py {params.args} > {log:q} 2>&1"
