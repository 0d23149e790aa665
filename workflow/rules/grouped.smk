# One job per grouped run (gcos, TPAMI 2019, reconstructed, and its baselines: thinet/grouping): the source
# chain's model grouped from the chain's selection images, evaluated just after the conversion (a `pruned`
# row in steps.csv), fine-tuned with the variant's `train` schedule, then evaluated (its `final` row) by the
# same job, as a chain's job evaluates itself.


rule grouped_model:
    input:
        unpack(run_inputs),
        selection=lambda w: f"{RESULTS}/selection/{run_of(w)['selection']}.json",
    output:
        model=f"{RESULTS}/grouped/{{run}}/model.pt",
        steps=f"{RESULTS}/grouped/{{run}}/steps.csv",
        run_json=f"{RESULTS}/grouped/{{run}}/run.json",
        rows=f"{RESULTS}/eval/{{run}}.csv",
        eval_json=f"{RESULTS}/eval/{{run}}.json",
    wildcard_constraints:
        run=GROUPED_RUNS_PATTERN,
    threads: THREADS
    resources:
        gpu=GPUS,
    log:
        f"{RESULTS}/logs/grouped/{{run}}.log",
    shell:
        "{LAUNCH} {SCRIPTS}/grouped_model.py --spec {input.spec:q} --source {input.source:q}"
        " --selection {input.selection:q} --out {output.model:q} --eval-out {output.rows:q} --threads {threads}"
        " --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"
