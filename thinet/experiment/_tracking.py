"""MLflow tracking for the workflow: one experiment per config, a parent run per model/chain,
a child run per pruning step, linked both ways with the Snakemake outputs.

The default store is the sqlite file `results/mlflow.db` (artifacts in `results/mlruns`);
`MLFLOW_TRACKING_URI` in the environment points everything at a server instead (whose
`--artifacts-destination` then keeps the artifacts; credentials through MLflow's own
`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`). Runs are addressed by id through
`MlflowClient`, never through the fluent "active run" stack, so a job can hold a parent and a
child run at once and reopen a run after a restart (`job_run`).

A tracking server that stops answering is waited for (`server_patience()`, 3 minutes), then the
job goes on offline, its calls queued beside its outputs, replayed by `sync_offline`
(`thinet mlflow-sync`) or by a later job that finds the server back (docs/tracking.md).

>>> tracker = Tracker.open("thinet-default", enabled=False)   # a no-op tracker
>>> run_id = tracker.start_run("vgg_criteria-thinet-r0.5-s0", params={"criterion": "thinet"})
>>> tracker.log_metrics(run_id, {"top1": 91.2}); tracker.end_run(run_id)
"""
from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from thinet.experiment._offline import (
    OUTAGE_MARKER, OfflineQueue, Replayer, SyncReport, clear_outage, is_placeholder, load_ids, log_model_now,
    new_placeholder, now_ms, sync_lock,
)
from thinet.experiment._server import (
    TrackingError, TrackingUnavailable, auth_error, check_tracking_store, is_server_uri,
    is_unavailable, probe, reason, set_retry_defaults, where,
)

DEFAULT_ROOT = "results"
PACKAGES = ("torch", "torchvision", "thinet-bench", "mlflow", "snakemake", "timm")

# MLflow 3.17's usage telemetry, when it cannot fetch its settings (no internet: most cluster nodes),
# deletes the variable _MLFLOW_TELEMETRY_SESSION_ID from os.environ in a thread while requests iterates
# os.environ for proxy settings, so a job logging to a tracking server fails with KeyError:
# '_MLFLOW_TELEMETRY_SESSION_ID' (seen in .ci/check_mlflow_server). Off before mlflow is imported,
# unless the environment says otherwise.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow's own HTTP retries (four minutes) shortened to about 10 s unless the environment sets them:
# the tracker waits for a lost server itself (Tracker._server), then goes on offline.
set_retry_defaults()

log = logging.getLogger("thinet.workflow.tracking")  # under the jobs' logger (thinet.experiment._jobs.log)

# How long a call waits for a tracking server that does not answer, before the job goes on offline.
PATIENCE_ENV = "THINET_MLFLOW_PATIENCE_S"
DEFAULT_PATIENCE_S = 180.0
WAIT_PROBE_S = 10.0          # while waiting: GET /health this often
RECOVERY_INTERVAL_S = 60.0   # while offline: ask the server again at most this often


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


def server_patience() -> float:
    """How long a job waits for a tracking server that stopped answering before it goes on offline
    (`THINET_MLFLOW_PATIENCE_S`, default `DEFAULT_PATIENCE_S`)."""
    raw = os.environ.get(PATIENCE_ENV, "")
    if not raw.strip():
        return DEFAULT_PATIENCE_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{PATIENCE_ENV}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise ValueError(f"{PATIENCE_ENV}={raw!r} must be 0 or more seconds")
    return value


def _interrupted() -> bool:
    """Whether a training loop has noted SIGTERM/SIGINT and waits to save (its handler is a bound method
    of `thinet.runtime.CheckpointTrigger`, whose `pending` names the signal): a job preempted while it
    waits for the server stops waiting, so that it saves within the cluster's grace time."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT):
        owner = getattr(signal.getsignal(signum), "__self__", None)
        if getattr(owner, "pending", None) is not None:
            return True
    return False


def _sleep_unless_interrupted(seconds: float) -> bool:
    """Sleep `seconds` in slices of at most 1 s; True (at once) when the job was told to stop."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if _interrupted():
            return True
        time.sleep(min(1.0, left))
    return _interrupted()


