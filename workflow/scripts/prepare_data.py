"""Check that a dataset loads (both splits) and record its size; a dataset with a `fixture`
entry (CI configs) gets a tiny generated tree at its root first.

    python workflow/scripts/prepare_data.py --dataset-json '{"name": "fashion_mnist", "root": "..."}' --out d.json
"""
import json

from thinet.experiment import DatasetSpec, job_args, run_prepare_data_job

if __name__ == "__main__":
    args = job_args(__doc__, "--dataset-json", "--out")
    run_prepare_data_job(DatasetSpec.from_dict(json.loads(args.dataset_json), where="--dataset-json"), args.out)
