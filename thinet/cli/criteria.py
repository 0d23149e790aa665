"""List the registered pruning criteria, one name per line.

Built-in criteria, the `thinet.criteria` entry points of installed packages, and
any module named with --module (as the config key `criteria_modules` would) are listed.
The criteria a family makes on demand (Torch-Pruning's `tp_<name>` beyond the default
ones) are named on stderr: a config or `--criterion` may use them as well.

    $ thinet criteria
    $ thinet criteria --module ./l2_norm.py
"""
from __future__ import annotations

import argparse

NAME = "criteria"
HELP = "list the registered pruning criteria"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--module", action="append", default=[], metavar="MODULE_OR_FILE",
                        help="extra criterion module (dotted name or .py file) to load first; repeatable")


def run(args: argparse.Namespace) -> int:
    import sys

    from thinet.criteria import available_criteria, load_criterion_modules, on_demand_criteria

    load_criterion_modules(args.module)
    for name in available_criteria():
        print(name)
    on_demand = on_demand_criteria()
    if on_demand:
        print(f"# also on demand: {', '.join(on_demand)}", file=sys.stderr)
    return 0
