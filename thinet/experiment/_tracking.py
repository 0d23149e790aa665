"""MLflow tracking for the workflow: one experiment per config, a parent run per model/chain,
a child run per pruning step, linked both ways with the Snakemake outputs.

The default store is the sqlite file `results/mlflow.db` (artifacts in `results/mlruns`);
`MLFLOW_TRACKING_URI` in the environment points everything at a server instead (whose
`--artifacts-destination` then keeps the artifacts). Runs are addressed by id through
`MlflowClient`, never through the fluent "active run" stack, so a job can hold a parent and a
child run at once and reopen a run after a restart (`job_run`).

>>> tracker = Tracker.open("thinet-default", enabled=False)   # a no-op tracker
>>> run_id = tracker.start_run("vgg_criteria-thinet-r0.5-s0", params={"criterion": "thinet"})
>>> tracker.log_metrics(run_id, {"top1": 91.2}); tracker.end_run(run_id)
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

DEFAULT_ROOT = "results"
PACKAGES = ("torch", "torchvision", "thinet-bench", "mlflow", "snakemake", "timm")

# MLflow 3.17's usage telemetry, when it cannot fetch its settings (no internet: most cluster nodes),
# deletes the variable _MLFLOW_TELEMETRY_SESSION_ID from os.environ in a thread while requests iterates
# os.environ for proxy settings, so a job logging to a tracking server fails with KeyError:
# '_MLFLOW_TELEMETRY_SESSION_ID' (seen in .ci/check_mlflow_server). Off before mlflow is imported,
# unless the environment says otherwise.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def tracking_uri(root: str | os.PathLike = DEFAULT_ROOT) -> str:
    """`MLFLOW_TRACKING_URI` if set, else `sqlite:///<abs root>/mlflow.db`."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(root).resolve() / 'mlflow.db').as_posix()}"


def artifact_root(root: str | os.PathLike = DEFAULT_ROOT) -> str | None:
    """Where experiments created here keep their artifacts: a file URI under `root`, or None with a
    tracking server (http/https), whose `--artifacts-destination` serves them to every machine."""
    if tracking_uri(root).startswith(("http://", "https://")):
        return None
    return (Path(root).resolve() / "mlruns").as_uri()


