# One tidy table per config (schema in ARCHITECTURE.md): every evaluation row, per-step rows included; and
# runs.csv beside it (each evaluated run's id, settings hash and row identity: what `reuse` reads later).
# Runs reused from an earlier run (config key `reuse`, common.smk's REUSED) are not inputs: their rows
# come from the earlier metrics.csv.


def _computed(kind=None):
    runs = PLAN.evaluated if kind is None else PLAN.of_kind(kind)
    return [r for r in runs if r not in REUSED]


rule aggregate_metrics:
    localrule: True
    input:
        evals=expand(f"{RESULTS}/eval/{{run}}.csv", run=_computed()),
        steps=expand(f"{RESULTS}/chain/{{run}}/steps.csv", run=_computed("chain")),
        grouped=expand(f"{RESULTS}/grouped/{{run}}/steps.csv", run=_computed("grouped")),
        specs=[spec_path(r) for r in PLAN.evaluated],
        reuse=[REUSE["metrics"]] if REUSE else [],
    output:
        metrics=f"{RESULTS}/metrics.csv",
        runs=f"{RESULTS}/runs.csv",
    params:
        reused=lambda w: [spec_path(r) for r in PLAN.evaluated if r in REUSED],
    log:
        f"{RESULTS}/logs/aggregate_metrics.log",
    shell:
        "{sys.executable} {SCRIPTS}/aggregate_metrics.py --out {output.metrics:q} --runs-out {output.runs:q}"
        " --log {log:q} --specs {input.specs:q}"
        + (" --reuse-metrics {input.reuse:q} --reused {params.reused:q}" if REUSE else "")
        + " -- {input.evals:q} {input.steps:q} {input.grouped:q}"
