"""Draw the images ThiNet collects its training examples from (paper §4.2: N per class of the
training split, evaluation transform) and save their indices.

    python workflow/scripts/make_selection.py --spec-json '{"dataset": "fashion_mnist", "root": "...",
        "per_class": 10, "seed": 0}' --out results/default/selection/fashion_mnist-pc10-s0.json
"""
from __future__ import annotations

import json

import jobkit
from thinet.checkpoint import atomic_write_json
from thinet.data import selection_subset


def main() -> None:
    parser = jobkit.job_parser(__doc__)
    parser.add_argument("--spec-json", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    jobkit.start_job(args)
    sel = json.loads(args.spec_json)
    spec = {"dataset": {"name": sel["dataset"], "root": sel["root"], "image_size": sel.get("image_size")}}
    train = jobkit.dataset(spec, "train")
    subset = selection_subset(train, per_class=sel["per_class"], seed=sel["seed"])
    indices = [int(i) for i in subset.indices]
    jobkit.log.info("selection subset: %d images (%d per class, seed %d)", len(indices), sel["per_class"], sel["seed"])
    atomic_write_json({**sel, "images": len(indices), "indices": indices}, args.out)


if __name__ == "__main__":
    main()
