"""MkDocs hook: a docstring's `>>>` example is shown as a Python console block.

The public docstrings are plain prose with doctest examples (`python -m pytest --doctest-modules`
runs them). Markdown reads a bare `>>> x` as a triple blockquote and `[0, 1]` in an output line as a
link reference, so this preprocessor fences each doctest block (the `>>>` and `...` lines and the
output lines after them, up to a blank line) as `pycon` before any other block processor sees it.
It runs on every page, the docstrings that mkdocstrings renders included; fenced blocks are left alone.
"""
from __future__ import annotations

import re

from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

_PROMPT = re.compile(r"^(\s*)>>>( |$)")
_FENCE = re.compile(r"^\s*(```|~~~)")


class _DoctestBlocks(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        fence = None  # the marker of the fenced block we are in, if any
        i = 0
        while i < len(lines):
            line = lines[i]
            mark = _FENCE.match(line)
            if fence is not None:
                if mark and mark.group(1) == fence:
                    fence = None
                out.append(line)
                i += 1
                continue
            if mark:
                fence = mark.group(1)
                out.append(line)
                i += 1
                continue
            prompt = _PROMPT.match(line)
            if prompt is None:
                out.append(line)
                i += 1
                continue
            indent = prompt.group(1)
            if out and out[-1].strip():
                out.append("")  # a fence must not continue a paragraph
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip():
                text = lines[i]
                out.append(indent + text[len(indent):] if text.startswith(indent) else text.lstrip())
                i += 1
            out.append(f"{indent}```")
            out.append("")
        return out


class DoctestBlocksExtension(Extension):
    def extendMarkdown(self, md) -> None:  # noqa: N802 (Markdown's API)
        # above the fenced-code preprocessors (priority 25), so they see the fences made here
        md.preprocessors.register(_DoctestBlocks(md), "thinet_doctest_blocks", 40)


@event_priority(100)  # before mkdocstrings hands the extension list to its handlers
def on_config(config):
    config.markdown_extensions.append(DoctestBlocksExtension())
    return config
