"""Where criteria come from besides this package: config-named modules and entry points.

Third-party packages declare, in their pyproject.toml,

    [project.entry-points."thinet.criteria"]
    l2_norm = "my_pkg.l2_norm"            # a module whose import registers criteria
    fisher = "my_pkg.scores:fisher_score"  # a function, registered as "fisher"
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable

from thinet.criteria._registry import register_criterion, registered
from thinet.types import PruningError

ENTRY_POINT_GROUP = "thinet.criteria"


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _import_file(path: Path) -> ModuleType:
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    module_name = f"thinet_criteria_ext.{resolved.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise PruningError(f"criteria_modules: cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[module_name]
        raise
    return module


def load_criterion_modules(specs: Iterable[str]) -> list[str]:
    """Import extra criterion modules (config key `criteria_modules`); return the names they added.

    Each entry is a dotted module name (`my_pkg.l2_norm`) or a path to a `.py` file.

    >>> load_criterion_modules(["baselines.random"])  # already registered: adds nothing
    []
    """
    if isinstance(specs, str):
        raise PruningError(f"criteria_modules must be a list of modules or files, got the string {specs!r}")
    specs = list(specs)
    for spec in specs:
        if not isinstance(spec, str) or not spec:
            raise PruningError(f"criteria_modules: entry {spec!r} must be a module name or a .py path")
        if _looks_like_path(spec) and not Path(spec).is_file():
            raise FileNotFoundError(f"criteria_modules: file {spec!r} does not exist")
    before = set(registered())
    for spec in specs:
        if _looks_like_path(spec):
            _import_file(Path(spec))
            continue
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as err:
            raise PruningError(f"criteria_modules: module {spec!r} cannot be imported ({err})") from err
    return sorted(set(registered()) - before)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_entry_points() -> list[str]:
    """Load every `thinet.criteria` entry point; return the criterion names they added."""
    before = set(registered())
    for ep in _entry_points():
        try:
            obj = ep.load()
        except Exception as err:  # name the plugin: its own traceback is no help to the user
            raise PruningError(
                f"entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP!r}) failed to load: {err}") from err
        if isinstance(obj, ModuleType):
            continue  # importing the module ran its @register_criterion decorators
        if not callable(obj):
            raise PruningError(f"entry point {ep.name!r} = {ep.value!r} is neither a module nor a function")
        register_criterion(ep.name)(obj)
    return sorted(set(registered()) - before)
