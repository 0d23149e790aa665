"""One pruning chain: every layer of the run's strategy, selected by the run's criterion, pruned and
fine-tuned, then the final fine-tune; per-layer checkpoints let a killed job resume (thinet.experiment).

    python workflow/scripts/prune_chain.py --spec results/default/specs/vgg_criteria-thinet-r0.5-s0.json \
        --selection results/default/selection/fashion_mnist-pc10-s0.json --source results/default/base/base-vgg/model.pt \
        --out results/default/chain/vgg_criteria-thinet-r0.5-s0/model.pt --threads 1
"""
from thinet.experiment import job_args, load_spec, run_chain_job

if __name__ == "__main__":
    args = job_args(__doc__, "--spec", "--selection", "--source", "--out")
    run_chain_job(load_spec(args.spec), args.selection, args.source, args.out,
                  checkpoint_minutes=args.checkpoint_minutes)
