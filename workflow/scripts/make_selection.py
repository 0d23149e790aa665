"""Draw the images ThiNet collects its training examples from (paper §4.2: N per class of the
training split, evaluation transform) and save their indices.

    python workflow/scripts/make_selection.py --spec-json '{"dataset": "fashion_mnist", "root": "...",
        "per_class": 10, "seed": 0}' --out results/default/selection/fashion_mnist-pc10-s0.json
"""
import json

from thinet.experiment import SelectionJobSpec, job_args, run_selection_job

if __name__ == "__main__":
    args = job_args(__doc__, "--spec-json", "--out")
    run_selection_job(SelectionJobSpec.from_dict(json.loads(args.spec_json), where="--spec-json"), args.out)
