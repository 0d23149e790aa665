"""MLflow tracking for the workflow: one experiment per config, a parent run per model/chain,
a child run per pruning step, linked both ways with the Snakemake outputs.

The default store is the sqlite file `results/mlflow.db` (artifacts in `results/mlruns`);
`MLFLOW_TRACKING_URI` in the environment points everything at a server instead. Runs are
addressed by id through `MlflowClient`, never through the fluent "active run" stack, so a
job can hold a parent and a child run at once and reopen a run after a restart.

>>> tracker = Tracker.open("thinet-default", enabled=False)   # a no-op tracker
>>> run_id = tracker.start_run("vgg_criteria-thinet-r0.5-s0", params={"criterion": "thinet"})
>>> tracker.log_metrics(run_id, {"top1": 91.2}); tracker.end_run(run_id)
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

DEFAULT_ROOT = "results"
PACKAGES = ("torch", "torchvision", "thinet-bench", "mlflow", "snakemake", "timm")


def tracking_uri(root: str | os.PathLike = DEFAULT_ROOT) -> str:
    """`MLFLOW_TRACKING_URI` if set, else `sqlite:///<abs root>/mlflow.db`."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(root).resolve() / 'mlflow.db').as_posix()}"


def artifact_root(root: str | os.PathLike = DEFAULT_ROOT) -> str:
    """Where experiments created here keep their artifacts (a file URI under `root`)."""
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


_LOCK_RETRIES = 12


def _retry_locked(call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call(*args)`, retried with a random back-off while the sqlite store is locked by another job's write.

    sqlite allows one writer at a time; MLflow gives up after sqlite's 5 s busy wait, so 16 jobs
    logging at once would otherwise lose runs and metrics ("database is locked").
    """
    import random
    import time

    for attempt in range(_LOCK_RETRIES):
        try:
            return call(*args, **kwargs)
        except Exception as err:
            if "database is locked" not in str(err) or attempt == _LOCK_RETRIES - 1:
                raise
            time.sleep(random.uniform(0.05, 0.25) * 2 ** min(attempt, 4))
    return None


@dataclass
class Tracker:
    """Runs of one experiment, by id. With `enabled=False` every call is a no-op returning ''.

    Writes are retried while a shared sqlite store is locked by another job (`_retry_locked`).
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
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            return cls(client, found.experiment_id)
        try:
            return cls(client, _retry_locked(client.create_experiment, experiment, artifact_location=artifact_root(root)))
        except Exception:  # another job created it meanwhile
            found = client.get_experiment_by_name(experiment)
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
        runs = self.client.search_runs([self.experiment_id], max_results=1, filter_string=(
            f"tags.mlflow.parentRunId = '{parent}' and tags.`{key}` = '{value}'"))
        return runs[0].info.run_id if runs else None

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        if not self.enabled or not params:
            return
        from mlflow.entities import Param

        existing = self.client.get_run(run_id).data.params
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
        if self.enabled:
            self.client.log_artifact(run_id, str(path), folder)

    def log_model(self, run_id: str, model: Any, input_example: Any, name: str = "model") -> None:
        """Log the final model with an input example (MLflow 3 infers the signature from it)."""
        if not self.enabled:
            return
        import mlflow
        import torch

        mlflow.set_tracking_uri(self.client._tracking_client.tracking_uri)
        with mlflow.start_run(run_id=run_id):
            # Explicit requirements: inferring them imports and times every module of the job.
            mlflow.pytorch.log_model(model, name=name, input_example=input_example,
                                     pip_requirements=[f"torch=={torch.__version__}"])

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        if self.enabled and run_id:
            _retry_locked(self.client.set_terminated, run_id, status=status)


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
