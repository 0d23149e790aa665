# Evaluation of every reported run but the chains (top-1/top-5 on the evaluation split, params,
# FLOPs, forward/backward time), logged into the run's MLflow run with the final model (a chain's
# job evaluates its own model the same way: rule prune_chain); and the §4.1 single-layer
# criterion comparison.


rule evaluate:
    input:
        spec=lambda w: spec_path(w.run),
        model=lambda w: model_path(w.run),
        run_json=lambda w: f"{run_dir(w.run)}/run.json",
        data=lambda w: data_marker(run_of(w)["dataset"]),
        mlflow=ancient(MLFLOW_MARKER),
    output:
        rows=f"{RESULTS}/eval/{{run}}.csv",
        run_json=f"{RESULTS}/eval/{{run}}.json",
    wildcard_constraints:
        run=OTHER_RUNS_PATTERN,
    threads: THREADS
    resources:
        gpu=min(GPUS, 1),
    log:
        f"{RESULTS}/logs/eval/{{run}}.log",
    shell:
        "{sys.executable} {SCRIPTS}/evaluate_run.py --spec {input.spec:q} --model {input.model:q}"
        " --source-run {input.run_json:q} --out {output.rows:q} --threads {threads} --log {log:q}"


rule compare_layer:
    """Paper §4.1: prune one layer of the base model with every criterion, no fine-tuning."""
    input:
        spec=COMPARE_LAYER_SPEC,
        model=lambda w: model_path(PLAN.compare_layer["after"]),
        data=lambda w: data_marker(PLAN.runs[PLAN.compare_layer["after"]]["dataset"]),
    output:
        csv=f"{RESULTS}/compare_layer.csv",
        md=f"{RESULTS}/compare_layer.md",
    threads: THREADS
    resources:
        gpu=min(GPUS, 1),
    log:
        f"{RESULTS}/logs/compare_layer.log",
    shell:
        "{sys.executable} {SCRIPTS}/compare_layer.py --spec {input.spec:q} --model {input.model:q}"
        " --out-csv {output.csv:q} --out-md {output.md:q} --threads {threads} --log {log:q}"
