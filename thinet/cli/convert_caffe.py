"""Convert MSRA's Caffe ResNet-50 weights to a state_dict for `resnet50_v1` (no Caffe needed).

The only ResNet-50 v1 weights (stride on the first 1x1 of a bottleneck, as in the paper's
Table 3) are MSRA's `ResNet-50-model.caffemodel` (github.com/KaimingHe/deep-residual-networks).
The output loads through the usual checkpoint path (`checkpoint:` of a base in a config,
`--checkpoint` with `--model resnet50_v1`). The weights expect Caffe's input: BGR pixels in
0-255 minus the mean, which a config selects with `data.preprocessing: caffe`.

    $ thinet convert-caffe ResNet-50-model.caffemodel data/models/resnet50_v1.pth
"""
from __future__ import annotations

import argparse

NAME = "convert-caffe"
HELP = "convert MSRA's ResNet-50 .caffemodel to a resnet50_v1 state_dict"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Import-light (`thinet --help` builds every command's parser): the model names are checked in `run`.
    parser.add_argument("caffemodel", help="the Caffe weights, e.g. ResNet-50-model.caffemodel")
    parser.add_argument("out", help="the state_dict file to write, e.g. data/models/resnet50_v1.pth")
    parser.add_argument("--model", default=None, metavar="MODEL",
                        help="the model the weights are for, one of thinet.models.CAFFE_MODELS (default: the first, "
                             "resnet50_v1)")


def run(args: argparse.Namespace) -> int:
    from thinet.cli._args import check_output
    from thinet.models import CAFFE_MODELS, convert_caffemodel
    from thinet.runtime import atomic_save

    model = args.model or CAFFE_MODELS[0]
    if model not in CAFFE_MODELS:
        raise ValueError(f"--model {model!r}: no Caffe layer mapping; choose from {', '.join(CAFFE_MODELS)}")
    out = check_output(args.out)
    state = convert_caffemodel(args.caffemodel, model)
    atomic_save(state, out)
    values = sum(t.numel() for k, t in state.items() if not k.endswith("num_batches_tracked"))
    print(f"{args.caffemodel} -> {out}: {model} state_dict, {len(state)} tensors, {values / 1e6:.2f}M values")
    return 0
