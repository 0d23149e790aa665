"""A tracking server run with MLflow's basic-auth app refuses what it should, in words naming the URI.

    MLFLOW_TRACKING_URI=... MLFLOW_TRACKING_USERNAME=thinet MLFLOW_TRACKING_PASSWORD=... \
        python .ci/mlflow_auth_check.py [--admin-password-file /tmp/thinet-mlflow-server/admin_password]

With the right credentials (from the environment) a run is written and read back. Then, each through
the workflow's own tracker (thinet.experiment.Tracker) and its start-up check (check_tracking_store):
  * no credentials: the check and a write (create a run in the experiment) are refused, HTTP 401, and
    the error says to set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD and names the URI;
  * a wrong password: refused, HTTP 401, the error names the user and the URI;
  * with --admin-password-file: a second user (created by the admin) who was granted nothing writes to
    this experiment: refused, HTTP 403, permission denied, naming the URI.
No refused call is queued for later (only an unreachable server makes a job queue its calls).
Exits 1 listing every expectation that failed.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

USER, PASSWORD = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-password-file", type=Path)
    parser.add_argument("--experiment", default=f"auth-check-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args()

    from thinet.experiment import Tracker, TrackingAuthError, check_tracking_store

    uri = os.environ["MLFLOW_TRACKING_URI"]
    right = (os.environ[USER], os.environ[PASSWORD])
    problems: list[str] = []
    queue = Path(tempfile.mkdtemp()) / "mlflow_queue.jsonl"

    def as_user(user: str | None, password: str | None) -> None:
        for name, value in ((USER, user), (PASSWORD, password)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    as_user(*right)
    print(f"auth check: {check_tracking_store(uri, args.experiment)}")
    tracker = Tracker.open(args.experiment, queue=queue)
    run_id = tracker.start_run("written with the right credentials")
    tracker.log_metrics(run_id, {"ok": 1.0})
    tracker.end_run(run_id)
    status = tracker.client.get_run(run_id).info.status
    print(f"auth check: right credentials ({right[0]!r}): run {run_id} written, {status}")
    if status != "FINISHED":
        problems.append(f"the run written with the right credentials is {status}")

    def refused(label: str, status: int, words: str, call) -> None:
        start = time.monotonic()
        try:
            call()
        except TrackingAuthError as err:
            text = str(err)
            took = time.monotonic() - start
            print(f"auth check: {label}: refused in {took:.1f} s: {text}")
            for must in (uri, f"HTTP {status}", words):
                if must not in text:
                    problems.append(f"{label}: the error does not say {must!r}: {text}")
            if took > 30:
                problems.append(f"{label}: refused only after {took:.0f} s")
            return
        except Exception as err:  # noqa: BLE001  (anything else is a failure of this check)
            problems.append(f"{label}: {type(err).__name__} instead of a TrackingAuthError: {err}")
            return
        problems.append(f"{label}: was not refused")

    cases = [("no credentials", None, None, 401, f"set {USER} and {PASSWORD}"),
             ("a wrong password", right[0], right[1] + "-wrong", 401, f"user {right[0]!r}")]
    for label, user, password, status, words in cases:
        as_user(user, password)
        refused(f"{label}, start-up check", status, words, lambda: check_tracking_store(uri, args.experiment))
        refused(f"{label}, write", status, words, lambda: tracker.start_run("must be refused"))

    if args.admin_password_file:
        from mlflow.server.auth.client import AuthServiceClient

        other = (f"reader-{secrets.token_hex(3)}", secrets.token_urlsafe(16))
        as_user("admin", args.admin_password_file.read_text().strip())
        AuthServiceClient(uri).create_user(*other)
        as_user(*other)
        refused(f"user {other[0]!r} without permission on the experiment, write", 403, "permission denied",
                lambda: tracker.log_metrics(run_id, {"not_allowed": 1.0}))
    as_user(*right)

    if queue.exists():
        problems.append(f"a refused call was queued in {queue}: {queue.read_text()[:300]}")
    if tracker.offline:
        problems.append("the tracker went offline on a refusal")
    runs = tracker.client.search_runs([tracker.experiment_id])
    if len(runs) != 1:
        problems.append(f"the experiment holds {len(runs)} runs, expected the 1 written with the right credentials")
    for problem in problems:
        print(f"auth check: FAILED: {problem}", file=sys.stderr)
    print("auth check: " + ("all refusals as expected" if not problems else f"{len(problems)} PROBLEM(S)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
