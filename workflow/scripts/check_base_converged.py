"""Train a kept base once more with its whole `pretrain` schedule and write its top-1 before and after
(thinet.experiment); the kept file is not changed.

    python workflow/scripts/check_base_converged.py --spec results/default/specs/base-vgg.json \
        --model models/default/vgg.pt --out results/default/bases/vgg_converged.json --threads 1
"""
from thinet.experiment import job_args, load_spec, run_convergence_check

if __name__ == "__main__":
    args = job_args(__doc__, "--spec", "--model", "--out")
    run_convergence_check(load_spec(args.spec), args.model, args.out, checkpoint_minutes=args.checkpoint_minutes)
