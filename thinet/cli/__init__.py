"""The `thinet` command. One module per sub-command in this package.

Each sub-command module defines `NAME` (the sub-command), `HELP` (one line),
`add_arguments(parser)` and `run(args) -> int`. Modules are discovered, so a new
command is one new file.

    $ thinet --help
    $ thinet arch-table
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType


def _commands() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.NAME] = module
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thinet",
        description="ThiNet filter pruning and the baselines it is compared with (Luo et al., ICCV 2017).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _commands().items():
        cmd = sub.add_parser(name, help=module.HELP, description=(module.__doc__ or module.HELP).strip(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as err:
        # Bad input is reported in one line naming the culprit, not as a traceback.
        print(f"thinet {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
