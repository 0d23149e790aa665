"""Prune a trained model layer by layer with ThiNet (or a baseline criterion) and fine-tune it.

For each layer the strategy names, the criterion picks the filters to keep
from --per-class training images per class, the filters are removed, and the
model is fine-tuned (§4.2): --finetune-* after every layer, the same budget
again at lr/10 after the last layer of a VGG group, and --final-* (default
12x the per-layer budget, lr decaying to lr/100) after the last layer.
Progress is saved per layer in --workdir, so a killed run restarts at the
first unfinished layer. Prints parameters and FLOPs before and after.
With --strategy auto the plan comes first: each channel unit pruned (grouped
convs, depthwise stages, SE gates; residual streams with --shared-channels)
and one line per kind of layer skipped, with the reason; --dry-run stops there,
with the parameters and FLOPs the plan would reach. Every cut is compared with
the masked reference (the unpruned model with each consumer's input multiplied
by mask·ŵ) on a few selection images: a cut that is not exact is undone and
stops the run naming the layer (--no-verify-cuts skips the check). Images are
cropped to the model's own input size (a timm model's pretrained configuration).
With --strategy auto the samples per image default to enough for 16 samples per
channel of the widest unit (--samples-per-channel; at least 10 per image): with
fewer, the least-squares w-hat often does worse than no rescaling (`thinet bench refit`).
--gcos-groups g then groups every conv of the pruned model it can into g groups (gcos, the TPAMI
2019 version's group convolution with shuffling, reconstructed: `thinet.grouping`), chosen by
--grouping (gcos by default; contiguous and random are its baselines) from the same selection
images, lists the convs it skips and why, and fine-tunes the result with the final budget.

    $ thinet prune --model timm:regnetx_002 --dataset imagenet --strategy auto --dry-run --out x.pt
    $ thinet prune --model vgg16_small --checkpoint vgg16_small.pt --dataset fashion_mnist --keep-ratio 0.5 \\
          --gcos-groups 2 --grouping gcos --finetune-iterations 100 --out grouped.pt

Example (Fashion-MNIST, the model from `thinet train`):

    $ thinet prune --model vgg16_small --checkpoint vgg16_small.pt --dataset fashion_mnist \\
          --criterion thinet --keep-ratio 0.5 --strategy vgg16_conv --finetune-iterations 100 --out pruned.pt
    $ thinet eval --checkpoint pruned.pt --dataset fashion_mnist --timing
"""
from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path
from typing import Any

