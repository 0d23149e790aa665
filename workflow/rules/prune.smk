# One job per (model, criterion, rate, seed): the layer-by-layer chain prune -> fine-tune with one
# checkpoint per layer in results/<name>/work/<run>-<hash>/ (not an output: a killed job restarts
# at the first unfinished layer), then the final fine-tune.


rule prune_chain:
    input:
        unpack(run_inputs),
        selection=lambda w: f"{RESULTS}/selection/{run_of(w)['selection']}.json",
    output:
        model=f"{RESULTS}/chain/{{run}}/model.pt",
        steps=f"{RESULTS}/chain/{{run}}/steps.csv",
        run_json=f"{RESULTS}/chain/{{run}}/run.json",
    threads: THREADS
    resources:
        gpu=GPUS,
    log:
        f"{RESULTS}/logs/chain/{{run}}.log",
    shell:
        "{LAUNCH} {SCRIPTS}/prune_chain.py --spec {input.spec:q} --source {input.source:q} --selection {input.selection:q}"
        " --out {output.model:q} --threads {threads} --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"
