# The MLflow store is created once, before any training job: concurrent first use of a fresh
# sqlite store races on its schema migration. Jobs take the marker as ancient() input, so the
# store changing under them (every run writes to it) never makes Snakemake rerun anything.
# MLFLOW_TRACKING_URI in the environment points everything at a tracking server instead.


rule mlflow_store:
    localrule: True  # on a cluster: the store is created from the submit host
    output:
        MLFLOW_MARKER,
    params:
        experiment=config["mlflow"].get("experiment") or f"thinet-{NAME}",
        enabled=config["mlflow"]["enabled"],
    log:
        f"{RESULTS}/logs/mlflow_store.log",
    shell:
        "{sys.executable} {SCRIPTS}/init_mlflow.py --experiment {params.experiment:q}"
        " --enabled {params.enabled} --out {output:q} --log {log:q}"


# Before the first job: a tracking server that does not answer, or refuses our credentials, stops the
# workflow here in seconds with one line naming MLFLOW_TRACKING_URI (docs/tracking.md), instead of
# MLflow's four minutes of retries in the first job. Runs on the submit host only (not in cluster jobs,
# not in a dry run); rule mlflow_store checks again, for a run started with --no-hooks.
onstart:
    if config["mlflow"]["enabled"]:
        from thinet.experiment import TrackingError, check_tracking_store, tracking_uri

        try:
            _found = check_tracking_store(tracking_uri(), config["mlflow"].get("experiment") or f"thinet-{NAME}")
        except TrackingError as err:
            raise WorkflowError(f"thinet: {err}") from None
        print(f"thinet: {_found}", file=sys.stderr)
