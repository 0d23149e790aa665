"""MkDocs hook: the versioned result figures are part of the site.

The pages show figures of the curated results (`results/default/figures/*.png`,
`results/verdict/figures/*.png`) by their paths in the repository, as the README did. This hook
adds those files to the site under the same paths, so a page at the top of `docs/` links them as
`results/<config>/figures/<name>.png` and `mkdocs build --strict` checks that each one exists.
"""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

FIGURE_FOLDERS = ("results/default/figures", "results/verdict/figures")


def on_files(files: Files, config) -> Files:
    root = Path(config.config_file_path).resolve().parent
    for folder in FIGURE_FOLDERS:
        for path in sorted((root / folder).glob("*.png")):
            files.append(File.generated(config, f"{folder}/{path.name}", abs_src_path=str(path)))
    return files
