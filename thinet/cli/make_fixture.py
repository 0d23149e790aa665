"""Write a tiny dataset tree in the official layout (for tests and CI runs).

    $ thinet make-fixture cub200 /tmp/cub --per-class 4 --classes 3 --seed 0
    $ thinet make-fixture fashion_mnist /tmp/fmnist
"""
from __future__ import annotations

import argparse

NAME = "make-fixture"
HELP = "write a tiny dataset tree in the official layout (fashion_mnist, imagenet, cub200, indoor67)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset name, as given to get_dataset")
    parser.add_argument("root", help="directory to write the tree into (created if missing)")
    parser.add_argument("--per-class", type=int, default=4, help="images per class in each split (default 4)")
    parser.add_argument("--classes", type=int, default=None,
                        help="number of classes (default 3; fashion_mnist always has 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random images (default 0)")
    parser.add_argument("--image-size", type=int, default=64, help="approximate side of the JPEGs (default 64)")


def run(args: argparse.Namespace) -> int:
    from thinet.data import get_dataset, make_fixture

    root = make_fixture(args.dataset, args.root, classes=args.classes, per_class=args.per_class, seed=args.seed,
                        image_size=args.image_size)
    sizes = {split: len(get_dataset(args.dataset, split, root=root)) for split in ("train", "val")}
    print(f"{args.dataset} fixture in {root}: {sizes['train']} train / {sizes['val']} val images")
    return 0
