# One tidy table per config (schema in ARCHITECTURE.md): every evaluation row, per-step rows included.


rule aggregate_metrics:
    localrule: True
    input:
        evals=expand(f"{RESULTS}/eval/{{run}}.csv", run=PLAN.evaluated),
        steps=expand(f"{RESULTS}/chain/{{run}}/steps.csv", run=PLAN.of_kind("chain")),
        grouped=expand(f"{RESULTS}/grouped/{{run}}/steps.csv", run=PLAN.of_kind("grouped")),
    output:
        f"{RESULTS}/metrics.csv",
    log:
        f"{RESULTS}/logs/aggregate_metrics.log",
    shell:
        "{sys.executable} {SCRIPTS}/aggregate_metrics.py --out {output:q} --log {log:q}"
        " {input.evals:q} {input.steps:q} {input.grouped:q}"
