"""Two workflow runs' MLflow records, compared run by run (the outage check: .ci/check_mlflow_outage).

    MLFLOW_TRACKING_URI=... python .ci/mlflow_compare_runs.py snapshot results/smoke_restart A.json
    MLFLOW_TRACKING_URI=... python .ci/mlflow_compare_runs.py snapshot results/smoke_outage B.json
    python .ci/mlflow_compare_runs.py compare A.json B.json

`snapshot`: every run of the experiment thinet-<name> of the results folder (in the store of
MLFLOW_TRACKING_URI, with the credentials of the environment) as JSON: what `compare` compares,
and with `--times` also the run ids, start and end times and metric timestamps (`thinet mlflow-sync`
run twice: the snapshots before and after the second are the same file).
`compare`: the two snapshots hold the same runs, matched by name and parent's name (a chain and its
step runs), and each pair has
  * the same status;
  * the same parameters and tags, once the results name is replaced by `<name>` in every value (the
    runs of the two folders differ only in it) and the run's settings hash (its tag `thinet.hash`; the
    name changes it, as the settings name the folder models/<name>/) by `<hash>`, leaving out MLflow's
    own `mlflow.user`/`mlflow.source.*`, the parent's id (compared through the parent's name) and
    `thinet.offline_id` (the placeholder a run replayed by `thinet mlflow-sync` carries);
  * the same metrics, each with the same (step, value) history (values equal but for the timings
    `*_ms`, measured anew by each run);
  * the same artifact paths and logged-model names.
Exits 1 listing the differences.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SKIPPED_TAGS = ("mlflow.user", "mlflow.parentRunId", "thinet.offline_id")
HASH_TAG = "thinet.hash"  # a hash of the run's settings, which name the config's own models/<name> folder
TIMINGS = "_ms"


def records(results: Path, with_times: bool = False) -> dict[str, dict]:
    import thinet.experiment  # noqa: F401  (first: it turns MLflow's telemetry off)
    from mlflow.tracking import MlflowClient

    name = results.name
    client = MlflowClient()
    experiment = client.get_experiment_by_name(f"thinet-{name}")
    if experiment is None:
        raise SystemExit(f"mlflow_compare_runs: no experiment thinet-{name} at {client.tracking_uri}")
    runs = client.search_runs([experiment.experiment_id], max_results=5000, run_view_type=3)
    names = {r.info.run_id: r.info.run_name for r in runs}
    # A few hundred runs: per-run requests (a basic-auth server checks each one) took minutes, so the
    # histories come in bulk, the logged models in one search, and the artifact listings on threads.
    histories = metric_histories(client, runs)
    models: dict[str, list[str]] = {}
    for model in logged_models(client, experiment.experiment_id):
        models.setdefault(model.source_run_id, []).append(model.name)
    with ThreadPoolExecutor(THREADS) as pool:
        artifacts = dict(zip(names, pool.map(lambda rid: artifact_paths(client, rid), names)))

    out: dict[str, dict] = {}
    for run in runs:
        rid = run.info.run_id
        own_hash = run.data.tags.get(HASH_TAG)

        def norm(value: str) -> str:
            value = str(value).replace(name, "<name>")
            return value.replace(own_hash, "<hash>") if own_hash else value

        parent = names.get(run.data.tags.get("mlflow.parentRunId", ""), "")
        key = f"{parent} / {run.info.run_name}" if parent else run.info.run_name
        history = {metric: sorted(([step, value, stamp] if with_times else [step, value])
                                  for step, value, stamp in histories.get((rid, metric), []))
                   for metric in sorted(run.data.metrics)}
        if key in out:
            key += f" #{sum(k.startswith(key) for k in out) + 1}"
        out[key] = {
            "status": run.info.status,
            "params": {k: norm(v) for k, v in sorted(run.data.params.items())},
            "tags": {k: norm(v) for k, v in sorted(run.data.tags.items())
                     if k not in SKIPPED_TAGS and not k.startswith("mlflow.source")},
            "metrics": history, "artifacts": sorted(artifacts[rid]), "models": sorted(models.get(rid, [])),
            **({"start_time": run.info.start_time, "end_time": run.info.end_time, "id": rid}
               if with_times else {}),
        }
    return out


THREADS = 4
BULK_RUNS, BULK_POINTS = 100, 25000  # the server's limits of one get-history-bulk request
BULK_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"  # what MLflow's UI charts read


def metric_histories(client, runs) -> dict[tuple[str, str], list[tuple[int, float, int]]]:
    """(run id, metric) -> its (step, value, timestamp) points: from a tracking server one request per
    metric and 100 runs; from a local store one per run and metric."""
    by_key: dict[str, list[str]] = {}
    for run in runs:
        for key in run.data.metrics:
            by_key.setdefault(key, []).append(run.info.run_id)
    out: dict[tuple[str, str], list[tuple[int, float, int]]] = {}
    uri = client.tracking_uri
    if not uri.startswith(("http://", "https://")):
        for key, ids in by_key.items():
            for rid in ids:
                out[(rid, key)] = [(p.step, p.value, p.timestamp) for p in client.get_metric_history(rid, key)]
        return out
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    creds = get_default_host_creds(uri)

    def fetch(job: tuple[str, list[str]]) -> list[dict]:
        key, ids = job
        answer = http_request(creds, BULK_ENDPOINT, "GET", params={"run_id": ids, "metric_key": key,
                                                                    "max_results": BULK_POINTS})
        points = verify_rest_response(answer, BULK_ENDPOINT).json().get("metrics", [])
        if len(points) >= BULK_POINTS:
            raise SystemExit(f"mlflow_compare_runs: {key} of {len(ids)} runs has {BULK_POINTS}+ points: "
                             f"lower BULK_RUNS")
        return points

    jobs = [(key, ids[i:i + BULK_RUNS]) for key, ids in sorted(by_key.items()) for i in range(0, len(ids), BULK_RUNS)]
    with ThreadPoolExecutor(THREADS) as pool:
        for points in pool.map(fetch, jobs):
            for p in points:
                out.setdefault((p["run_id"], p["key"]), []).append(
                    (int(p.get("step", 0)), float(p["value"]), int(p["timestamp"])))
    return out


def logged_models(client, experiment_id: str) -> list:
    found, token = [], None
    while True:
        page = client.search_logged_models([experiment_id], max_results=100, page_token=token)
        found += list(page)
        token = page.token
        if not token:
            return found


def artifact_paths(client, run_id: str, folder: str | None = None) -> list[str]:
    """Every artifact file of the run, folders walked."""
    paths: list[str] = []
    for item in client.list_artifacts(run_id, folder):
        paths += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return paths


def same_value(key: str, a: float, b: float) -> bool:
    return key.endswith(TIMINGS) or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                                                         abs_tol=1e-12)


def compare(first: Path, second: Path) -> int:
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    problems = [f"run {k!r} only in {first}" for k in sorted(a.keys() - b.keys())]
    problems += [f"run {k!r} only in {second}" for k in sorted(b.keys() - a.keys())]
    points = 0
    for key in sorted(a.keys() & b.keys()):
        ra, rb = a[key], b[key]
        for part in ("status", "params", "tags", "artifacts", "models"):
            if ra[part] != rb[part]:
                if isinstance(ra[part], dict):
                    diff = {k: (ra[part].get(k), rb[part].get(k)) for k in ra[part].keys() | rb[part].keys()
                            if ra[part].get(k) != rb[part].get(k)}
                    problems.append(f"{key}: {part} differ: {diff}")
                else:
                    problems.append(f"{key}: {part} differ: {ra[part]} / {rb[part]}")
        if ra["metrics"].keys() != rb["metrics"].keys():
            problems.append(f"{key}: metrics {sorted(ra['metrics'])} / {sorted(rb['metrics'])}")
        for metric in sorted(ra["metrics"].keys() & rb["metrics"].keys()):
            ha, hb = ra["metrics"][metric], rb["metrics"][metric]
            points += len(ha)
            if [p[0] for p in ha] != [p[0] for p in hb]:
                problems.append(f"{key}: {metric} logged at steps {[p[0] for p in ha]} / {[p[0] for p in hb]}")
            elif not all(same_value(metric, pa[1], pb[1]) for pa, pb in zip(ha, hb)):
                problems.append(f"{key}: {metric} values {ha[:5]} / {hb[:5]}")
    for problem in problems:
        print(f"mlflow_compare_runs: {problem}", file=sys.stderr)
    print(f"mlflow_compare_runs: {len(a)} / {len(b)} runs, {points} metric points compared"
          + (f"; {len(problems)} DIFFERENCE(S)" if problems else
             "; the same runs, statuses, parameters, tags, metric histories, artifacts and models"))
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare")
    c.add_argument("first", type=Path)
    c.add_argument("second", type=Path)
    s = sub.add_parser("snapshot")
    s.add_argument("results", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--times", action="store_true", help="with run ids, start/end times, metric timestamps")
    args = parser.parse_args()
    if args.command == "compare":
        return compare(args.first, args.second)
    snapshot = records(args.results, with_times=args.times)
    args.out.write_text(json.dumps(snapshot, indent=1, sort_keys=True))
    print(f"mlflow_compare_runs: {len(snapshot)} runs of thinet-{args.results.name} written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
