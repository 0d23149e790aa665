"""Create the MLflow store and the config's experiment once, before any training job
(concurrent first use of a fresh sqlite store races on its schema migration).

    python workflow/scripts/init_mlflow.py --experiment thinet-default --enabled True --out results/default/mlflow.json
"""
from thinet.experiment import init_tracking, job_args

if __name__ == "__main__":
    args = job_args(__doc__, "--experiment", "--enabled", "--out")
    init_tracking(args.experiment, args.enabled == "True", args.out)
