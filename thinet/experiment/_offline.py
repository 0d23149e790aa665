"""Tracking while the MLflow server is away: a job's offline queue, and its replay (`thinet mlflow-sync`).

A job whose tracking server stopped answering (`_tracking.Tracker`) goes on without it: every further
tracking call is appended to its **queue**, a JSON-lines file beside the job's outputs
(`<run folder>/mlflow_queue.jsonl`; the evaluation job's `eval/<run>.mlflow_queue.jsonl`). One line
per call, written with one `write` on a file opened `O_APPEND` and fsync'ed, so a killed job leaves at
most one partial last line, which readers ignore (and a later append starts on a new line):

    {"v": 1, "time": 1718000000.1, "uri": "http://host:5000", "experiment": "thinet-smoke",
     "op": "log_metrics", "run": "offline-3f2a...", "metrics": {"train_loss": 2.1}, "step": 40,
     "timestamp": 1718000000100}

`op` is one of `create_run` (a run the server never saw, under a placeholder id `offline-<uuid4 hex>`,
with its name, tags, parameters and start time), `reopen`, `log_params`, `log_metrics` (with the
original timestamp and step), `set_tags`, `log_artifact` (a file by path), `log_model` (the model file
the job evaluated, logged as the job would have) and `end_run` (status and end time).

**Replay** (`Replayer.sync(folder)`): every queue under the folder, oldest first, record by record in
each queue's own order; a record naming a placeholder waits until the queue that creates that run has
been replayed (so parents come before children, a run before the evaluation that logs into it). Each
queue's progress and the placeholder -> run id mapping are kept beside it in `<queue>.synced.json`
(written atomically after every record), and each run created by a replay is tagged
`thinet.offline_id=<placeholder>`, so a replay that is interrupted, run again, or run by another job
meanwhile does nothing twice: a second `thinet mlflow-sync` changes nothing. Replays of one folder take
turns through a lock file (`<folder>/.mlflow_sync.lock`).

The **outage marker** `<results>/mlflow_outage.json` says that a job of this results folder waited out
its patience for the server: later jobs then ask the server once (a few seconds) instead of waiting again.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from thinet.experiment._server import TrackingError

QUEUE_NAME = "mlflow_queue.jsonl"
STATE_SUFFIX = ".synced.json"
PLACEHOLDER_PREFIX = "offline-"
OFFLINE_TAG = "thinet.offline_id"
OUTAGE_MARKER = "mlflow_outage.json"
LOCK_NAME = ".mlflow_sync.lock"
WORKFLOW_MARKER = "mlflow.json"  # results/<name>/mlflow.json, written by the workflow's first job
OPS = ("create_run", "reopen", "log_params", "log_metrics", "set_tags", "log_artifact", "log_model", "end_run")
MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit
MAX_PARAMS_PER_BATCH = 100


def new_placeholder() -> str:
    """A run id for a run the server has not seen yet."""
    return PLACEHOLDER_PREFIX + uuid.uuid4().hex


def is_placeholder(run_id: Any) -> bool:
    return isinstance(run_id, str) and run_id.startswith(PLACEHOLDER_PREFIX)


def now_ms() -> int:
    return int(time.time() * 1000)


def queue_beside(output: str | os.PathLike, own_folder: bool = True) -> Path:
    """The queue of the job that writes `output`: `<its folder>/mlflow_queue.jsonl` when the folder is
    the run's own, else `<folder>/<output stem>.mlflow_queue.jsonl` (a shared folder such as eval/)."""
    output = Path(output)
    return output.parent / (QUEUE_NAME if own_folder else f"{output.stem}.{QUEUE_NAME}")


def state_path(queue: Path) -> Path:
    return queue.with_name(queue.name[: -len(".jsonl")] + STATE_SUFFIX)


def results_root(path: str | os.PathLike) -> Path:
    """The results folder a queue belongs to: the nearest folder above it holding the workflow's
    `mlflow.json`, else the queue's own folder."""
    path = Path(path).resolve()
    for folder in (path.parent, *path.parent.parents):
        if (folder / WORKFLOW_MARKER).is_file():
            return folder
    return path.parent


