"""Join the per-run metric rows into the tidy table results/<config>/metrics.csv (ARCHITECTURE.md), with
runs.csv beside it (each evaluated run's id, settings hash and row identity), and the rows of runs reused
from an earlier run (config key `reuse`).

    python workflow/scripts/aggregate_metrics.py --out results/default/metrics.csv \
        --runs-out results/default/runs.csv --specs results/default/specs/*.json -- results/default/eval/*.csv
"""
from thinet.experiment import job_parser, log, run_aggregate_job, start_job

if __name__ == "__main__":
    parser = job_parser(__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs-out", required=True)
    parser.add_argument("--specs", nargs="+", required=True, help="the job specs of every evaluated run")
    parser.add_argument("--reuse-metrics", default=None, help="the earlier run's metrics.csv")
    parser.add_argument("--reused", nargs="*", default=[], help="the job specs of the runs reused from it")
    parser.add_argument("inputs", nargs="*")
    args = parser.parse_args()
    start_job(args)
    rows, reused = run_aggregate_job(args.inputs, args.out, args.runs_out, args.specs, args.reuse_metrics, args.reused)
    log.info("metrics: %d rows (%d reused from %s) from %d files -> %s", rows, reused, args.reuse_metrics,
             len(args.inputs), args.out)
