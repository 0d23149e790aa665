# Evaluation of every reported run (top-1/top-5 on the evaluation split, params, FLOPs,
# forward/backward time), logged into the run's MLflow run with the final model; and the
# §4.1 single-layer criterion comparison.


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
        model=lambda w: model_path(PLAN.compare_layer["after"]),
        data=lambda w: data_marker(PLAN.runs[PLAN.compare_layer["after"]]["dataset"]),
    output:
        csv=f"{RESULTS}/compare_layer.csv",
        md=f"{RESULTS}/compare_layer.md",
    params:
        cmp=lambda w: PLAN.compare_layer,
        model=lambda w: PLAN.runs[PLAN.compare_layer["after"]]["model"],
        dataset=lambda w: PLAN.runs[PLAN.compare_layer["after"]]["dataset"],
        root=lambda w: config["datasets"][PLAN.runs[PLAN.compare_layer["after"]]["dataset"]]["root"],
        criteria=lambda w: ",".join(PLAN.compare_layer["criteria"]),
        modules=lambda w: " ".join(f"--criteria-module {m!r}" for m in config["criteria_modules"]),
        eval_images=lambda w: (f"--eval-max-images {config['data']['final_eval_images']}"
                               if config["data"]["final_eval_images"] else ""),
        device=lambda w: "" if config["device"] == "auto" else f"--device {config['device']}",
    threads: THREADS
    resources:
        gpu=min(GPUS, 1),
    log:
        f"{RESULTS}/logs/compare_layer.log",
    shell:
        "OMP_NUM_THREADS={threads} {sys.executable} -m thinet compare-layer --model {params.model:q}"
        " --checkpoint {input.model:q} --dataset {params.dataset} --data-root {params.root:q}"
        " --layer {params.cmp[layer]:q} --keep-ratio {params.cmp[keep_ratio]} --criteria {params.criteria} {params.modules}"
        " --per-class {config[selection][per_class]} --samples-per-image {config[selection][samples_per_image]}"
        " --seed {params.cmp[seed]} {params.eval_images} {params.device} --config {NAME}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"
