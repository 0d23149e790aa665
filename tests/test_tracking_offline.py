"""A tracking server lost and found (issue 31, items 1-3; docs/tracking.md): the start-up check, the
bounded wait, the offline queue beside a job's outputs, its replay (`thinet mlflow-sync`, idempotent),
and the server's refusals put in words naming the URI.

No server process: an unreachable server is a closed local port, a refusing one a few lines of
http.server, and the queues are replayed into a local sqlite store (one for the module: seconds).
The real server, restarted and lost mid-workflow, is .ci/check_mlflow_outage's.
"""
from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from thinet.cli import main as thinet_main
from thinet.experiment import (
    Tracker, TrackingAuthError, TrackingUnavailable, check_tracking_store, init_tracking, offline_run_ids,
    sync_offline,
)
from thinet.experiment import _offline, _tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[str]:
    """A local sqlite store the queues are replayed into (created once)."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    # A queue written for a server names no artifact location (the server's); replayed into sqlite, MLflow
    # puts the artifacts under ./mlruns of the working directory when it first opens the store (and keeps
    # that store): the store's folder, not the checkout.
    here = os.getcwd()
    os.chdir(folder)
    MlflowClient(uri).search_experiments()  # creates the schema
    yield uri
    os.chdir(here)


@pytest.fixture
def dead_server(monkeypatch) -> str:
    """MLFLOW_TRACKING_URI naming a local port nothing listens on; no waiting (patience 0, no retries)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("THINET_MLFLOW_PATIENCE_S", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    return uri


def results_folder(tmp_path: Path, name: str = "smoke") -> Path:
    folder = tmp_path / "results" / name
    folder.mkdir(parents=True)
    (folder / "mlflow.json").write_text("{}")  # what the workflow's first job writes
    return folder


def log_a_chain(folder: Path, experiment: str) -> tuple[str, str]:
    """What the chain job and then the evaluation job log, with the server unreachable."""
    chain = Tracker.open(experiment, queue=folder / "chain" / "c" / "mlflow_queue.jsonl")
    assert chain.offline
    parent = chain.start_run("vgg-thinet-r0.5-s0", params={"keep_ratio": 0.5, "seeds": [0, 1]},
                             tags={"thinet.kind": "chain"})
    child = chain.start_run("step 000 conv1", parent=parent, params={"step": 0}, tags={"thinet.step": "0"})
    assert chain.find_child(parent, "thinet.step", "0") == child  # a restarted step finds its queued run
    for step in range(3):
        chain.log_metrics(child, {"loss": 1.0 / (step + 1), "lr": 0.1}, step)
    chain.log_metrics(child, {"pruned_top1": 50.0, "flag": True})  # a bool is no metric
    chain.end_run(child)
    chain.log_metrics(parent, {"pruned_top1": 50.0, "params": 1e6}, step=0)
    steps = folder / "chain" / "c" / "steps.csv"
    steps.write_text("step,top1\n0,50.0\n")
    chain.log_artifact(parent, steps, "metrics")
    chain.end_run(parent)
    assert chain.resolve(parent) == parent and _offline.is_placeholder(parent)

    start = time.monotonic()
    evaluation = Tracker.open(experiment, queue=_offline.queue_beside(folder / "eval" / "c.csv", own_folder=False))
    assert evaluation.offline and time.monotonic() - start < 5  # the outage marker: no second wait
    evaluation.start_run("vgg-thinet-r0.5-s0", run_id=parent)
    evaluation.log_metrics(parent, {"final_top1": 60.0, "final_forward_ms": 1.5})
    evaluation.set_tags(parent, {"thinet.variant": "ThiNet r=0.5"})
    evaluation.end_run(parent)
    return parent, child


def snapshot(uri: str, experiment: str) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], run_view_type=3)
    return {r.info.run_name: {
        "status": r.info.status, "params": r.data.params, "tags": r.data.tags,
        "metrics": {k: sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(r.info.run_id, k))
                    for k in r.data.metrics},
        "artifacts": [f.path for f in client.list_artifacts(r.info.run_id, "metrics")],
        "id": r.info.run_id, "start": r.info.start_time, "end": r.info.end_time} for r in runs}


