"""The paper's own numbers (Luo, Wu, Lin, ICCV 2017), transcribed from Tables 1-4 and §4.1.

These are **the paper's reported values**, never measurements of this suite;
reports show them only in columns labelled "paper ...". Accuracies are in %,
parameters in millions, FLOPs in billions (the paper counts convolution FLOPs
only, footnote 1 of Table 1), timings in ms at batch 32 on one M40 GPU.
Entries the paper leaves out are `None`.

>>> PAPER_TABLE1["ThiNet-GAP"]["top5"]
87.92
>>> PAPER_TABLE4["indoor67"]["FT & prune"]
{'params_M': 7.84, 'flops_B': 9.34, 'top1': 64.7}
"""
from __future__ import annotations

from typing import Final

Row = dict[str, "float | None"]

# Table 1: VGG-16 on ImageNet.
PAPER_TABLE1: Final[dict[str, Row]] = {
    "Original": {"top1": 68.34, "top5": 88.44, "params_M": 138.34, "flops_B": 30.94, "forward_ms": 189.92, "backward_ms": 407.56},
    "ThiNet-Conv": {"top1": 69.80, "top5": 89.53, "params_M": 131.44, "flops_B": 9.58, "forward_ms": 76.71, "backward_ms": 152.05},
    "Train from scratch": {"top1": 67.00, "top5": 87.45, "params_M": 131.44, "flops_B": 9.58, "forward_ms": 76.71, "backward_ms": 152.05},
    "ThiNet-GAP": {"top1": 67.34, "top5": 87.92, "params_M": 8.32, "flops_B": 9.34, "forward_ms": 71.73, "backward_ms": 145.51},
    "ThiNet-Tiny": {"top1": 59.34, "top5": 81.97, "params_M": 1.32, "flops_B": 2.01, "forward_ms": 29.51, "backward_ms": 55.83},
    "SqueezeNet": {"top1": 57.67, "top5": 80.39, "params_M": 1.24, "flops_B": 1.72, "forward_ms": 37.30, "backward_ms": 68.62},
}

# Table 2: changes against the unpruned VGG-16 (percentage points) and reduction factors (x).
# "≈1x" entries are stored as 1.0 and listed in PAPER_TABLE2_APPROXIMATE; "—" (not reported) as None.
PAPER_TABLE2: Final[dict[str, Row]] = {
    "APoZ-1": {"d_top1": -2.16, "d_top5": -0.84, "params_x": 2.04, "flops_x": 1.0},
    "APoZ-2": {"d_top1": 1.81, "d_top5": 1.25, "params_x": 2.70, "flops_x": 1.0},
    "Taylor-1": {"d_top1": None, "d_top5": -1.44, "params_x": 1.0, "flops_x": 2.68},
    "Taylor-2": {"d_top1": None, "d_top5": -3.94, "params_x": 1.0, "flops_x": 3.86},
    "ThiNet-WS": {"d_top1": 1.01, "d_top5": 0.69, "params_x": 1.05, "flops_x": 3.23},
    "ThiNet-Conv": {"d_top1": 1.46, "d_top5": 1.09, "params_x": 1.05, "flops_x": 3.23},
    "ThiNet-GAP": {"d_top1": -1.00, "d_top5": -0.52, "params_x": 16.63, "flops_x": 3.31},
}
PAPER_TABLE2_APPROXIMATE: Final[frozenset[tuple[str, str]]] = frozenset({
    ("APoZ-1", "flops_x"), ("APoZ-2", "flops_x"), ("Taylor-1", "params_x"), ("Taylor-2", "params_x"),
})
# Which Table 2 row of the paper corresponds to a criterion run in the ThiNet framework
# (§4.2: "ThiNet-WS" is weight sum inside the ThiNet framework). The paper's APoZ and
# Taylor rows come from other authors' frameworks and pruned layers, so no criterion of
# this suite maps to them.
PAPER_TABLE2_ROW_OF_CRITERION: Final[dict[str, str]] = {"weight_sum": "ThiNet-WS", "thinet": "ThiNet-Conv"}
PAPER_TABLE2_KEEP_RATIO: Final[float] = 0.5  # ThiNet-WS / ThiNet-Conv prune conv1_1..conv4_3 at r = 0.5

# Table 3: ResNet-50 on ImageNet.
PAPER_TABLE3: Final[dict[str, Row]] = {
    "Original": {"top1": 72.88, "top5": 91.14, "params_M": 25.56, "flops_B": 7.72, "forward_ms": 188.27, "backward_ms": 269.32},
    "ThiNet-70": {"top1": 72.04, "top5": 90.67, "params_M": 16.94, "flops_B": 4.88, "forward_ms": 169.38, "backward_ms": 243.37},
    "ThiNet-50": {"top1": 71.01, "top5": 90.02, "params_M": 12.38, "flops_B": 3.41, "forward_ms": 153.60, "backward_ms": 212.29},
    "ThiNet-30": {"top1": 68.42, "top5": 88.30, "params_M": 8.66, "flops_B": 2.20, "forward_ms": 144.45, "backward_ms": 200.67},
}
# Table 3's rows are named by the percentage of filters kept.
PAPER_TABLE3_ROW_OF_KEEP_RATIO: Final[dict[float, str]] = {0.7: "ThiNet-70", 0.5: "ThiNet-50", 0.3: "ThiNet-30"}

