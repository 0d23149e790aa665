"""List the registered pruning criteria, one name per line.

Built-in criteria, the `thinet.criteria` entry points of installed packages, and
any module named with --module (as the config key `criteria_modules` would) are listed.

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
    from thinet.criteria import available_criteria, load_criterion_modules

    load_criterion_modules(args.module)
    for name in available_criteria():
        print(name)
    return 0