def test_a_lost_server_sends_jobs_offline_and_the_sync_replays_their_queues_once(tmp_path, dead_server, store):
    folder = results_folder(tmp_path)
    parent, child = log_a_chain(folder, "exp-replay")
    queues = _offline.find_queues(folder)
    assert [q.relative_to(folder).as_posix() for q in queues] == ["chain/c/mlflow_queue.jsonl",
                                                                  "eval/c.mlflow_queue.jsonl"]
    assert json.loads((folder / _offline.OUTAGE_MARKER).read_text())["tracking_uri"] == dead_server

    report = sync_offline(folder, uri=store, allow_other_uri=True)
    assert report.complete and len(report.created) == 2 and not report.found
    assert report.replayed == {"create_run": 2, "log_metrics": 6, "end_run": 3, "log_artifact": 1, "reopen": 1,
                               "set_tags": 1}
    ids = offline_run_ids(folder)
    assert set(ids) == {parent, child}
    runs = snapshot(store, "exp-replay")
    chain, step = runs["vgg-thinet-r0.5-s0"], runs["step 000 conv1"]
    assert chain["status"] == step["status"] == "FINISHED"
    assert chain["id"] == ids[parent] and step["tags"]["mlflow.parentRunId"] == ids[parent]
    assert chain["params"]["keep_ratio"] == "0.5" and chain["params"]["seeds"] == "[0, 1]"
    assert "git_commit" in chain["params"] and step["params"]["step"] == "0"
    assert chain["tags"]["thinet.variant"] == "ThiNet r=0.5" and chain["tags"]["thinet.offline_id"] == parent
    assert [(s, v) for s, v, _ in step["metrics"]["loss"]] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert "flag" not in step["metrics"] and chain["metrics"]["final_top1"][0][1] == 60.0
    assert chain["artifacts"] == ["metrics/steps.csv"]
    queued_start = json.loads(queues[0].read_text().splitlines()[0])["start_time"]
    assert chain["start"] == queued_start  # the run keeps the time it started, not the replay's

    again = sync_offline(folder, uri=store, allow_other_uri=True)
    assert not again.changed and again.complete and snapshot(store, "exp-replay") == runs

    # A replay killed before it recorded its progress: the runs are found by their tag, nothing doubles.
    for queue in queues:
        _offline.state_path(queue).unlink()
    resumed = sync_offline(folder, uri=store, allow_other_uri=True)
    assert resumed.complete and len(resumed.found) == 2 and not resumed.created
    assert snapshot(store, "exp-replay") == runs


def test_a_queue_naming_another_queues_run_waits_for_it(tmp_path, dead_server, store):
    folder = results_folder(tmp_path)
    placeholder = _offline.new_placeholder()
    early = _offline.OfflineQueue(folder / "eval" / "b.mlflow_queue.jsonl", dead_server, "exp-order")
    early.append("reopen", run=placeholder)  # written first, but names a run the other queue creates
    early.append("log_metrics", run=placeholder, metrics={"base_top1": 70.0}, step=0, timestamp=1)
    early.append("end_run", run=placeholder, status="FINISHED", end_time=2)
    late = _offline.OfflineQueue(folder / "base" / "b" / "mlflow_queue.jsonl", dead_server, "exp-order")
    late.append("create_run", run=placeholder, name="base-vgg", tags={"mlflow.runName": "base-vgg"},
                params={"seed": "0"}, start_time=0, artifact_location=None)
    orphan = _offline.OfflineQueue(folder / "eval" / "x.mlflow_queue.jsonl", dead_server, "exp-order")
    orphan.append("log_metrics", run=_offline.new_placeholder(), metrics={"m": 1.0}, step=0, timestamp=1)
    lost = _offline.OfflineQueue(folder / "eval" / "y.mlflow_queue.jsonl", dead_server, "exp-order")
    lost.append("end_run", run="0" * 32, status="FINISHED", end_time=1)  # a run the store does not hold

    report = sync_offline(folder, uri=store, allow_other_uri=True)
    assert report.replayed == {"create_run": 1, "reopen": 1, "log_metrics": 1, "end_run": 1}
    assert not report.complete and len(report.blocked) == 1 and "x.mlflow_queue.jsonl" in report.blocked[0]
    assert len(report.errors) == 1 and "y.mlflow_queue.jsonl, line 1 (end_run of run 000" in report.errors[0]
    run = snapshot(store, "exp-order")["base-vgg"]
    assert run["status"] == "FINISHED" and run["metrics"]["base_top1"] == [(0, 70.0, 1)]


def test_a_queued_model_is_logged_from_its_file_once(tmp_path, dead_server, store):
    import torch
    from mlflow.tracking import MlflowClient

    from thinet.experiment import save_model

    folder = results_folder(tmp_path)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    model.thinet_input_size = (1, 2, 2)
    save_model(model, folder / "base" / "b" / "model.pt")
    evaluation = Tracker.open("exp-model", queue=_offline.queue_beside(folder / "eval" / "b.csv", own_folder=False))
    run = evaluation.start_run("base-b")
    evaluation.log_model(run, model, None, source=folder / "base" / "b" / "model.pt")  # offline: by its file
    evaluation.end_run(run)
    assert [r["op"] for r in evaluation.queue.records()] == ["create_run", "log_model", "end_run"]

    assert sync_offline(folder, uri=store, allow_other_uri=True).complete
    client = MlflowClient(store)
    real = offline_run_ids(folder)[run]
    experiment = client.get_run(real).info.experiment_id

    def models() -> list[str]:
        return [m.name for m in client.search_logged_models([experiment], filter_string=f"source_run_id = '{real}'")]

    assert models() == ["model"] and client.get_run(real).info.status == "FINISHED"
    _offline.state_path(evaluation.queue.path).unlink()  # a replay killed before it recorded its progress
    assert sync_offline(folder, uri=store, allow_other_uri=True).complete
    assert models() == ["model"]


