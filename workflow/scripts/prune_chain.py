"""One pruning chain: every layer of the run's strategy, selected by the run's criterion, pruned and
fine-tuned, then the final fine-tune; per-layer checkpoints let a killed job resume. The job then
evaluates its final model itself, as rule evaluate does for the other runs: one process start
instead of two (thinet.experiment).

    python workflow/scripts/prune_chain.py --spec results/default/specs/vgg_criteria-thinet-r0.5-s0.json \
        --selection results/default/selection/fashion_mnist-pc10-s0.json --source results/default/base/base-vgg/model.pt \
        --out results/default/chain/vgg_criteria-thinet-r0.5-s0/model.pt \
        --eval-out results/default/eval/vgg_criteria-thinet-r0.5-s0.csv --threads 1
"""
from pathlib import Path

from thinet.experiment import job_args, load_spec, run_chain_job, run_eval_job
from thinet.runtime import dist_info

if __name__ == "__main__":
    args = job_args(__doc__, "--spec", "--selection", "--source", "--out", "--eval-out")
    spec = load_spec(args.spec)
    run_chain_job(spec, args.selection, args.source, args.out, checkpoint_minutes=args.checkpoint_minutes)
    if dist_info().is_main:  # under torchrun the other ranks are done
        run_eval_job(spec, args.out, Path(args.out).parent / "run.json", args.eval_out)
