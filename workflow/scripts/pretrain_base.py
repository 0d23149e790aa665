"""Train a kept model from random init (a base with `pretrain`, rule pretrain_base; a `kept` scratch
variant, rule pretrain_scratch) and keep it under models/<config>/ (state_dict, record with accuracy and
sha256) (thinet.experiment).

    python workflow/scripts/pretrain_base.py --spec results/default/specs/base-vgg.json \
        --out models/default/vgg.pt --threads 1
"""
from thinet.experiment import job_args, load_spec, run_pretrain_job

if __name__ == "__main__":
    args = job_args(__doc__, "--spec", "--out")
    run_pretrain_job(load_spec(args.spec), args.out, checkpoint_minutes=args.checkpoint_minutes)
