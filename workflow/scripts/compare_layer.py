"""Paper §4.1: prune one layer of the base model with every criterion, evaluate before fine-tuning.

    python workflow/scripts/compare_layer.py --spec results/default/specs/compare_layer.json \
        --model results/default/base/base-vgg/model.pt --out-csv results/default/compare_layer.csv \
        --out-md results/default/compare_layer.md
"""
from thinet.experiment import CompareLayerSpec, job_args, run_compare_layer_job

if __name__ == "__main__":
    args = job_args(__doc__, "--spec", "--model", "--out-csv", "--out-md")
    run_compare_layer_job(CompareLayerSpec.from_file(args.spec), args.model, args.out_csv, args.out_md)
