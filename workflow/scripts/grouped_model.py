"""One grouped run (gcos and its baselines, thinet.grouping): the source chain's model grouped, evaluated
just after the conversion, fine-tuned, then evaluated as rule evaluate does for other runs (one process
start instead of two; thinet.experiment).

    python workflow/scripts/grouped_model.py --spec results/smoke/specs/vgg_grouped-gcos-g2-s0.json \
        --selection results/smoke/selection/fashion_mnist-pc2-s0.json \
        --source results/smoke/chain/vgg_grouped-conv/model.pt \
        --out results/smoke/grouped/vgg_grouped-gcos-g2-s0/model.pt \
        --eval-out results/smoke/eval/vgg_grouped-gcos-g2-s0.csv --threads 1
"""
from pathlib import Path

from thinet.experiment import job_args, load_spec, run_eval_job, run_grouped_job
from thinet.runtime import dist_info

if __name__ == "__main__":
    args = job_args(__doc__, "--spec", "--selection", "--source", "--out", "--eval-out")
    spec = load_spec(args.spec)
    run_grouped_job(spec, args.selection, args.source, args.out, checkpoint_minutes=args.checkpoint_minutes)
    if dist_info().is_main:  # under torchrun the other ranks are done
        run_eval_job(spec, args.out, Path(args.out).parent / "run.json", args.eval_out)
