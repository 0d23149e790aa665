"""The README landing page and the documentation site under docs/ (built by `.ci/check_docs`).

`mkdocs build --strict` checks the site itself (every link, anchor, snippet and docstring); these
tests check what it cannot see and what needs no MkDocs: the README's links and size, the nav against
the files, the criteria table against the registry, and that the README's pruning snippet runs.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250


def _nav_pages(nav) -> list[str]:
    """Every file named in mkdocs.yml's nav (entries are `file`, `{title: file}` or `{title: [...]}`)."""
    pages: list[str] = []
    for entry in nav:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def _mkdocs_config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def _code_block(text: str, after: str, language: str) -> str:
    """The first ```language block after the heading `after`."""
    start = text.index(after)
    match = re.search(rf"```{language}\n(.*?)```", text[start:], flags=re.S)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_every_nav_page_exists_and_every_page_is_in_the_nav() -> None:
    config = _mkdocs_config()
    assert config["docs_dir"] == "docs" and config["strict"] is True
    pages = _nav_pages(config["nav"])
    assert len(pages) == len(set(pages)), "a page is named twice in the nav"
    missing = [page for page in pages if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml's nav names pages that do not exist under docs/: {missing}"
    on_disk = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md") if "_hooks" not in path.parts}
    assert on_disk - set(pages) == set(), "pages under docs/ that the nav does not name"


def test_readme_is_a_landing_page_whose_links_exist() -> None:
    text = README.read_text()
    lines = text.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move it to docs/"
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+://", t) and not t.startswith("#")]
    assert local, "the README links no page"
    broken = [t for t in local if t and not (ROOT / t).exists()]
    assert not broken, f"README.md links files that do not exist: {broken}"
    # every page of the site is linked from the landing page
    linked = {str((ROOT / t).resolve().relative_to(DOCS)) for t in local if (ROOT / t).resolve().is_relative_to(DOCS)}
    nav = set(_nav_pages(_mkdocs_config()["nav"]))
    assert {p for p in nav if not p.startswith("api/")} | {"api/index.md"} <= linked


def test_readme_quickstart_holds_the_ci_commands() -> None:
    text = README.read_text()
    block = text[text.index("<!-- quickstart:start -->"):text.index("<!-- quickstart:end -->")]
    assert "bash .ci/setup && . .venv/bin/activate && snakemake --cores all" in block
    assert "bash .ci/setup && .venv/bin/python -m pytest" in block
    assert "bash .ci/setup && .venv/bin/python -m pytest" in (ROOT / ".ci" / "run").read_text()


def test_snippet_sections_the_site_includes_exist() -> None:
    """docs/ pages include README sections (`--8<-- "README.md:name"`); each needs its two markers."""
    for page in DOCS.rglob("*.md"):
        for path, section in re.findall(r'^--8<-- "([^":]+)(?::([\w-]+))?"', page.read_text(), flags=re.M):
            source = (ROOT / path).read_text()
            if section:
                for end in ("start", "end"):
                    assert f"--8<-- [{end}:{section}]" in source, f"{page.name}: {path} lacks [{end}:{section}]"


def test_readme_lists_every_registered_criterion() -> None:
    from thinet.criteria import available_criteria, get_criterion, on_demand_criteria

    text = README.read_text()
    table = text[text.index("--8<-- [start:criteria]"):text.index("--8<-- [end:criteria]")]
    named = set(re.findall(r"`(\w+)`", table))
    shipped = {name for name in available_criteria()  # not those another test registered for itself
               if getattr(get_criterion(name), "__module__", "").split(".")[0] in ("thinet", "baselines")}
    missing = shipped - named
    assert not missing, f"registered criteria missing from the README's criteria table: {sorted(missing)}"
    assert set(on_demand_criteria()) <= named


@pytest.mark.slow
def test_readme_five_line_pruning_snippet_runs(tmp_path: Path, monkeypatch) -> None:
    code = _code_block(README.read_text(), "## Prune your own model in five lines", "python")
    monkeypatch.chdir(tmp_path)  # its workdir
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 (the documented snippet, as a user runs it)
    import torchvision

    import thinet

    pruned, original = thinet.count_params(scope["model"]), thinet.count_params(torchvision.models.resnet18(num_classes=10))
    assert pruned < 0.6 * original
    assert (tmp_path / "thinet-work").is_dir()
