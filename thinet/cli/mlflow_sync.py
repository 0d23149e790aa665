"""Bring the MLflow store up to date with what a workflow's jobs queued while the tracking server was
away (docs/tracking.md): every `mlflow_queue.jsonl` under the results folder, replayed in order
(a run before the calls that name it, parents before children), runs ended as the jobs ended them.
Idempotent: what was replayed is recorded beside each queue, so a second run changes nothing.

    $ export MLFLOW_TRACKING_URI=http://host:5000 MLFLOW_TRACKING_USERNAME=... MLFLOW_TRACKING_PASSWORD=...
    $ thinet mlflow-sync results/imagenet_vgg16

Exit status 0 when every queued call is in the store, 1 when some still wait (a run no queue creates,
an artifact file gone), 2 when the store cannot be reached or refuses the credentials.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "mlflow-sync"
HELP = "replay the MLflow calls jobs queued while the tracking server was away (results/<name>)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, help="a results folder, e.g. results/smoke")
    parser.add_argument("--into-this-store", action="store_true",
                        help="replay queues written for another tracking URI into MLFLOW_TRACKING_URI's store")


def run(args: argparse.Namespace) -> int:
    from thinet.experiment import TrackingError, check_tracking_store, sync_offline, tracking_uri

    folder: Path = args.results
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder {folder}")
    uri = tracking_uri(folder.resolve().parent)
    try:
        print(f"thinet mlflow-sync: {check_tracking_store(uri)}")
        report = sync_offline(folder, uri=uri, allow_other_uri=args.into_this_store)
    except TrackingError as err:
        print(f"thinet mlflow-sync: error: {err}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(f"thinet mlflow-sync: {line}")
    if not report.queues:
        print(f"thinet mlflow-sync: no queue under {folder}: nothing was logged offline")
    elif report.complete:
        print(f"thinet mlflow-sync: {uri} is up to date with {folder}"
              + ("" if report.changed else " (it was already)"))
    return 0 if report.complete else 1
