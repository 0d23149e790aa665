"""Join the per-run metric rows into the tidy table results/<config>/metrics.csv (ARCHITECTURE.md).

    python workflow/scripts/aggregate_metrics.py --out results/default/metrics.csv results/default/eval/*.csv
"""
from thinet.experiment import aggregate_rows, job_args, log

if __name__ == "__main__":
    args = job_args(__doc__, "--out", inputs=True)
    log.info("metrics: %d rows from %d files -> %s", aggregate_rows(args.inputs, args.out), len(args.inputs), args.out)