@dataclass
class Tracker:
    """Runs of one experiment, by id. With `enabled=False` every call is a no-op returning ''.

    Every call to the store, read or write, is tried again while a shared sqlite store is locked
    by another job, for up to `LOCK_PATIENCE_S` (`_retry_locked`).

    With a tracking server, a call that finds the server gone (refused, timed out, 5xx) waits for it:
    it asks GET /health every `WAIT_PROBE_S` and repeats the call once the server answers, for up to
    `server_patience()` (3 minutes by default, `THINET_MLFLOW_PATIENCE_S`), so a restart is survived.
    Past that, a tracker opened with a `queue` file goes **offline**: this call and every later one is
    appended to the queue (`_offline.py`; a run it starts gets a placeholder id `offline-<hex>`) and the
    job carries on; a tracker without a queue raises `TrackingUnavailable`. An offline tracker asks
    the server again at most every `RECOVERY_INTERVAL_S`; once it answers, the queues of the results
    folder are replayed and the tracker is back online (calls naming a placeholder are translated to
    the run's real id). A 401/403 is a `TrackingAuthError` naming the URI, never queued.
    """

    client: Any
    experiment_id: str
    experiment: str = ""
    uri: str = ""
    artifact_location: str | None = None
    queue: OfflineQueue | None = None
    offline: bool = False
    ids: dict = field(default_factory=dict)
    _last_probe: float = field(default=float("-inf"), repr=False)

    @classmethod
    def open(cls, experiment: str, *, enabled: bool = True, root: str | os.PathLike = DEFAULT_ROOT,
             queue: str | os.PathLike | None = None) -> "Tracker":
        """Connect to the store and get (or create) the experiment. `queue`: the file this job's tracking
        calls go to while a tracking server is away (beside the job's outputs; `queue_beside`)."""
        if not enabled:
            return cls(None, "")
        from mlflow.tracking import MlflowClient

        uri = tracking_uri(root)
        tracker = cls(MlflowClient(tracking_uri=uri), "", experiment=experiment, uri=uri,
                      artifact_location=artifact_root(root),
                      queue=OfflineQueue(queue, uri, experiment) if queue is not None and is_server_uri(uri) else None)
        if tracker.queue is not None and (tracker.queue.pending() or tracker.queue.outage_marked()):
            # An earlier attempt of this job left calls queued, or another job of this results folder
            # waited out its patience: ask the server once (seconds), not for the whole patience again.
            if not tracker._recover(force=True):
                tracker._go_offline(f"MLflow tracking server {where(uri)} is still away "
                                    f"({tracker.queue.root / OUTAGE_MARKER} or calls queued by an earlier attempt)")
                return tracker
        if not tracker.experiment_id:
            try:
                tracker.experiment_id = tracker._server(tracker._get_or_create_experiment)
            except TrackingUnavailable as err:
                tracker._go_offline(str(err))
        return tracker

    def _get_or_create_experiment(self) -> str:
        found = _retry_locked(self.client.get_experiment_by_name, self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return _retry_locked(self.client.create_experiment, self.experiment,
                                 artifact_location=self.artifact_location)
        except Exception as err:  # another job created it meanwhile
            if auth_error(err, self.uri) or is_unavailable(err):
                raise
            found = _retry_locked(self.client.get_experiment_by_name, self.experiment)
            if found is None:
                raise
            return found.experiment_id

    @property
    def enabled(self) -> bool:
        return self.client is not None

    # ------------------------------------------------------------------ the server, lost and found
    def _raise_unless_unavailable(self, err: Exception) -> None:
        auth = auth_error(err, self.uri)
        if auth is not None:
            raise auth from None
        if not (is_server_uri(self.uri) and is_unavailable(err)):
            raise err

    def _server(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """`call(*args)` against the store, waiting up to `server_patience()` for a server that does not
        answer; then `TrackingUnavailable` (and the results folder's outage marker)."""
        try:
            return _retry_locked(call, *args, **kwargs)
        except Exception as err:
            self._raise_unless_unavailable(err)
            first = reason(err)
        patience = server_patience()
        log.warning("MLflow tracking server %s does not answer (%s); waiting up to %.0f s for it (%s)",
                    where(self.uri), first, patience, PATIENCE_ENV)
        since = time.monotonic()
        deadline = since + patience
        interrupted = False
        while (left := deadline - time.monotonic()) > 0:
            if _sleep_unless_interrupted(min(WAIT_PROBE_S, left)):
                interrupted = True  # SIGTERM/SIGINT: the job saves first (its calls are queued meanwhile)
                first += "; the job was told to stop (SIGTERM/SIGINT) and saves first"
                break
            if probe(self.uri) is not None:
                continue
            try:
                result = _retry_locked(call, *args, **kwargs)
            except Exception as err:
                self._raise_unless_unavailable(err)
                continue
            log.warning("MLflow tracking server %s answers again", self.uri)
            return result
        waited = time.monotonic() - since
        why = f"MLflow tracking server {where(self.uri)} did not answer for {waited:.0f} s ({first})"
        if self.queue is not None and not interrupted:
            self.queue.mark_outage(why)
        raise TrackingUnavailable(why)

    def _go_offline(self, why: str) -> None:
        if self.queue is None:
            raise TrackingUnavailable(why)
        if not self.offline:
            log.warning("%s: this job goes on without it, its tracking calls queued in %s; they are replayed "
                        "when a job finds the server back, or by: thinet mlflow-sync %s", why, self.queue.path,
                        self.queue.root)
            self._last_probe = time.monotonic()  # just found away: ask again in RECOVERY_INTERVAL_S
        self.offline = True

    def _recover(self, force: bool = False) -> bool:
        """Whether the tracker is (back) online: at most every `RECOVERY_INTERVAL_S` (or now, `force`),
        ask the server; when it answers, replay the queues of the results folder, this job's with them."""
        if self.queue is None:
            return True
        now = time.monotonic()
        if not force and now - self._last_probe < RECOVERY_INTERVAL_S:
            return False
        self._last_probe = now
        if probe(self.uri) is not None:
            return False
        try:
            report = sync_offline(self.queue.root, uri=self.uri)
            if not self.experiment_id:
                self.experiment_id = self._get_or_create_experiment()
        except Exception as err:
            log.warning("MLflow tracking server %s answers again, but replaying the queued calls failed: %s",
                        self.uri, err)
            return False
        self.queue.clear_outage()
        self.ids = load_ids(self.queue.root)
        if self.queue.pending():
            return False
        if self.offline or report.changed:
            log.warning("MLflow tracking server %s answers again: %s; this job logs to it again", self.uri,
                        "; ".join(report.lines()))
        self.offline = False
        return True

    def real(self, run_id: str) -> str:
        """The MLflow id of `run_id`: itself, or the run a placeholder was replayed into (else itself)."""
        if not is_placeholder(run_id):
            return run_id
        if run_id not in self.ids and self.queue is not None:
            self.ids = load_ids(self.queue.root)
        return self.ids.get(run_id, run_id)

    resolve = real  # what a job writes into its sidecars and rows

    def _unresolved(self, ids: list) -> list[str]:
        return [i for i in ids if is_placeholder(i) and is_placeholder(self.real(i))]

    def _submit(self, op: str, fields: dict[str, Any], online: Any) -> Any:
        """`online()` against the store, or the call queued as `op` with `fields` (None then)."""
        if self.offline and not self._recover():
            self.queue.append(op, **fields)
            return None
        refs = [fields.get("run")] if op != "create_run" else [fields["tags"].get("mlflow.parentRunId")]
        if self._unresolved(refs):
            # A run another attempt or job created offline, not replayed yet: replay now, else queue after it.
            if self.queue is None:
                raise TrackingError(f"run {refs[0]} was created while the tracking server was away and is not in "
                                    f"{where(self.uri)} yet: replay it first (thinet mlflow-sync <results folder>)")
            if not self._recover(force=True) or self._unresolved(refs):
                self._go_offline(f"run {refs[0]} is still waiting in an offline queue")
                self.queue.append(op, **fields)
                return None
        try:
            return self._server(online)
        except TrackingUnavailable as err:
            self._go_offline(str(err))
            self.queue.append(op, **fields)
            return None

    # --------------------------------------------------------------------------------- the calls
    def start_run(self, name: str, *, params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
                  parent: str | None = None, run_id: str | None = None) -> str:
        """Create a run (a child when `parent` is given), or reopen `run_id`; returns its id (a placeholder
        while offline)."""
        if not self.enabled:
            return ""
        if run_id:
            self._submit("reopen", {"run": run_id},
                         lambda: self.client.update_run(self.real(run_id), status="RUNNING"))
            return run_id
        all_tags = {"mlflow.runName": name, **(tags or {})}
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        flat = flatten({**environment_params(), **(params or {})})

        def create() -> str:
            real_tags = {**all_tags, **({"mlflow.parentRunId": self.real(parent)} if parent else {})}
            return self.client.create_run(self.experiment_id, tags=real_tags, run_name=name).info.run_id

        placeholder = new_placeholder()
        created = self._submit("create_run", {"run": placeholder, "name": name, "tags": all_tags, "params": flat,
                                              "start_time": now_ms(), "artifact_location": self.artifact_location},
                               create)
        if created is None:
            return placeholder
        self.log_params(created, flat)
        return created

    def find_child(self, parent: str, key: str, value: str) -> str | None:
        """The id of a child of `parent` tagged `key=value` (a restarted step reuses its run)."""
        if not self.enabled or not parent:
            return None
        queued = self.queue.find_created(parent, key, value) if self.queue is not None else None
        if queued:
            return queued
        if (self.offline and not self._recover()) or self._unresolved([parent]):
            return None

        def search() -> str | None:
            runs = self.client.search_runs([self.experiment_id], max_results=1, filter_string=(
                f"tags.mlflow.parentRunId = '{self.real(parent)}' and tags.`{key}` = '{value}'"))
            return runs[0].info.run_id if runs else None

        try:
            return self._server(search)
        except TrackingUnavailable as err:
            self._go_offline(str(err))
            return None

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        if not self.enabled or not params:
            return
        flat = flatten(params)

        def online() -> None:
            from mlflow.entities import Param

            real = self.real(run_id)
            existing = self.client.get_run(real).data.params
            new = [Param(k, v[:6000]) for k, v in flat.items() if k not in existing]
            for i in range(0, len(new), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(real, params=new[i:i + 100])

        self._submit("log_params", {"run": run_id, "params": flat}, online)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        if not self.enabled:
            return
        now = now_ms()
        values = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if not values:
            return

        def online() -> None:
            from mlflow.entities import Metric

            self.client.log_batch(self.real(run_id), metrics=[Metric(k, v, now, int(step)) for k, v in values.items()])

        self._submit("log_metrics", {"run": run_id, "metrics": values, "step": int(step), "timestamp": now}, online)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        strings = {k: str(v) for k, v in tags.items()}

        def online() -> None:
            from mlflow.entities import RunTag

            self.client.log_batch(self.real(run_id), tags=[RunTag(k, v) for k, v in strings.items()])

        self._submit("set_tags", {"run": run_id, "tags": strings}, online)

    def log_artifact(self, run_id: str, path: str | os.PathLike, folder: str | None = None) -> None:
        if self.enabled:  # the run's artifact location is read from the store
            self._submit("log_artifact", {"run": run_id, "path": str(Path(path).resolve()), "folder": folder},
                         lambda: self.client.log_artifact(self.real(run_id), str(path), folder))

    def log_model(self, run_id: str, model: Any, input_example: Any, name: str = "model",
                  source: str | os.PathLike | None = None) -> None:
        """Log the final model with an input example (MLflow 3 infers the signature from it). While
        offline the model file `source` is queued instead, and logged the same way on replay."""
        if not self.enabled:
            return
        self._submit("log_model", {"run": run_id, "name": name,
                                   "model_file": str(Path(source).resolve()) if source else None},
                     lambda: log_model_now(self.uri, self.real(run_id), model, input_example, name))

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        if self.enabled and run_id:
            end = now_ms()
            self._submit("end_run", {"run": run_id, "status": status, "end_time": end},
                         lambda: self.client.set_terminated(self.real(run_id), status=status, end_time=end))

    def has_run(self, run_id: str) -> bool:
        """Whether the store holds the run `run_id` (a marker may name a run of another store); a
        placeholder: whether this job's queue created it. Offline, a real id is taken on trust."""
        if is_placeholder(run_id):
            return (not is_placeholder(self.real(run_id))
                    or (self.queue is not None and self.queue.created(run_id)))
        if self.offline and not self._recover():
            return True
        from mlflow.exceptions import MlflowException

        def get() -> bool:
            try:
                self.client.get_run(run_id)
            except MlflowException as err:
                if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return False
                raise
            return True

        try:
            return self._server(get)
        except TrackingUnavailable as err:
            self._go_offline(str(err))
            return True


def offline_run_ids(folder: str | os.PathLike) -> dict[str, str]:
    """Placeholder id -> MLflow run id, for every run the replays under the results `folder` created (a
    row of metrics.csv or a sidecar written while the server was away names the placeholder; the run
    also carries it as its tag `thinet.offline_id`)."""
    return load_ids(folder)


def sync_offline(folder: str | os.PathLike, *, uri: str | None = None, allow_other_uri: bool = False) -> SyncReport:
    """Replay every offline queue under `folder` (a results folder) into the store at `uri` (default
    `MLFLOW_TRACKING_URI`, else the folder's default store): `thinet mlflow-sync`. Idempotent."""
    from mlflow.tracking import MlflowClient

    folder = Path(folder)
    uri = uri or tracking_uri(folder.resolve().parent)

    def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return _retry_locked(fn, *args, **kwargs)
        except Exception as err:
            auth = auth_error(err, uri)
            if auth is not None:
                raise auth from None
            if is_server_uri(uri) and is_unavailable(err):
                raise TrackingUnavailable(
                    f"MLflow tracking server {where(uri)} does not answer: {reason(err)}") from None
            raise

    with sync_lock(folder):
        replayer = Replayer(MlflowClient(tracking_uri=uri), uri, call=call, allow_other_uri=allow_other_uri)
        report = replayer.sync(folder)
    clear_outage(folder, uri)  # the server answered: later jobs need not ask it first
    return report


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

    if enabled:
        # Credentials refused: one line naming the URI, at once. A server that does not answer was up a
        # moment ago (the workflow's start-up check, onstart in mlflow.smk): it is waited for as every job
        # waits (server_patience()), then this job fails, naming the URI.
        try:
            check_tracking_store(tracking_uri(), experiment)
        except TrackingUnavailable as err:
            log.warning("%s; waiting up to %.0f s for it (%s)", err, server_patience(), PATIENCE_ENV)
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
