# One job per (model, criterion, rate, seed): the layer-by-layer chain prune -> fine-tune with one
# checkpoint per layer in results/<name>/work/<run>-<hash>/ (not an output: a killed job restarts
# at the first unfinished layer), then the final fine-tune; the job then evaluates the final model
# as rule evaluate does for the other runs (one process start per chain instead of two).


rule prune_chain:
    input:
        unpack(run_inputs),
        selection=lambda w: f"{RESULTS}/selection/{run_of(w)['selection']}.json",
    output:
        model=f"{RESULTS}/chain/{{run}}/model.pt",
        steps=f"{RESULTS}/chain/{{run}}/steps.csv",
        run_json=f"{RESULTS}/chain/{{run}}/run.json",
        rows=f"{RESULTS}/eval/{{run}}.csv",
        eval_json=f"{RESULTS}/eval/{{run}}.json",
    wildcard_constraints:
        run=CHAIN_RUNS_PATTERN,
    threads: THREADS
    resources:
        gpu=GPUS,
    log:
        f"{RESULTS}/logs/chain/{{run}}.log",
    shell:
        "{LAUNCH} {SCRIPTS}/prune_chain.py --spec {input.spec:q} --source {input.source:q} --selection {input.selection:q}"
        " --out {output.model:q} --eval-out {output.rows:q} --threads {threads} --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"
