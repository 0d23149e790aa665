# ThiNet benchmark workflow: `snakemake --cores all` runs config/default.yaml
# (profiles/default is picked up automatically). Other configs:
#   snakemake --cores all --configfile config/smoke.yaml
#   snakemake --cores all --configfile config/imagenet_vgg16.yaml          (needs ImageNet, a GPU)
#   snakemake --cores all --configfile config/imagenet_vgg16.yaml config/ci/imagenet_vgg16.yaml  (fixture)
# The DAG: data check -> base models -> selection subsets -> one job per pruning chain
# (per-layer checkpoints under results/<name>/work/) -> GAP/scratch/transfer fine-tunes
# -> evaluations -> results/<name>/metrics.csv (+ compare_layer.csv, tables, figures).

from snakemake.utils import min_version, validate

min_version("9.20")  # earlier 9.x read `runtime` resources in the wrong unit


# The default config applies only when none is given: `--configfile A B` merges A and B alone
# (B overriding A, as the CI fixture overrides in config/ci/ do), never on top of default.yaml.
if not workflow.overwrite_configfiles:

    configfile: "config/default.yaml"


# Schema first (fills defaults), then the semantic checks in thinet/config.py (common.smk):
# a bad config stops here, before any job, with a message naming the key.
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/mlflow.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/grouped.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"


include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
        report_outputs(config["name"]),
