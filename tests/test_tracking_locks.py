"""The tracker waits out a locked sqlite store on reads as on writes (issue 25, item 4).

MLflow 3.17 lets sqlite wait 20 s for a lock (`PRAGMA busy_timeout = 20000` on every session);
these tests shorten that wait to BUSY_MS so that a lock held a second shows what a lock held
half a minute does with the real setting: the call fails with "database is locked" unless the
tracker tries again.
"""
from __future__ import annotations

import inspect
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from thinet.experiment import Tracker
from thinet.experiment import _tracking

BUSY_MS = 200
HOLD_S = 1.0


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A folder holding a default store with one experiment and one run (made once: seconds)."""
    folder = tmp_path_factory.mktemp("locks")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        tracker = Tracker.open("locked")
        tracker.start_run("parent")
    return folder


@pytest.fixture
def short_busy_wait(store, monkeypatch) -> Path:
    import mlflow.store.db.utils as db_utils
    from sqlalchemy import sql

    class ShortBusyWait:  # MLflow's module-level `sql`, its busy_timeout pragma shortened
        def __getattr__(self, name):
            return getattr(sql, name)

        @staticmethod
        def text(statement: str):
            return sql.text(statement.replace("busy_timeout = 20000", f"busy_timeout = {BUSY_MS}"))

    monkeypatch.setattr(db_utils, "sql", ShortBusyWait())
    monkeypatch.chdir(store)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return store / "results" / "mlflow.db"


class _Lock(threading.Thread):
    """Another job's write transaction: an exclusive lock on the store for `seconds`."""

    def __init__(self, db: Path, seconds: float) -> None:
        super().__init__(daemon=True)
        self.db, self.seconds, self.held = db, seconds, threading.Event()

    def run(self) -> None:
        connection = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN EXCLUSIVE")
        self.held.set()
        time.sleep(self.seconds)
        connection.execute("COMMIT")
        connection.close()

    def __enter__(self) -> "_Lock":
        self.start()
        self.held.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()


def test_the_docstring_timing_is_the_pinned_mlflows():
    import mlflow.store.db.utils as db_utils

    assert "PRAGMA busy_timeout = 20000" in inspect.getsource(db_utils._get_managed_session_maker)
    assert "up to 20 s" in _tracking._retry_locked.__doc__ and _tracking.LOCK_PATIENCE_S == 300


@pytest.mark.parametrize("read", ["open", "find_child", "log_params"])
def test_a_read_waits_for_a_lock_held_longer_than_sqlites_own_wait(short_busy_wait, read):
    parent = Tracker.open("locked").client.search_runs([Tracker.open("locked").experiment_id])[0].info.run_id
    calls = {"open": lambda: Tracker.open("locked"),
             "find_child": lambda: Tracker.open("locked").find_child(parent, "thinet.step", "0"),
             "log_params": lambda: Tracker.open("locked").log_params(parent, {"after_lock": read})}
    with _Lock(short_busy_wait, HOLD_S):
        start = time.monotonic()
        calls[read]()
        waited = time.monotonic() - start
    assert waited > HOLD_S - 0.2  # it did meet the lock, and outlasted it


def test_a_store_locked_past_the_patience_fails_with_sqlites_error(short_busy_wait, monkeypatch):
    monkeypatch.setattr(_tracking, "LOCK_PATIENCE_S", 0.3)
    with _Lock(short_busy_wait, 2 * HOLD_S):
        start = time.monotonic()
        with pytest.raises(Exception, match="database is locked"):
            Tracker.open("locked")
        assert time.monotonic() - start < 2 * HOLD_S
