# Training jobs that are not pruning chains: base models (from scratch, pretrained or a
# checkpoint), and the variants that start from another model: GAP head (`gap`), the same
# architecture from random init (`scratch`), a checkpoint carried to a new dataset (`transfer`).


def run_inputs(wildcards):
    run = run_of(wildcards)
    inputs = {"spec": spec_path(wildcards.run), "data": data_marker(run["dataset"]),
              "mlflow": ancient(MLFLOW_MARKER)}
    if run.get("after"):
        inputs["source"] = model_path(run["after"])
    if run["kind"] == "transfer" or (run["kind"] == "base" and run.get("checkpoint")):
        inputs["checkpoint"] = run["checkpoint"]
    return inputs


rule base_model:
    input:
        unpack(run_inputs),
    output:
        model=f"{RESULTS}/base/{{run}}/model.pt",
        run_json=f"{RESULTS}/base/{{run}}/run.json",
    threads: THREADS
    resources:
        gpu=GPUS,
    log:
        f"{RESULTS}/logs/base/{{run}}.log",
    shell:
        "{LAUNCH} {SCRIPTS}/train_model.py --spec {input.spec:q} --out {output.model:q}"
        " --threads {threads} --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"


rule finetune_variant:
    input:
        unpack(run_inputs),
    output:
        model=f"{RESULTS}/{{kind}}/{{run}}/model.pt",
        run_json=f"{RESULTS}/{{kind}}/{{run}}/run.json",
    wildcard_constraints:
        kind="gap|scratch|transfer",
    threads: THREADS
    resources:
        gpu=GPUS,
    log:
        f"{RESULTS}/logs/{{kind}}/{{run}}.log",
    params:
        source=lambda w, input: f"--source {input.source}" if "source" in input.keys() else "",
    shell:
        "{LAUNCH} {SCRIPTS}/train_model.py --spec {input.spec:q} --out {output.model:q} {params.source}"
        " --threads {threads} --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"


def pretrain_inputs(wildcards):
    # A kept base is retrained only on request (--forcerun pretrain_base) or when it is missing: its one
    # input is the spec written while parsing, as ancient(), so a fresh clone's newer spec does not count.
    # No input produced by a job (the data step): Snakemake reruns whatever such a job feeds, ancient or not.
    return {"spec": ancient(spec_path(f"base-{wildcards.base}"))}


rule pretrain_base:
    input:
        unpack(pretrain_inputs),
    output:
        model=f"models/{NAME}/{{base}}.pt",
        record=f"models/{NAME}/{{base}}.json",
    wildcard_constraints:
        base="|".join(PRETRAINED_BASES) or "(?!x)x",  # no base is kept: the rule matches nothing
    threads: THREADS
    log:
        f"models/{NAME}/{{base}}.log",
    shell:
        "{sys.executable} {SCRIPTS}/pretrain_base.py --spec {input.spec:q} --out {output.model:q}"
        " --threads {threads} --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"


# Not part of `all` (it costs as much as the base's own training): ask for it by name,
# `snakemake --cores all results/default/bases/vgg_converged.json`.
rule check_base_converged:
    input:
        spec=ancient(spec_path("base-{base}")),
        model=f"models/{NAME}/{{base}}.pt",
    output:
        f"{RESULTS}/bases/{{base}}_converged.json",
    wildcard_constraints:
        base="|".join(PRETRAINED_BASES) or "(?!x)x",
    threads: THREADS
    log:
        f"{RESULTS}/logs/bases/{{base}}_converged.log",
    shell:
        "{sys.executable} {SCRIPTS}/check_base_converged.py --spec {input.spec:q} --model {input.model:q}"
        " --out {output:q} --threads {threads} --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"