NAME = "prune"
HELP = "prune a model layer by layer (ThiNet or a baseline criterion), fine-tune, save it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from thinet.cli._args import add_data_arguments, add_protocol_arguments

    add_data_arguments(parser)
    add_protocol_arguments(parser)
    parser.add_argument("--checkpoint", default=None, help="the trained model to prune (state_dict or whole module)")
    parser.add_argument("--criterion", default="thinet",
                        help="channel selection criterion (default thinet; see `thinet criteria`)")
    parser.add_argument("--keep-ratio", type=float, default=0.5,
                        help="fraction of filters kept in each pruned layer, the paper's r (default 0.5)")
    parser.add_argument("--strategy", default="vgg16_conv",
                        help="which layers: vgg16_conv, vgg16_tiny, resnet_bottleneck, auto (default vgg16_conv)")
    parser.add_argument("--shared-channels", action="store_true",
                        help="with --strategy auto, also prune shared channels (residual block outputs, layers "
                             "with several consumers); the paper leaves them alone")
    parser.add_argument("--no-verify-cuts", action="store_true",
                        help="do not compare each cut with the masked reference (the unpruned model with each "
                             "consumer's input multiplied by mask*w-hat); by default a cut that is not exact is "
                             "undone and stops the run, naming the layer")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (what is pruned, what is skipped and why) and the parameters and "
                             "FLOPs it would reach, then stop")
    parser.add_argument("--gap", action="store_true",
                        help="after pruning, replace VGG's FC layers by global average pooling and fine-tune "
                             "with the final budget (ThiNet-GAP)")
    parser.add_argument("--gcos-groups", type=int, default=None, metavar="G",
                        help="after pruning (and --gap), group every conv that can be into G groups (gcos, "
                             "TPAMI 2019, reconstructed) and fine-tune with the final budget")
    parser.add_argument("--grouping", default=None,
                        help="with --gcos-groups: how the groups are chosen, gcos (default), contiguous or "
                             "random, each rescaled per group by least squares (Eq. 7); <name>_nols: the "
                             "same groups without it")
    per_layer = parser.add_mutually_exclusive_group()
    per_layer.add_argument("--finetune-epochs", type=float, default=None,
                           help="fine-tuning after each layer, in epochs (default 1)")
    per_layer.add_argument("--finetune-iterations", type=int, default=None,
                           help="fine-tuning after each layer, in iterations; 0 = prune without fine-tuning")
    final = parser.add_mutually_exclusive_group()
    final.add_argument("--final-epochs", type=float, default=None, help="fine-tuning after the last layer, epochs")
    final.add_argument("--final-iterations", type=int, default=None,
                       help="fine-tuning after the last layer, iterations")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate (default 1e-3)")
    parser.add_argument("--per-class", type=int, default=10, help="selection images per class (default 10)")
    parser.add_argument("--samples-per-image", type=int, default=None,
                        help="ThiNet samples per image (default 10; with --strategy auto, enough for "
                             "--samples-per-channel)")
    parser.add_argument("--samples-per-channel", type=float, default=None, metavar="K",
                        help="with --strategy auto and no --samples-per-image: draw at least K samples per channel "
                             "of the widest unit, 10 per image at least (default 16: below it the least-squares "
                             "w-hat often does worse than no rescaling; `thinet bench refit` measures it)")
    parser.add_argument("--out", required=True, help="where to write the pruned model (a whole pickled module)")
    parser.add_argument("--workdir", default=None, help="per-layer checkpoints (default <out>.chain)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep --workdir after success")
    parser.add_argument("--eval-max-images", type=int, default=None,
                        help="evaluate the pruned model on the first N validation images only")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _schedules(args: argparse.Namespace):
    """(FinetunePlan or None when --finetune-iterations 0, the final Schedule) from the flags."""
    from thinet.pipeline import FinetunePlan
    from thinet.runtime import Schedule

    if args.finetune_iterations is not None:
        budget = {"iterations": max(args.finetune_iterations, 1)}
    else:
        budget = {"epochs": args.finetune_epochs if args.finetune_epochs is not None else 1.0}
    if args.final_iterations is not None:
        final_budget = {"iterations": args.final_iterations}
    elif args.final_epochs is not None:
        final_budget = {"epochs": args.final_epochs}
    else:
        final_budget = {key: 12 * value for key, value in budget.items()}
    final = Schedule.from_config({**final_budget, "lr": args.lr, "lr_end": args.lr / 100,
                                  "lr_schedule": args.lr_schedule}, "--final-*")
    if args.finetune_iterations == 0:
        return None, final
    plan = FinetunePlan(Schedule.from_config({**budget, "lr": args.lr}, "--finetune-*"),
                        Schedule.from_config({**budget, "lr": args.lr / 10}, "--finetune-*"), final)
    return plan, final


def _plan(model: Any, args: argparse.Namespace, strategy: Any, example: Any) -> tuple[list, int | None]:
    """The strategy's steps and, for `auto`, the widest unit's channels (after the plan listing: units,
    skipped layers and why); None for the other strategies."""
    from thinet.strategies import plan_units

    if args.strategy != "auto":
        steps = strategy(model, args.keep_ratio, example)
        if args.dry_run:
            print("\n".join(f"prune {s.pair.producer} -> {s.pair.consumer} at {s.keep_ratio}" for s in steps))
        return steps, None
    plan = plan_units(model, example, shared_channels=args.shared_channels)
    print("\n".join(plan.lines()))
    return plan.steps(args.keep_ratio), plan.widest


def _check_sample_args(args: argparse.Namespace) -> None:
    """--samples-per-image / --samples-per-channel: one way to set the count, checked before anything is loaded."""
    if args.samples_per_channel is None:
        return
    if args.samples_per_image is not None:
        raise ValueError("give --samples-per-image or --samples-per-channel, not both")
    if args.strategy != "auto":
        raise ValueError("--samples-per-channel applies to --strategy auto only (the paper's strategies draw "
                         "--samples-per-image, default 10)")
    if not args.samples_per_channel >= 1:
        raise ValueError(f"--samples-per-channel must be at least 1 (Eq. 6 needs as many samples as channels), "
                         f"got {args.samples_per_channel}")


def _samples_per_image(args: argparse.Namespace, num_images: int, widest: int | None) -> int:
    """--samples-per-image when given; with --strategy auto enough images x samples for --samples-per-channel
    (default 16) x the widest unit's channels, 10 at least (`thinet.sampling.samples_per_image_for`); else 10."""
    from thinet.sampling import MIN_SAMPLES_PER_IMAGE, SAMPLES_PER_CHANNEL, samples_per_image_for

    if args.samples_per_image is not None:
        return args.samples_per_image
    if widest is None:
        return MIN_SAMPLES_PER_IMAGE
    per_channel = args.samples_per_channel if args.samples_per_channel is not None else SAMPLES_PER_CHANNEL
    value = samples_per_image_for(num_images, max(widest, 1), per_channel)
    print(f"{value} samples per image: {num_images} selection images x {value} = {num_images * value} samples for "
          f"the widest unit's {widest} channels ({per_channel:g} per channel at least, --samples-per-channel)")
    return value


