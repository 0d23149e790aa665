"""Shared fixtures."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from thinet.experiment import load_config, read_yaml_files

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(autouse=True)
def restore_registry():
    """Criteria a test registers (on-demand `tp_*` names, test criteria) are unregistered after it, so that a
    plan built by a later test sees the same `criteria: all` as a fresh process."""
    from thinet.criteria import available_criteria
    from thinet.criteria._registry import registered

    available_criteria()  # the baselines load once, before the snapshot
    saved = dict(registered())
    yield
    registered().clear()
    registered().update(saved)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests: on tiny convolutions thread start-up costs more than it saves
    (10× slower on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def smoke_raw() -> dict:
    """config/smoke.yaml as read, before validation (tests deep-copy it before changing it)."""
    return read_yaml_files([ROOT / "config" / "smoke.yaml"])


@pytest.fixture
def load_raw(tmp_path: Path) -> Callable[[dict], dict]:
    """load_config on an in-memory config, written to a file first as users give it."""
    def load(raw: dict) -> dict:
        path = tmp_path / "cfg.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_config([path], SCHEMA)
    return load