def git_commit(path: str | os.PathLike = ".") -> str:
    """The checked-out commit (with `+dirty` when the tree has changes), or `unknown`."""
    try:
        sha = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment_params() -> dict[str, str]:
    """Git commit and package versions, logged with every run."""
    params = {"git_commit": git_commit(Path(__file__).resolve().parent)}
    for name in PACKAGES:
        try:
            params[f"version.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            params[f"version.{name}"] = "absent"
    return params


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as flat `a.b` keys with string values (MLflow params)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return out


# How long a store may stay locked before a job gives up (seconds, all tries of one call together).
LOCK_PATIENCE_S = 300.0


def _retry_locked(call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call(*args)`, a read or a write, tried again while the sqlite store is locked by another job.

    sqlite lets one writer in at a time, and a write locks out readers too. Each try waits inside
    sqlite for up to 20 s (MLflow 3.17 sets `PRAGMA busy_timeout = 20000` on every session), or fails
    at once when sqlite sees two transactions deadlock; then "database is locked" comes back, the
    tracker sleeps a random 0.05-0.25 s, doubling with each try up to 0.8-4 s, and tries again, until
    the call has taken `LOCK_PATIENCE_S` (5 min). So a job gives up only on a store locked for about
    5 minutes; 16 jobs logging at once lose nothing (tests/test_tracking_stress.py).
    """
    deadline = time.monotonic() + LOCK_PATIENCE_S
    attempt = 0
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as err:
            if "database is locked" not in str(err) or time.monotonic() >= deadline:
                raise
        time.sleep(random.uniform(0.05, 0.25) * 2 ** min(attempt, 4))
        attempt += 1


@dataclass
class Tracker:
    """Runs of one experiment, by id. With `enabled=False` every call is a no-op returning ''.

    Every call to the store, read or write, is tried again while a shared sqlite store is locked
    by another job, for up to `LOCK_PATIENCE_S` (`_retry_locked`).
    """

    client: Any
    experiment_id: str

    @classmethod
    def open(cls, experiment: str, *, enabled: bool = True, root: str | os.PathLike = DEFAULT_ROOT) -> "Tracker":
        """Connect to the store and get (or create) the experiment."""
        if not enabled:
            return cls(None, "")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri(root))
        found = _retry_locked(client.get_experiment_by_name, experiment)
        if found is not None:
            return cls(client, found.experiment_id)
        try:
            return cls(client, _retry_locked(client.create_experiment, experiment, artifact_location=artifact_root(root)))
        except Exception:  # another job created it meanwhile
            found = _retry_locked(client.get_experiment_by_name, experiment)
            if found is None:
                raise
            return cls(client, found.experiment_id)

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def start_run(self, name: str, *, params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
                  parent: str | None = None, run_id: str | None = None) -> str:
        """Create a run (a child when `parent` is given), or reopen `run_id`; returns its id."""
        if not self.enabled:
            return ""
        if run_id:
            _retry_locked(self.client.update_run, run_id, status="RUNNING")
            return run_id
        all_tags = {"mlflow.runName": name, **(tags or {})}
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        run = _retry_locked(self.client.create_run, self.experiment_id, tags=all_tags, run_name=name)
        self.log_params(run.info.run_id, {**environment_params(), **(params or {})})
        return run.info.run_id

    def find_child(self, parent: str, key: str, value: str) -> str | None:
        """The id of a child of `parent` tagged `key=value` (a restarted step reuses its run)."""
        if not self.enabled or not parent:
            return None
        runs = _retry_locked(self.client.search_runs, [self.experiment_id], max_results=1, filter_string=(
            f"tags.mlflow.parentRunId = '{parent}' and tags.`{key}` = '{value}'"))
        return runs[0].info.run_id if runs else None

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        if not self.enabled or not params:
            return
        from mlflow.entities import Param

        existing = _retry_locked(self.client.get_run, run_id).data.params
        new = [Param(k, v[:6000]) for k, v in flatten(params).items() if k not in existing]
        for i in range(0, len(new), 100):  # MLflow takes at most 100 params per batch
            _retry_locked(self.client.log_batch, run_id, params=new[i:i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        if not self.enabled:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(step)) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if batch:
            _retry_locked(self.client.log_batch, run_id, metrics=batch)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        from mlflow.entities import RunTag

        _retry_locked(self.client.log_batch, run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, run_id: str, path: str | os.PathLike, folder: str | None = None) -> None:
        if self.enabled:  # the run's artifact location is read from the store
            _retry_locked(self.client.log_artifact, run_id, str(path), folder)

    def log_model(self, run_id: str, model: Any, input_example: Any, name: str = "model") -> None:
        """Log the final model with an input example (MLflow 3 infers the signature from it)."""
        if not self.enabled:
            return
        import mlflow
        import torch

        mlflow.set_tracking_uri(self.client._tracking_client.tracking_uri)

        def log() -> None:
            with mlflow.start_run(run_id=run_id):
                # Explicit requirements: inferring them imports and times every module of the job.
                mlflow.pytorch.log_model(model, name=name, input_example=input_example,
                                         pip_requirements=[f"torch=={torch.__version__}"])

        _retry_locked(log)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        if self.enabled and run_id:
            _retry_locked(self.client.set_terminated, run_id, status=status)

    def has_run(self, run_id: str) -> bool:
        """Whether the store holds the run `run_id` (a marker may name a run of another store)."""
        from mlflow.exceptions import MlflowException

        try:
            _retry_locked(self.client.get_run, run_id)
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        return True


def job_run(tracker: Tracker, marker: str | os.PathLike, name: str, *, resume: bool,
            params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None) -> str:
    """The MLflow run of a job that may be killed and restarted; its id is kept in the file `marker`.

    A job that resumes from its saved state (`resume`) reopens the run `marker` names, so one run holds
    the whole training curve and no run stays RUNNING for good. Otherwise a new run is started and
    recorded; an earlier attempt's run that left no state to resume from is ended KILLED (the new run
    redoes its points).

    >>> job_run(Tracker.open("x", enabled=False), "mlflow_run.json", "base-vgg", resume=True)
    ''
    """
    from thinet.runtime import atomic_write_json

    if not tracker.enabled:
        return ""
    marker = Path(marker)
    known = json.loads(marker.read_text()).get("mlflow_run_id") if marker.exists() else None
    if known and tracker.has_run(known):
        if resume:
            return tracker.start_run(name, run_id=known)
        tracker.end_run(known, status="KILLED")
    run_id = tracker.start_run(name, params=params, tags=tags)
    atomic_write_json({"mlflow_run_id": run_id, "tracking_uri": tracking_uri()}, marker)
    return run_id


def init_tracking(experiment: str, enabled: bool, marker: str | os.PathLike) -> None:
    """Create the store and `experiment` once, before parallel jobs (their first use of a fresh sqlite
    store would race on its schema migration); write the marker file the workflow waits for."""
    from thinet.runtime import atomic_write_json

    tracker = Tracker.open(experiment, enabled=enabled)
    atomic_write_json({"enabled": enabled, "experiment": experiment, "experiment_id": tracker.experiment_id,
                       "tracking_uri": tracking_uri() if enabled else None}, marker)


def write_sidecar(path: str | os.PathLike, run_id: str, **extra: Any) -> None:
    """The small JSON beside a Snakemake output that names its MLflow run."""
    from thinet.runtime import atomic_write_json

    atomic_write_json({"mlflow_run_id": run_id, "tracking_uri": tracking_uri() if run_id else None, **extra}, path)


def read_sidecar(path: str | os.PathLike) -> str:
    """The MLflow run id recorded in a sidecar ('' when tracking was off)."""
    return json.loads(Path(path).read_text()).get("mlflow_run_id") or ""
