"""Where a workflow run's time went: each job's wall time, read from Snakemake's own logs.

    python workflow/scripts/job_times.py .snakemake/log/*.snakemake.log --out results/verdict/timing/job_times.csv

Snakemake writes a timestamp before each job it starts ("[date]", then "rule <name>:" with its jobid
and wildcards) and before each job it finishes ("[date]", then "Finished jobid: <n>"). A job is
counted once it has both, within one log (a job interrupted and resumed by a later run appears in
that later log with the time of its remainder only). The CSV has one row per finished job: `log`
(the log file's name), `rule`, `target` (its wildcards), `jobid`, `start`, `end`, `seconds` (the
seconds of the timestamps, which Snakemake prints to the second). With one thread per job (config
key `threads: 1`), a job's wall seconds are its core-seconds when no more jobs run than cores.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from datetime import datetime
from pathlib import Path

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?rule (\S+):$")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")


def job_times(log: str) -> list[dict[str, object]]:
    """The finished jobs of one Snakemake log, in finishing order.

    >>> text = ("[Sun Dec  6 06:50:21 2026]\\nlocalrule prune_chain:\\n    jobid: 53\\n    wildcards: run=a\\n"
    ...         "[Sun Dec  6 06:51:52 2026]\\nFinished jobid: 53 (Rule: prune_chain)\\n")
    >>> [(r["rule"], r["target"], r["seconds"]) for r in job_times(text)]
    [('prune_chain', 'run=a', 91.0)]
    """
    started: dict[int, dict[str, object]] = {}
    rows: list[dict[str, object]] = []
    stamp: datetime | None = None
    current: dict[str, object] | None = None
    for line in log.splitlines():
        match = _STAMP.match(line.strip())
        if match:
            stamp, current = datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y"), None
            continue
        if stamp is None:
            continue
        if (rule := _RULE.match(line.strip())) is not None:
            current = {"rule": rule.group(1), "start": stamp, "target": ""}
        elif current is not None and line.strip().startswith("jobid:"):
            started[int(line.split(":", 1)[1])] = current
        elif current is not None and line.strip().startswith("wildcards:"):
            current["target"] = line.split(":", 1)[1].strip()
        elif (done := _FINISHED.match(line.strip())) is not None:
            job = started.pop(int(done.group(1)), None)
            if job is not None:
                rows.append({**job, "jobid": int(done.group(1)), "end": stamp,
                             "seconds": (stamp - job["start"]).total_seconds()})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", help="Snakemake logs (.snakemake/log/*.snakemake.log)")
    parser.add_argument("--out", help="CSV to write (default: standard output)")
    args = parser.parse_args(argv)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["log", "rule", "target", "jobid", "start", "end", "seconds"],
                            lineterminator="\n")
    writer.writeheader()
    for path in args.logs:
        for row in job_times(Path(path).read_text(errors="replace")):
            writer.writerow({**row, "log": Path(path).name, "start": row["start"].isoformat(),
                             "end": row["end"].isoformat()})
    if args.out:
        from thinet.runtime import write_text_atomic

        write_text_atomic(args.out, buffer.getvalue())
    else:
        sys.stdout.write(buffer.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
