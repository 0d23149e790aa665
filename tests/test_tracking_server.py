"""Logging to a tracking server (http): what differs from the default sqlite store.

The server itself runs in CI (.ci/check_mlflow_server: PostgreSQL, basic auth, 16 writers;
.ci/check_mlflow_outage: the smoke workflow through it); these are the fast checks of the client side.
"""
from __future__ import annotations

import os
import subprocess
import sys

from thinet.experiment._tracking import artifact_root


def test_jobs_turn_mlflows_telemetry_off_before_importing_mlflow():
    # With telemetry on and no internet, MLflow 3.17 deletes _MLFLOW_TELEMETRY_SESSION_ID from os.environ
    # in a thread while requests iterates os.environ: a job logging to a server died with KeyError (CI).
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "PYTEST_CURRENT_TEST", "CI")}
    code = ("import thinet.experiment, mlflow\n"
            "from mlflow.telemetry.client import get_telemetry_client\n"
            "from mlflow.telemetry.utils import is_telemetry_disabled\n"
            "print(is_telemetry_disabled(), get_telemetry_client())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "None"]


def test_with_a_server_the_server_keeps_the_artifacts(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert artifact_root(tmp_path) is None  # the server's --artifacts-destination, reachable from every node
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert artifact_root(tmp_path) == (tmp_path.resolve() / "mlruns").as_uri()
