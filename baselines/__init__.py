"""Baseline pruning criteria, one module per criterion.

Every module in this package is imported here, so dropping a new file with an
`@register_criterion("name")` function into `baselines/` is all it takes to add one.
"""
from __future__ import annotations

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