def _check_grouping_args(args: argparse.Namespace) -> None:
    """--gcos-groups/--grouping checked before anything is loaded."""
    from thinet.grouping import get_grouping

    if args.gcos_groups is None:
        if args.grouping is not None:
            raise ValueError("--grouping applies with --gcos-groups only")
        return
    if args.gcos_groups < 2:
        raise ValueError(f"--gcos-groups must be at least 2, got {args.gcos_groups}")
    args.grouping = args.grouping or "gcos"
    get_grouping(args.grouping)


def _grouping_plan(pruned: Any, args: argparse.Namespace, example: Any, num_classes: int) -> Any:
    """--gcos-groups on the architecture the chain will leave (data-free: the first channels kept, the GAP
    head with --gap): a PruningError naming the layers that cannot be grouped comes before any compute."""
    from thinet.experiment import gap_model
    from thinet.grouping import plan_grouping

    if args.gap:
        pruned = gap_model(pruned, num_classes, seed=args.seed)
    return plan_grouping(pruned, args.gcos_groups, example)


def _dry_run_groups(model: Any, args: argparse.Namespace, example: Any) -> Any:
    """The plan of --gcos-groups on the pruned architecture, printed; the grouped architecture (any
    grouping gives the same shapes, so the data-free contiguous one stands in for a data-driven one)."""
    from thinet.grouping import convert_model, plan_grouping

    plan = plan_grouping(model, args.gcos_groups, example)
    print("\n".join(plan.lines()))
    return convert_model(model, args.gcos_groups, "contiguous_nols", example_inputs=example, plan=plan)


def _model_image_size(model: Any, dataset: Any, label: str) -> int | None:
    """The model's own square input size when the dataset's default differs (a timm model's pretrained
    configuration, e.g. 256), else None: the images are then cropped to the model's size."""
    from thinet.models import input_size_of

    _, height, width = input_size_of(model)
    if dataset.image_size == height or height != width:
        return None
    print(f"{label}: using the model's input size {height}x{width} (the dataset's default is "
          f"{dataset.image_size}x{dataset.image_size})")
    return height


