"""Build a model for one run and train it: a base model, a GAP head on another run's model, another
run's architecture from random init, or a checkpoint carried to this dataset (thinet.experiment).

    python workflow/scripts/train_model.py --spec results/default/specs/base-vgg.json \
        --out results/default/base/base-vgg/model.pt [--source <model the run starts from>] --threads 1
"""
from thinet.experiment import job_args, load_spec, run_train_job

if __name__ == "__main__":
    args = job_args(__doc__, "--spec", "--out", optional=("--source",))
    run_train_job(load_spec(args.spec), args.out, args.source, checkpoint_minutes=args.checkpoint_minutes)
