"""Evaluate one run's model (top-1/top-5, params, FLOPs, forward/backward time), log it into the
MLflow run that produced the model, and write its metrics row (thinet.experiment).

    python workflow/scripts/evaluate_run.py --spec results/default/specs/vgg_criteria-original.json \
        --model results/default/base/base-vgg/model.pt --source-run results/default/base/base-vgg/run.json \
        --out results/default/eval/vgg_criteria-original.csv
"""
from thinet.experiment import job_args, load_spec, run_eval_job

if __name__ == "__main__":
    args = job_args(__doc__, "--spec", "--model", "--source-run", "--out")
    run_eval_job(load_spec(args.spec), args.model, args.source_run, args.out)
