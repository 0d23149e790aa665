# Training jobs that are not pruning chains: base models (from scratch, pretrained or a
# checkpoint), and the variants that start from another model: GAP head (`gap`), the same
# architecture from random init (`scratch`), a checkpoint carried to a new dataset (`transfer`).


def run_inputs(wildcards):
    run = run_of(wildcards)
    inputs = {"spec": spec_path(wildcards.run), "data": data_marker(run["dataset"]),
              "mlflow": ancient(MLFLOW_MARKER)}
    if run.get("after"):
        inputs["source"] = model_path(run["after"])
    if run["kind"] == "transfer" or (run["kind"] == "base" and run.get("checkpoint")) or run.get("kept"):
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


def kept_inputs(run_id):
    # A kept model is retrained only on request (--forcerun) or when it is missing: its one input is the
    # spec written while parsing, as ancient(), so a fresh clone's newer spec does not count. No input
    # produced by a job (the data step): Snakemake reruns whatever such a job feeds, ancient or not;
    # except for a generated fixture dataset (CI), which exists only once the data step has made it.
    inputs = {"spec": ancient(spec_path(run_id))}
    dataset = PLAN.runs[run_id]["dataset"]
    if "fixture" in config["datasets"][dataset]:
        inputs["data"] = data_marker(dataset)
    return inputs


rule pretrain_base:
    input:
        unpack(lambda w: kept_inputs(f"base-{w.base}")),
    output:
        model=f"{MODELS_DIR}/{{base}}.pt",
        record=f"{MODELS_DIR}/{{base}}.json",
    wildcard_constraints:
        base="|".join(PRETRAINED_BASES) or "(?!x)x",  # no base is kept: the rule matches nothing
    threads: THREADS
    log:
        f"{MODELS_DIR}/{{base}}.log",
    shell:
        "{sys.executable} {SCRIPTS}/pretrain_base.py --spec {input.spec:q} --out {output.model:q}"
        " --threads {threads} --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"


# Table 1's Train from scratch, when `kept`: trained once like the bases (its budget is the base's), so
# the default run loads it instead of spending the base's training time again.
rule pretrain_scratch:
    input:
        unpack(lambda w: kept_inputs(w.run)),
    output:
        model=f"{MODELS_DIR}/{{run}}.pt",
        record=f"{MODELS_DIR}/{{run}}.json",
    wildcard_constraints:
        run="|".join(KEPT_SCRATCH) or "(?!x)x",  # no kept scratch variant: the rule matches nothing
    threads: THREADS
    log:
        f"{MODELS_DIR}/{{run}}.log",
    shell:
        "{sys.executable} {SCRIPTS}/pretrain_base.py --spec {input.spec:q} --out {output.model:q}"
        " --threads {threads} --checkpoint-minutes {CHECKPOINT_MINUTES} --log {log:q}"


# Not part of `all` (it costs as much as the base's own training): ask for it by name,
# `snakemake --cores all results/default/bases/vgg_converged.json`.
rule check_base_converged:
    input:
        spec=ancient(spec_path("base-{base}")),
        model=f"{MODELS_DIR}/{{base}}.pt",
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