def run(args: argparse.Namespace) -> int:

    from thinet.cli._args import (build_model, check_dataset_name, check_fits, check_model_name, check_output,
                                  check_positive, optimizer_settings)
    from thinet.criteria import get_criterion
    from thinet.data import get_dataset, selection_subset
    from thinet.experiment import check_gap_ready, gap_model, make_loader, resolve_device, save_model
    from thinet.models import example_inputs
    from thinet.pipeline import prune_chain
    from thinet.runtime import count_flops, count_params, derive_seed, dist_info, evaluate, train
    from thinet.strategies import get_strategy, prune_with_first_channels
    from thinet.types import check_keep_ratio

    check_keep_ratio(args.keep_ratio, "--keep-ratio (every pruned layer)")
    get_criterion(args.criterion)
    _check_grouping_args(args)
    strategy = get_strategy(args.strategy)
    _check_sample_args(args)
    if args.shared_channels and args.strategy != "auto":
        raise ValueError("--shared-channels applies to --strategy auto only")
    check_positive(args, "batch_size", "per_class", "samples_per_image", "final_iterations", "eval_max_images")
    if args.finetune_iterations is not None and args.finetune_iterations < 0:
        raise ValueError(f"--finetune-iterations must be >= 0, got {args.finetune_iterations}")
    plan, final = _schedules(args)
    check_model_name(args.model)
    check_dataset_name(args.dataset)
    device = resolve_device(args.device)
    out = check_output(args.out)
    workdir = Path(args.workdir) if args.workdir else Path(f"{out}.chain")
    label = args.model or args.checkpoint

    select_set = get_dataset(args.dataset, "train", root=args.data_root, preprocessing=args.preprocessing)
    model = build_model(args.model, select_set.num_classes, args.checkpoint).to(device)
    image_size = _model_image_size(model, select_set, label)
    if image_size is not None:
        select_set = get_dataset(args.dataset, "train", root=args.data_root, preprocessing=args.preprocessing,
                                 image_size=image_size)
    tune_set = get_dataset(args.dataset, "train", root=args.data_root, train_transform=True,
                           preprocessing=args.preprocessing, image_size=image_size)
    size = check_fits(model, select_set, label)
    if args.gap:
        check_gap_ready(model, label)
    example = example_inputs(model)
    before = count_params(model), count_flops(model, size)
    steps, widest = _plan(model, args, strategy, example)
    if args.dry_run:
        after_model = prune_with_first_channels(copy.deepcopy(model), steps, example)
        if args.gcos_groups is not None:
            after_model = _dry_run_groups(after_model, args, example)
        after = count_params(after_model), count_flops(after_model, size)
        print(f"dry run: {before[0] / 1e6:.3f}M -> {after[0] / 1e6:.3f}M parameters, {before[1] / 1e9:.4f}B -> "
              f"{after[1] / 1e9:.4f}B FLOPs ({100 * (1 - after[1] / before[1]):.1f} % fewer) at keep ratio "
              f"{args.keep_ratio}")
        return 0
    if args.gcos_groups is not None:  # the grouping plan of the pruned architecture, before any layer is touched
        _grouping_plan(prune_with_first_channels(copy.deepcopy(model), steps, example), args, example,
                       select_set.num_classes)
    subset = selection_subset(select_set, per_class=args.per_class, seed=args.seed)
    args.samples_per_image = _samples_per_image(args, len(subset), widest)
    print(f"{label}: {before[0] / 1e6:.3f}M parameters, {before[1] / 1e9:.4f}B FLOPs; pruning {len(steps)} "
          f"layers with {args.criterion}, keep ratio {args.keep_ratio}")
    grouped = args.gcos_groups is not None
    tune_loader = make_loader(tune_set, args.batch_size, workers=args.workers, shuffle=True) \
        if plan or args.gap or grouped else None
    model = prune_chain(model, steps, criterion=args.criterion, selection_batches=make_loader(subset, 64),
                        finetune=plan, train_loader=tune_loader, workdir=workdir, seed=args.seed, device=device,
                        example_inputs=example, samples_per_image=args.samples_per_image,
                        settings={"model": args.model, "checkpoint": args.checkpoint, "dataset": args.dataset,
                                  "strategy": args.strategy},
                        progress=not args.no_progress, optimizer=optimizer_settings(args),
                        verify_cuts=not args.no_verify_cuts)
    if args.gap:
        model = gap_model(model, select_set.num_classes, seed=args.seed).to(device)
        train(model, tune_loader, final, device=device, checkpoint_path=workdir / "gap.pt",
              seed=derive_seed(args.seed, "gap"), progress=not args.no_progress, desc="GAP fine-tuning",
              optimizer=optimizer_settings(args))
    if grouped:
        _group(model, args, make_loader(subset, 64), example, tune_loader, final, workdir)
    if not dist_info().is_main:
        return 0  # rank 0 reports and writes
    after = count_params(model), count_flops(model, size)
    print(f"pruned: {after[0] / 1e6:.3f}M parameters ({before[0] / after[0]:.2f}x fewer), "
          f"{after[1] / 1e9:.4f}B FLOPs ({before[1] / after[1]:.2f}x fewer)")
    if not args.no_eval:
        val = get_dataset(args.dataset, "val", root=args.data_root, preprocessing=args.preprocessing)
        result = evaluate(model, make_loader(val, 256, workers=args.workers), device=device,
                          max_images=args.eval_max_images)
        print(f"validation: top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}  "
              f"({result['images']} images)")
    save_model(model, out)
    print(f"saved {out}")
    if not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"per-layer checkpoints kept in {workdir}", file=sys.stderr)
    return 0


def _group(model: Any, args: argparse.Namespace, selection: Any, example: Any, tune_loader: Any, final: Any,
           workdir: Path) -> None:
    """--gcos-groups: the plan listed, every conv it allows grouped in place, then the final fine-tune."""
    from thinet.cli._args import optimizer_settings
    from thinet.grouping import convert_model, plan_grouping
    from thinet.runtime import derive_seed, train

    plan = plan_grouping(model, args.gcos_groups, example)
    print("\n".join(plan.lines()))
    convert_model(model, args.gcos_groups, args.grouping, batches=selection, seed=derive_seed(args.seed, "gcos"),
                  samples_per_image=args.samples_per_image, plan=plan,
                  progress=None if args.no_progress else (lambda line: print(f"  {line}", file=sys.stderr)))
    if args.finetune_iterations != 0:
        train(model, tune_loader, final, device=next(model.parameters()).device, checkpoint_path=workdir / "gcos.pt",
              seed=derive_seed(args.seed, "gcos-finetune"), progress=not args.no_progress,
              desc=f"{args.grouping} g={args.gcos_groups} fine-tuning", optimizer=optimizer_settings(args))
