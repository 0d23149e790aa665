"""The package's shape (ARCHITECTURE.md): one folder per concept, floors that never import upward,
and private modules (`_name.py`) used only inside their own package.

Every import statement is read from the source (module level and inside functions alike).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "thinet"
# The modules allowed at the top of thinet/ (the issue: "or fewer").
TOP_LEVEL = {"__init__", "__main__", "types", "selection", "pipeline"}
# Floors, bottom first: a module may import its own floor and the ones below, never above.
FLOORS = {
    "thinet.types": 0,
    "thinet.models": 1, "thinet.data": 1, "thinet.runtime": 1,
    "thinet.selection": 2, "thinet.sampling": 2, "thinet.surgery": 2, "thinet.strategies": 2,
    "thinet.criteria": 2, "thinet.pipeline": 2, "thinet.grouping": 2, "thinet.interop": 2, "baselines": 2,
    "thinet.report": 3,
    "thinet.experiment": 4,
    "thinet.bench": 5,
    "thinet.cli": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str | None:
    """The floor entry a module belongs to (its concept folder or top-level module)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in FLOORS:
            return ".".join(parts[:n])
    return None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file; `from a import b` also yields `a.b`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in ("thinet", "baselines")]


def sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def test_only_the_core_modules_sit_at_the_top_of_the_package():
    assert {p.stem for p in PACKAGE.glob("*.py")} <= TOP_LEVEL


@pytest.mark.parametrize("path", sources(PACKAGE, ROOT / "baselines"), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_upward(path: Path):
    here = module_name(path)
    if here in ("thinet", "thinet.__main__"):
        return  # the lazy public API and the command entry point sit above every floor
    floor = FLOORS[unit_of(here)]
    upward = [f"line {line}: {name}" for line, name in imports_of(path)
              if unit_of(name) is not None and FLOORS[unit_of(name)] > floor]
    assert not upward, f"{here} (floor {floor}) imports a higher floor: {upward}"


def _private_part(name: str) -> str | None:
    """The package owning the first `_private` part of a dotted name, e.g. thinet.criteria for
    thinet.criteria._registry.registered (dunder names are not private)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


@pytest.mark.parametrize("path", sources(PACKAGE, ROOT / "baselines", ROOT / "workflow"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_private_modules_are_used_only_inside_their_package(path: Path):
    here = module_name(path)
    foreign = [f"line {line}: {name}" for line, name in imports_of(path)
               if (owner := _private_part(name)) is not None and not (here == owner or here.startswith(owner + "."))]
    assert not foreign, f"{here} imports another package's private module: {foreign}"


def test_the_checks_catch_what_they_look_for(tmp_path):
    # The helpers above must see an upward import and a foreign private import when there is one.
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from thinet.experiment._jobs import log\n    import thinet.cli\n")
    names = [name for _, name in imports_of(probe)]
    assert "thinet.experiment._jobs" in names and "thinet.cli" in names
    assert FLOORS[unit_of("thinet.cli")] > FLOORS[unit_of("thinet.runtime._training")]
    assert _private_part("thinet.experiment._jobs.log") == "thinet.experiment"
    assert _private_part("thinet.runtime.__init__") is None