def test_a_partial_last_line_is_left_out_and_the_next_record_starts_a_new_line(tmp_path):
    queue = _offline.OfflineQueue(tmp_path / "mlflow_queue.jsonl", "http://h:1", "e")
    queue.append("end_run", run="a", status="FINISHED", end_time=1)
    with queue.path.open("ab") as handle:
        handle.write(b'{"v": 1, "op": "log_met')  # a job killed mid-write
    assert [r["run"] for r in _offline.read_records(queue.path)] == ["a"]
    _offline.OfflineQueue(queue.path, "http://h:1", "e").append("end_run", run="b", status="FINISHED", end_time=2)
    records = _offline.read_records(queue.path)
    assert [r and r["run"] for r in records] == ["a", None, "b"]  # the fragment is skipped on replay


def test_the_sync_refuses_queues_written_for_another_store(tmp_path, dead_server, store, monkeypatch, capsys):
    folder = results_folder(tmp_path)
    log_a_chain(folder, "exp-cli")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    assert thinet_main(["mlflow-sync", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"written for the MLflow store {dead_server}, not {store}" in out and "--into-this-store" in out
    assert thinet_main(["mlflow-sync", str(folder), "--into-this-store"]) == 0
    assert "runs created: 2" in capsys.readouterr().out
    assert thinet_main(["mlflow-sync", str(folder), "--into-this-store"]) == 0
    out = capsys.readouterr().out
    assert "replayed now: nothing" in out and "(it was already)" in out


def test_an_unreachable_server_fails_the_start_in_seconds_naming_the_uri_and_its_source(tmp_path, dead_server):
    start = time.monotonic()
    with pytest.raises(TrackingUnavailable) as err:
        check_tracking_store(dead_server, "thinet-smoke")
    assert time.monotonic() - start < 10
    assert f"{dead_server} (from the environment variable MLFLOW_TRACKING_URI) does not answer" in str(err.value)
    assert "Connection refused" in str(err.value)
    marker = tmp_path / "mlflow.json"
    with pytest.raises(TrackingUnavailable, match="MLFLOW_TRACKING_URI"):
        init_tracking("thinet-smoke", True, marker)  # the workflow's first job, started with --no-hooks
    assert not marker.exists()


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A server up (GET /health) that refuses every API call with `status`."""

    status = 401

    def do_GET(self) -> None:  # noqa: N802
        self._answer(200 if self.path == "/health" else self.status)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self.status)

    def _answer(self, status: int) -> None:
        body = b"OK" if status == 200 else b"Permission denied" if status == 403 else b"You are not authenticated."
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def refusing_server(monkeypatch):
    def start(status: int) -> str:
        handler = type("Handler", (_Refusing,), {"status": status})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        return uri

    servers: list = []
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    yield start
    for server in servers:
        server.shutdown()


def test_refused_credentials_are_an_error_naming_the_uri_never_queued(tmp_path, refusing_server, monkeypatch):
    uri = refusing_server(401)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    with pytest.raises(TrackingAuthError) as err:
        check_tracking_store(uri, "thinet-smoke")
    assert f"{uri} (from the environment variable MLFLOW_TRACKING_URI) refused" in str(err.value)
    assert "HTTP 401" in str(err.value)
    assert "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in str(err.value)

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ana")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    queue = tmp_path / "mlflow_queue.jsonl"
    start = time.monotonic()
    with pytest.raises(TrackingAuthError, match=r"did not accept the credentials of user 'ana'") as err:
        Tracker.open("thinet-smoke", queue=queue)
    assert uri in str(err.value) and time.monotonic() - start < 10
    assert not queue.exists()

    uri = refusing_server(403)
    with pytest.raises(TrackingAuthError, match=r"permission denied \(HTTP 403\) for user 'ana'"):
        check_tracking_store(uri, "thinet-smoke")


class _FlakyClient:
    """An MlflowClient whose log_batch finds the server gone `failures` times, then logs."""

    def __init__(self, failures: int) -> None:
        self.failures, self.logged = failures, []

    def log_batch(self, run_id, metrics=(), params=(), tags=()):
        import requests

        if self.failures:
            self.failures -= 1
            raise requests.exceptions.ConnectionError("[Errno 111] Connection refused")
        self.logged.append((run_id, [(m.key, m.value, m.step) for m in metrics]))


def _tracker(tmp_path: Path, client) -> Tracker:
    uri = "http://tracking.example:5000"
    queue = _offline.OfflineQueue(results_folder(tmp_path) / "base" / "b" / "mlflow_queue.jsonl", uri, "e")
    return Tracker(client, "1", experiment="e", uri=uri, queue=queue)


def test_a_server_back_within_the_patience_is_waited_for(tmp_path, monkeypatch):
    monkeypatch.setattr(_tracking, "probe", lambda uri, timeout=5.0: None)  # /health answers
    monkeypatch.setattr(_tracking, "WAIT_PROBE_S", 0.01)
    monkeypatch.setenv("THINET_MLFLOW_PATIENCE_S", "30")
    tracker = _tracker(tmp_path, _FlakyClient(failures=3))
    tracker.log_metrics("run1", {"train_loss": 2.0}, step=7)
    assert tracker.client.logged == [("run1", [("train_loss", 2.0, 7)])]
    assert not tracker.offline and not tracker.queue.path.exists()


def test_past_the_patience_the_job_goes_offline_and_marks_the_outage(tmp_path, monkeypatch):
    monkeypatch.setattr(_tracking, "probe", lambda uri, timeout=5.0: "[Errno 111] Connection refused")
    monkeypatch.setattr(_tracking, "WAIT_PROBE_S", 0.01)
    monkeypatch.setenv("THINET_MLFLOW_PATIENCE_S", "0.05")
    tracker = _tracker(tmp_path, _FlakyClient(failures=10**6))
    start = time.monotonic()
    tracker.log_metrics("run1", {"train_loss": 2.0}, step=7)
    tracker.log_metrics("run1", {"train_loss": 1.0}, step=8)  # offline: queued at once
    assert tracker.offline and time.monotonic() - start < 5
    assert [(r["op"], r["step"]) for r in tracker.queue.records()] == [("log_metrics", 7), ("log_metrics", 8)]
    assert tracker.queue.outage_marked()
    monkeypatch.setenv("THINET_MLFLOW_PATIENCE_S", "soon")
    with pytest.raises(ValueError, match="THINET_MLFLOW_PATIENCE_S='soon' is not a number of seconds"):
        _tracking.server_patience()


def test_a_job_told_to_stop_stops_waiting_for_the_server_and_saves_first(tmp_path, monkeypatch):
    import signal

    from thinet.runtime import CheckpointTrigger

    monkeypatch.setattr(_tracking, "probe", lambda uri, timeout=5.0: "[Errno 111] Connection refused")
    monkeypatch.setenv("THINET_MLFLOW_PATIENCE_S", "600")
    tracker = _tracker(tmp_path, _FlakyClient(failures=10**6))
    with CheckpointTrigger(minutes=None) as trigger:  # the training loop's SIGTERM handler
        trigger.pending = signal.SIGTERM               # SLURM preempts the job while it waits
        start = time.monotonic()
        tracker.log_metrics("run1", {"train_loss": 2.0}, step=7)
    assert time.monotonic() - start < 5 and tracker.offline
    assert [r["op"] for r in tracker.queue.records()] == ["log_metrics"]
    assert not tracker.queue.outage_marked()  # it did not wait the patience out: other jobs still wait


def test_an_offline_job_catches_up_when_the_server_is_back(tmp_path, dead_server, store, monkeypatch):
    from mlflow.tracking import MlflowClient

    folder = results_folder(tmp_path)
    tracker = Tracker.open("exp-back", queue=folder / "base" / "b" / "mlflow_queue.jsonl")
    run = tracker.start_run("base-vgg", tags={"thinet.kind": "base"})
    tracker.log_metrics(run, {"train_loss": 2.0}, step=1)
    assert tracker.offline and tracker.queue.pending() == 2

    # The server is back (here: the sqlite store stands in for it).
    monkeypatch.setattr(_tracking, "probe", lambda uri, timeout=5.0: None)
    replay = _tracking.sync_offline
    monkeypatch.setattr(_tracking, "sync_offline",
                        lambda folder, uri=None: replay(folder, uri=store, allow_other_uri=True))
    tracker.client = MlflowClient(store)
    tracker._last_probe = float("-inf")  # the next call asks the server again
    tracker.log_metrics(run, {"train_loss": 1.0}, step=2)
    assert not tracker.offline and tracker.queue.pending() == 0 and not tracker.queue.outage_marked()
    real = tracker.resolve(run)
    assert real != run and not _offline.is_placeholder(real)
    tracker.end_run(run)  # online, translated
    history = tracker.client.get_metric_history(real, "train_loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.0)]
    assert tracker.client.get_run(real).info.status == "FINISHED" and tracker.queue.pending() == 0