def find_queues(folder: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(folder).rglob(f"*{QUEUE_NAME}") if p.is_file())


# ------------------------------------------------------------------------------------- reading and writing


def read_records(queue: Path) -> list[dict | None]:
    """The queue's complete lines, parsed (None for a line that is not a record: the remains of a kill
    mid-write); a last line without its newline is still being written and is left out."""
    try:
        data = queue.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # the part after the last newline is incomplete (or empty)
    records: list[dict | None] = []
    for raw in lines:
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        records.append(record if isinstance(record, dict) and record.get("op") in OPS else None)
    return records


def read_state(queue: Path) -> dict[str, Any]:
    try:
        state = json.loads(state_path(queue).read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    return {"done": int(state.get("done", 0)), "ids": dict(state.get("ids", {})),
            "skipped": list(state.get("skipped", []))}


def write_state(queue: Path, state: dict[str, Any]) -> None:
    from thinet.runtime import atomic_write_json

    atomic_write_json(state, state_path(queue))


def pending_count(queue: Path) -> int:
    """Records of the queue not replayed yet."""
    return max(0, len(read_records(queue)) - read_state(queue)["done"])


def load_ids(folder: str | os.PathLike) -> dict[str, str]:
    """Every placeholder -> MLflow run id mapping the replays under `folder` have made."""
    ids: dict[str, str] = {}
    for queue in find_queues(folder):
        ids.update(read_state(queue)["ids"])
    return ids


class OfflineQueue:
    """One job's queue file; `root` is its results folder (outage marker, sync lock)."""

    def __init__(self, path: str | os.PathLike, uri: str, experiment: str) -> None:
        self.path, self.uri, self.experiment = Path(path), uri, experiment
        self.root = results_root(self.path)
        self._checked_end = False

    def append(self, op: str, **fields: Any) -> dict:
        record = {"v": 1, "time": time.time(), "uri": self.uri, "experiment": self.experiment, "op": op, **fields}
        line = (json.dumps(record) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if not self._checked_end:  # a killed writer's partial line: start on a new one
                    size = os.fstat(fd).st_size
                    if size and _last_byte(self.path, size) != b"\n":
                        line = b"\n" + line
                    self._checked_end = True
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            raise OSError(err.errno, f"cannot queue an MLflow call in {self.path}: {err.strerror}") from err
        return record

    def records(self) -> list[dict | None]:
        return read_records(self.path)

    def pending(self) -> int:
        return pending_count(self.path)

    def created(self, placeholder: str) -> bool:
        return any(r and r["op"] == "create_run" and r["run"] == placeholder for r in self.records())

    def find_created(self, parent: str, key: str, value: str) -> str | None:
        """The placeholder of a queued child of `parent` tagged `key=value` (a restarted chain step)."""
        for r in self.records():
            if (r and r["op"] == "create_run" and r["tags"].get("mlflow.parentRunId") == parent
                    and r["tags"].get(key) == value):
                return r["run"]
        return None

    # the outage marker of the results folder
    def mark_outage(self, why: str) -> None:
        from thinet.runtime import atomic_write_json

        atomic_write_json({"tracking_uri": self.uri, "since": time.time(), "why": why, "queue": str(self.path)},
                          self.root / OUTAGE_MARKER)

    def outage_marked(self) -> bool:
        try:
            return json.loads((self.root / OUTAGE_MARKER).read_text()).get("tracking_uri") == self.uri
        except (OSError, ValueError):
            return False

    def clear_outage(self) -> None:
        (self.root / OUTAGE_MARKER).unlink(missing_ok=True)


def clear_outage(folder: str | os.PathLike, uri: str) -> None:
    """Remove the outage marker of the results `folder` if it names the server at `uri`."""
    marker = Path(folder) / OUTAGE_MARKER
    try:
        if json.loads(marker.read_text()).get("tracking_uri") == uri:
            marker.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1)


@contextmanager
def sync_lock(folder: str | os.PathLike) -> Iterator[None]:
    """One replay of `folder` at a time (jobs that find the server back, and `thinet mlflow-sync`)."""
    path = Path(folder) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------------ replay


class SyncError(RuntimeError):
    """A queue cannot be replayed as it stands (another store, a file gone); names the queue."""


@dataclass
class SyncReport:
    """What a replay did."""

    queues: int = 0
    records: int = 0             # records in all queues
    replayed: Counter = field(default_factory=Counter)  # by op
    created: list[str] = field(default_factory=list)    # runs created now (placeholder -> id)
    found: list[str] = field(default_factory=list)      # runs an interrupted replay had created
    skipped: list[str] = field(default_factory=list)    # unreadable lines
    blocked: list[str] = field(default_factory=list)    # queues waiting for a run no queue creates
    errors: list[str] = field(default_factory=list)     # queues that cannot be replayed as they stand

    @property
    def complete(self) -> bool:
        """Every record of every queue replayed (or skipped as unreadable)."""
        return not (self.blocked or self.errors)

    @property
    def changed(self) -> bool:
        return bool(sum(self.replayed.values()))

    def lines(self) -> list[str]:
        done = ", ".join(f"{n} {op}" for op, n in sorted(self.replayed.items())) or "nothing"
        out = [f"{self.queues} queue(s), {self.records} record(s); replayed now: {done}"]
        if self.created or self.found:
            out.append(f"runs created: {len(self.created)}" + (f" (and {len(self.found)} found from an "
                                                                f"interrupted replay)" if self.found else ""))
        out += [f"skipped: {s}" for s in self.skipped]
        out += [f"waiting: {b}" for b in self.blocked]
        out += [f"error: {e}" for e in self.errors]
        return out


def _identity(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


class Replayer:
    """Replays queues into the store of `client` (the store the queues were written for, unless
    `allow_other_uri`). `call(fn, *args)` wraps every request (the tracker's lock retries and error words)."""

    def __init__(self, client: Any, uri: str, *, call: Callable = _identity, allow_other_uri: bool = False,
                 log: Callable[[str], None] | None = None) -> None:
        self.client, self.uri, self.call, self.allow_other_uri = client, uri, call, allow_other_uri
        self.log = log or (lambda line: None)
        self.ids: dict[str, str] = {}
        self.experiments: dict[str, str] = {}
        self.replayed_runs: dict[str, dict[str, str]] = {}  # experiment id -> placeholder -> run id

    # ---- the folder
    def sync(self, folder: str | os.PathLike) -> SyncReport:
        queues = find_queues(folder)
        report = SyncReport(queues=len(queues))
        loaded = []
        for queue in queues:
            records, state = read_records(queue), read_state(queue)
            self.ids.update(state["ids"])
            report.records += len(records)
            if state["done"] < len(records):
                loaded.append((queue, records, state))
        stuck: dict[Path, str] = {}
        for queue, records, state in loaded:
            other = {r.get("uri") for r in records[state["done"]:] if r} - {self.uri}
            if other and not self.allow_other_uri:
                stuck[queue] = (f"{queue} was written for the MLflow store {', '.join(sorted(map(str, other)))}, "
                                f"not {self.uri}: point MLFLOW_TRACKING_URI at that store, or replay into this "
                                f"one on purpose (thinet mlflow-sync --into-this-store)")
        loaded.sort(key=lambda item: (_first_time(item[1][item[2]["done"]:]), str(item[0])))
        progress = True
        while progress:
            progress = False
            for queue, records, state in loaded:
                while queue not in stuck and state["done"] < len(records):
                    record = records[state["done"]]
                    if record is None:
                        state["skipped"].append(state["done"] + 1)
                        report.skipped.append(f"{queue}: line {state['done'] + 1} is not a record")
                        state["done"] += 1
                        write_state(queue, state)
                        continue
                    if self._missing(record):
                        break
                    try:
                        taken = self._apply(queue, records, state, report)
                    except TrackingError:  # the server went away or refused us: the whole replay stops
                        raise
                    except Exception as err:  # this record cannot be replayed as it stands: the others go on
                        stuck[queue] = str(err) if isinstance(err, SyncError) else (
                            f"{queue}, line {state['done'] + 1} ({record['op']} of run {record.get('run')}): "
                            f"{type(err).__name__}: {err}")
                        break
                    state["done"] += taken
                    write_state(queue, state)
                    progress = True
        for queue, records, state in loaded:
            if queue in stuck:
                report.errors.append(stuck[queue])
            elif state["done"] < len(records):
                missing = self._missing(records[state["done"]])
                report.blocked.append(f"{queue}: {len(records) - state['done']} record(s) wait for run(s) "
                                      f"{', '.join(missing)}, which no queue under {folder} creates")
        return report

    def _missing(self, record: dict) -> list[str]:
        refs = [record.get("run")] if record["op"] != "create_run" else []
        refs.append(record.get("tags", {}).get("mlflow.parentRunId") if record["op"] == "create_run" else None)
        return [r for r in refs if is_placeholder(r) and r not in self.ids]

    def real(self, run_id: str | None) -> str | None:
        return self.ids.get(run_id, run_id) if is_placeholder(run_id) else run_id

    # ---- one record (or a batch of metric records)
    def _apply(self, queue: Path, records: list, state: dict, report: SyncReport) -> int:
        record = records[state["done"]]
        op = record["op"]
        if op == "log_metrics":
            batch = [record]
            for nxt in records[state["done"] + 1:]:
                if not (nxt and nxt["op"] == "log_metrics" and nxt["run"] == record["run"]
                        and sum(len(r["metrics"]) for r in batch) + len(nxt["metrics"]) <= MAX_METRICS_PER_BATCH):
                    break
                batch.append(nxt)
            self.log_metrics(self.real(record["run"]), batch)
            report.replayed[op] += len(batch)
            return len(batch)
        if op == "create_run":
            real, new = self.create_run(record)
            self.ids[record["run"]] = state["ids"][record["run"]] = real
            (report.created if new else report.found).append(f"{record['run']} -> {real}")
        else:
            getattr(self, op)(self.real(record["run"]), record, queue)
        report.replayed[op] += 1
        return 1

    def experiment_id(self, name: str, artifact_location: str | None) -> str:
        if name not in self.experiments:
            found = self.call(self.client.get_experiment_by_name, name)
            if found is None:
                try:
                    self.experiments[name] = self.call(self.client.create_experiment, name,
                                                       artifact_location=artifact_location)
                except Exception:
                    found = self.call(self.client.get_experiment_by_name, name)
                    if found is None:
                        raise
            if found is not None:
                self.experiments[name] = found.experiment_id
        return self.experiments[name]

    def create_run(self, record: dict) -> tuple[str, bool]:
        """The run of a `create_run` record: created with its tags, start time and parameters, or found
        by its `thinet.offline_id` tag when an interrupted replay created it already."""
        experiment_id = self.experiment_id(record["experiment"], record.get("artifact_location"))
        placeholder = record["run"]
        replayed = self._replayed_runs(experiment_id)
        if placeholder in replayed:
            real = replayed[placeholder]
            self.log_params(real, {"params": record.get("params", {})}, None)
            return real, False
        tags = dict(record["tags"])
        if "mlflow.parentRunId" in tags:
            tags["mlflow.parentRunId"] = self.real(tags["mlflow.parentRunId"])
        tags[OFFLINE_TAG] = placeholder
        run = self.call(self.client.create_run, experiment_id, start_time=record.get("start_time"), tags=tags,
                        run_name=record["name"])
        real = replayed[placeholder] = run.info.run_id
        self._log_batches(real, _params(record.get("params", {})))  # a new run: no parameter yet
        return real, True

    def _replayed_runs(self, experiment_id: str) -> dict[str, str]:
        """Placeholder -> run id of every run of the experiment that a replay created (tagged
        `thinet.offline_id`): one search per experiment and replay, not one per run (replays take turns,
        so the answer stays true while this one runs)."""
        if experiment_id not in self.replayed_runs:
            found: dict[str, str] = {}
            token = None
            while True:
                page = self.call(self.client.search_runs, [experiment_id], max_results=1000, run_view_type=3,
                                 filter_string=f"tags.`{OFFLINE_TAG}` LIKE '{PLACEHOLDER_PREFIX}%'",
                                 page_token=token)
                found.update((run.data.tags[OFFLINE_TAG], run.info.run_id) for run in page)
                token = page.token
                if not token:
                    break
            self.replayed_runs[experiment_id] = found
        return self.replayed_runs[experiment_id]

    def reopen(self, run_id: str, record: dict, queue: Path) -> None:
        self.call(self.client.update_run, run_id, status="RUNNING")

    def log_params(self, run_id: str, record: dict, queue: Path | None) -> None:
        params = record.get("params", {})
        if not params:
            return
        existing = self.call(self.client.get_run, run_id).data.params
        self._log_batches(run_id, _params({k: v for k, v in params.items() if k not in existing}))

    def _log_batches(self, run_id: str, params: list) -> None:
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
            self.call(self.client.log_batch, run_id, params=params[i:i + MAX_PARAMS_PER_BATCH])

    def log_metrics(self, run_id: str, batch: list[dict]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(k, float(v), int(r["timestamp"]), int(r["step"]))
                   for r in batch for k, v in r["metrics"].items()]
        if metrics:
            self.call(self.client.log_batch, run_id, metrics=metrics)

    def set_tags(self, run_id: str, record: dict, queue: Path) -> None:
        from mlflow.entities import RunTag

        self.call(self.client.log_batch, run_id, tags=[RunTag(k, str(v)) for k, v in record["tags"].items()])

    def log_artifact(self, run_id: str, record: dict, queue: Path) -> None:
        path = Path(record["path"])
        if not path.exists():
            raise SyncError(f"{queue}: the artifact {path} of run {run_id} is gone; restore it, or remove "
                            f"the queue's line for it")
        self.call(self.client.log_artifact, run_id, str(path), record.get("folder"))

    def log_model(self, run_id: str, record: dict, queue: Path) -> None:
        """The model file the job evaluated, logged as the job would have (`Tracker.log_model`), unless the
        run holds a logged model of that name already (an interrupted replay)."""
        name = record.get("name", "model")
        run = self.call(self.client.get_run, run_id)
        have = self.call(self.client.search_logged_models, [run.info.experiment_id],
                         filter_string=f"source_run_id = '{run_id}' AND name = '{name}'", max_results=1)
        if have:
            return
        source = record.get("model_file")
        if not source or not Path(source).exists():
            raise SyncError(f"{queue}: the model file {source} of run {run_id} is gone; rerun its evaluation "
                            f"job, or remove the queue's line for it")
        from thinet.experiment._jobs import load_model
        from thinet.models import example_inputs

        model = load_model(source).cpu().eval()
        self.call(log_model_now, self.uri, run_id, model,
                  example_inputs(model, device="cpu").numpy(), name)

    def end_run(self, run_id: str, record: dict, queue: Path) -> None:
        self.call(self.client.set_terminated, run_id, status=record.get("status", "FINISHED"),
                  end_time=record.get("end_time"))


def log_model_now(uri: str, run_id: str, model: Any, input_example: Any, name: str = "model") -> None:
    """`mlflow.pytorch.log_model` into the run `run_id` of the store `uri` (the run is ended FINISHED
    by `mlflow.start_run`'s exit, as the evaluation job then ends it anyway)."""
    import mlflow
    import torch

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id):
        # Explicit requirements: inferring them imports and times every module of the job.
        mlflow.pytorch.log_model(model, name=name, input_example=input_example,
                                 pip_requirements=[f"torch=={torch.__version__}"])


def _params(params: dict[str, Any]) -> list:
    from mlflow.entities import Param

    return [Param(k, str(v)[:6000]) for k, v in params.items()]


def _first_time(records: list) -> float:
    return min((r["time"] for r in records if r), default=float("inf"))
