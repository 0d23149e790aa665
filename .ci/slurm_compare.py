#!/usr/bin/env python3
"""The comparisons of .ci/check_slurm: a run through SLURM against the same run made locally.

    python .ci/slurm_compare.py metrics LOCAL.csv SLURM.csv [--names smoke smoke_slurm]
    python .ci/slurm_compare.py models LOCAL.pt SLURM.pt
    python .ci/slurm_compare.py state TRAIN_STATE.pt

`metrics`: the same rows in the same order, every column equal but
  - `mlflow_run_id`: each run logs into MLflow runs of its own, so the ids always differ;
  - `forward_ms`, `backward_ms`: wall-clock timings measured by each run, never equal twice;
  - `config`: the results name, which must read the given name in each file (`--names`), since the
    SLURM run of the smoke config runs under another name so as not to share results/ with the local one.
`models`: `torch.equal` on every tensor of the two saved models.
`state`: prints a training state's step, epoch and position; fails unless it is mid-epoch (a state
saved on SIGTERM between two batches, not at an epoch end).
Exit status 0 when the check holds, 1 with the first differences otherwise.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

VARYING = ("mlflow_run_id", "forward_ms", "backward_ms")


def read_rows(path: Path, name: str | None) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise SystemExit(f"slurm_compare: {path} has no rows")
    if name is not None:
        wrong = sorted({row["config"] for row in rows} - {name})
        if wrong:
            raise SystemExit(f"slurm_compare: {path}: column config reads {wrong}, expected {name!r} on every row")
    skip = set(VARYING) | ({"config"} if name is not None else set())
    return [{k: v for k, v in row.items() if k not in skip} for row in rows]


def compare_metrics(local: Path, slurm: Path, names: tuple[str, str] | None) -> int:
    a = read_rows(local, names[0] if names else None)
    b = read_rows(slurm, names[1] if names else None)
    diffs = [(i, {k: (ra.get(k), rb.get(k)) for k in ra.keys() | rb.keys() if ra.get(k) != rb.get(k)})
             for i, (ra, rb) in enumerate(zip(a, b)) if ra != rb]
    if len(a) != len(b) or diffs:
        print(f"slurm_compare: FAILED: {local} ({len(a)} rows) and {slurm} ({len(b)} rows) differ; "
              f"first differing rows (index, {{column: (local, slurm)}}): {diffs[:3]}", file=sys.stderr)
        return 1
    print(f"slurm_compare: {len(a)}/{len(b)} rows equal in every column but {', '.join(VARYING)}"
          + (f" (config: {names[0]} / {names[1]})" if names else ""))
    return 0


def compare_models(local: Path, slurm: Path) -> int:
    import torch

    a, b = (torch.load(p, map_location="cpu", weights_only=False) for p in (local, slurm))
    sa, sb = (m.state_dict() if hasattr(m, "state_dict") else m for m in (a, b))
    differ = [k for k in sa.keys() | sb.keys() if k not in sa or k not in sb or not torch.equal(sa[k], sb[k])]
    if differ:
        print(f"slurm_compare: FAILED: {local} and {slurm} differ in {sorted(differ)[:5]}", file=sys.stderr)
        return 1
    print(f"slurm_compare: models equal (torch.equal on all {len(sa)} tensors)")
    return 0


def check_state(path: Path) -> int:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    batch = state["position"]["batch"]
    print(f"slurm_compare: {path.name}: step {state['step']} of {state['total_steps']}, epoch {state['epoch']}, "
          f"batch {batch} of the epoch")
    if not 0 < state["step"] < state["total_steps"] or batch == 0:
        print("slurm_compare: FAILED: the saved state is not mid-epoch", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("metrics")
    m.add_argument("local", type=Path)
    m.add_argument("slurm", type=Path)
    m.add_argument("--names", nargs=2, metavar=("LOCAL", "SLURM"))
    p = sub.add_parser("models")
    p.add_argument("local", type=Path)
    p.add_argument("slurm", type=Path)
    s = sub.add_parser("state")
    s.add_argument("path", type=Path)
    args = parser.parse_args()
    if args.what == "metrics":
        return compare_metrics(args.local, args.slurm, tuple(args.names) if args.names else None)
    if args.what == "models":
        return compare_models(args.local, args.slurm)
    return check_state(args.path)


if __name__ == "__main__":
    sys.exit(main())
