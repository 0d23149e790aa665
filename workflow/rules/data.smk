# Data: verify every image of each dataset (generating it first for CI configs with a `fixture`
# entry) into the manifest every later job reads (results/<name>/data/<dataset>.json), then draw the
# selection subsets ThiNet samples from (N images per class, saved as indices).


rule prepare_data:
    output:
        data_marker("{dataset}"),
    params:
        dataset=lambda w: json.dumps({"name": w.dataset, **config["datasets"][w.dataset]}),
    log:
        f"{RESULTS}/logs/data/{{dataset}}.log",
    shell:
        "{sys.executable} {SCRIPTS}/prepare_data.py --dataset-json {params.dataset:q}"
        " --out {output:q} --log {log:q}"


rule selection_subset:
    input:
        lambda w: data_marker(PLAN.selections[w.sel]["dataset"]),
    output:
        f"{RESULTS}/selection/{{sel}}.json",
    params:
        spec=lambda w: json.dumps({**PLAN.selections[w.sel],
                                   "root": config["datasets"][PLAN.selections[w.sel]["dataset"]]["root"],
                                   "manifest": data_marker(PLAN.selections[w.sel]["dataset"]),
                                   "image_size": config["datasets"][PLAN.selections[w.sel]["dataset"]].get("image_size")}),
    log:
        f"{RESULTS}/logs/selection/{{sel}}.log",
    shell:
        "{sys.executable} {SCRIPTS}/make_selection.py --spec-json {params.spec:q}"
        " --out {output:q} --log {log:q}"
