#!/usr/bin/env bash
# Workflow checks for CI (called by .ci/run with the venv on PATH), from the repository root:
#  1. the smoke config end to end (every rule, every criterion in compare_layer, tiny budgets), timed;
#  2. a second run with nothing changed does nothing ("Nothing to be done");
#  2b. tests/fault_injection.py: the smoke's ResNet base trained longer (config/ci/smoke_preempt.yaml,
#      num_workers: 2) killed (SIGKILL/SIGTERM to its process group) mid-training at 3 moments, rerun,
#      and its results and MLflow runs compared with an uninterrupted run's;
#  3. each paper config end to end on generated fixture datasets via its config/ci override
#     (ImageNet VGG-16 first: the transfer config starts from its pruned models).
# KEEP_RESULTS=1 keeps earlier results/smoke and results/ci_* (default: start fresh).
set -euo pipefail
cd "$(dirname "$0")/../.."
SNAKEMAKE=${SNAKEMAKE:-snakemake}
export MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-}

if [ "${KEEP_RESULTS:-0}" != 1 ]; then
    rm -rf results/smoke results/smoke_fault results/ci_imagenet_vgg16 results/ci_imagenet_resnet50 results/ci_transfer \
        models/smoke models/smoke_fault models/ci_imagenet_vgg16
fi

step() { echo; echo "=== ci_workflow: $* ==="; }

step "smoke run (config/smoke.yaml)"
start=$(date +%s)
"$SNAKEMAKE" --cores all --configfile config/smoke.yaml
echo "ci_workflow: smoke run took $(( $(date +%s) - start )) s"
test -s results/smoke/metrics.csv
test -s results/smoke/compare_layer.csv

step "rerun with nothing changed"
rerun=$("$SNAKEMAKE" --cores all --configfile config/smoke.yaml 2>&1)
if ! grep -q "Nothing to be done" <<<"$rerun"; then
    echo "$rerun" | tail -40
    echo "ci_workflow: FAILED: a second smoke run with nothing changed ran jobs" >&2
    exit 1
fi
echo "ci_workflow: rerun did nothing"

step "fault injection: training killed at 3 random moments, rerun, same results and MLflow runs"
start=$(date +%s)
python tests/fault_injection.py --kills 3
echo "ci_workflow: fault injection took $(( $(date +%s) - start )) s"

for paper in imagenet_vgg16 imagenet_resnet50 transfer; do
    step "paper config $paper on fixtures (config/ci/$paper.yaml)"
    start=$(date +%s)
    "$SNAKEMAKE" --cores all --configfile "config/$paper.yaml" "config/ci/$paper.yaml"
    test -s "results/ci_$paper/metrics.csv"
    echo "ci_workflow: $paper took $(( $(date +%s) - start )) s"
done
echo; echo "ci_workflow: all workflow checks passed"
