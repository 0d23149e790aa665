"""Create the MLflow store and the config's experiment once, before any training job
(concurrent first use of a fresh sqlite store races on its schema migration).

    python workflow/scripts/init_mlflow.py --experiment thinet-default --enabled True --out results/default/mlflow.json
"""
from __future__ import annotations

import jobkit
from thinet.checkpoint import atomic_write_json
from thinet.tracking import Tracker, tracking_uri


def main() -> None:
    parser = jobkit.job_parser(__doc__)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--enabled", choices=("True", "False"), default="True")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    jobkit.start_job(args)
    enabled = args.enabled == "True"
    tracker = Tracker.open(args.experiment, enabled=enabled)
    info = {"enabled": enabled, "experiment": args.experiment, "experiment_id": tracker.experiment_id,
            "tracking_uri": tracking_uri() if enabled else None}
    jobkit.log.info("mlflow store ready: %s", info)
    atomic_write_json(info, args.out)


if __name__ == "__main__":
    main()