# Table 4: transfer to CUB-200 and Indoor-67 (dataset names as in thinet.data). Each strategy once,
# with (#Param. M, FLOPs B, top-1 %) on each dataset, in the order of PAPER_TABLE4_DATASETS.
PAPER_TABLE4_DATASETS: Final[tuple[str, ...]] = ("cub200", "indoor67")
_TABLE4_VALUES = ("params_M", "flops_B", "top1")
_TABLE4: Final[dict[str, tuple[tuple[float, float, float], ...]]] = {
    "VGG-16": ((135.07, 30.93, 72.30), (134.52, 30.93, 72.46)),
    "FT & prune": ((7.91, 9.34, 66.90), (7.84, 9.34, 64.70)),
    "Train from scratch": ((7.91, 9.34, 44.27), (7.84, 9.34, 38.81)),
    "ThiNet-Conv": ((128.16, 9.58, 70.90), (127.62, 9.57, 72.31)),
    "ThiNet-GAP": ((7.91, 9.34, 69.43), (7.84, 9.34, 70.22)),
    "ThiNet-Tiny": ((1.12, 2.01, 65.45), (1.08, 2.01, 62.84)),
    "AlexNet": ((57.68, 1.44, 57.28), (57.68, 1.44, 59.55)),
}
# Looked up as PAPER_TABLE4[dataset][strategy][value], like the other tables.
PAPER_TABLE4: Final[dict[str, dict[str, Row]]] = {
    dataset: {strategy: dict(zip(_TABLE4_VALUES, values[i])) for strategy, values in _TABLE4.items()}
    for i, dataset in enumerate(PAPER_TABLE4_DATASETS)
}
# The unpruned, fine-tuned model is "Original" in this suite's variant labels, "VGG-16" in Table 4.
PAPER_TABLE4_ROW_OF_VARIANT: Final[dict[str, str]] = {"Original": "VGG-16"}

# §4.1 text: top-1 (%) on CUB-200 after removing 60 % of conv1_1's filters of VGG-16-GAP,
# before fine-tuning (the paper gives no unpruned value for this experiment).
PAPER_COMPARE_LAYER: Final[dict[str, float]] = {
    "weight_sum": 40.99,
    "random": 51.26,
    "thinet_nols": 68.24,
    "thinet": 70.75,
}
PAPER_COMPARE_LAYER_SETTING: Final[dict[str, object]] = {
    "dataset": "cub200", "model": "vgg16_gap", "layers": ("conv1_1", "features.0"), "keep_ratio": 0.4,
}
# The workflow names a GAP-headed VGG-16 by its base model, `vgg16` (config/transfer.yaml's ft_gap run).
_COMPARE_LAYER_MODELS: Final = frozenset({"vgg16", "vgg16_gap"})


def is_paper_compare_setting(dataset: str, model: str, layer: str, keep_ratio: float) -> bool:
    """True when a single-layer comparison is §4.1's: CUB-200, VGG-16(-GAP), conv1_1, 40 % of filters kept.

    >>> is_paper_compare_setting("cub200", "vgg16", "conv1_1", 0.4)
    True
    >>> is_paper_compare_setting("fashion_mnist", "vgg16_small", "conv1_1", 0.4)
    False
    """
    setting = PAPER_COMPARE_LAYER_SETTING
    return (dataset == setting["dataset"] and model in _COMPARE_LAYER_MODELS and layer in setting["layers"]
            and abs(float(keep_ratio) - float(setting["keep_ratio"])) < 1e-9)

# Settings the paper's tables describe: (table, dataset) -> models measured there.
PAPER_SETTINGS: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    "table1": (frozenset({"imagenet"}), frozenset({"vgg16", "vgg16_gap"})),
    "table2": (frozenset({"imagenet"}), frozenset({"vgg16", "vgg16_gap"})),
    "table3": (frozenset({"imagenet"}), frozenset({"resnet50_v1"})),
    "table4": (frozenset({"cub200", "indoor67"}), frozenset({"vgg16", "vgg16_gap"})),
}


def is_paper_setting(table: str, dataset: str, model: str) -> bool:
    """True when `dataset`/`model` is the setting the paper's `table` reports on.

    >>> is_paper_setting("table1", "imagenet", "vgg16"), is_paper_setting("table1", "fashion_mnist", "vgg16_small")
    (True, False)
    """
    if table not in PAPER_SETTINGS:
        raise ValueError(f"unknown paper table {table!r}; known: {sorted(PAPER_SETTINGS)}")
    datasets, models = PAPER_SETTINGS[table]
    return dataset in datasets and model in models
