"""Datasets: fixture trees in the four official layouts, their validation errors,
the transforms, the selection subset, and (when installed) the real Fashion-MNIST."""
from __future__ import annotations

import gzip
import hashlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from thinet.cli import main as cli_main
from thinet.data import (DatasetSizeWarning, available_datasets, get_dataset, make_fixture, selection_subset)
from thinet.data import FIXTURE_MARKER, fashion_mnist
from thinet.data._idx import read_idx, write_idx

IMAGE_SETS = ["imagenet", "cub200", "indoor67"]
SIDE = 24  # tiny crops keep decoding + resizing cheap


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fixtures")
    out = {name: make_fixture(name, base / name, per_class=3, image_size=32, seed=1) for name in IMAGE_SETS}
    out["fashion_mnist"] = make_fixture("fashion_mnist", base / "fashion_mnist", per_class=3, seed=1)
    return out


def copy_tree(trees: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trees[name], tmp_path / name))


def test_registry_names_and_bad_arguments(trees):
    assert available_datasets() == ["cub200", "fashion_mnist", "imagenet", "indoor67"]
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*fashion_mnist"):
        get_dataset("mnist", "train")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        get_dataset("cub200", "test", root=trees["cub200"])
    with pytest.raises(ValueError, match="image_size must be a positive integer, got 0"):
        get_dataset("cub200", "train", root=trees["cub200"], image_size=0)
    with pytest.raises(ValueError, match="'indoor67' needs a root"):
        get_dataset("indoor67", "train")


@pytest.mark.parametrize("name", IMAGE_SETS)
def test_image_fixture_sizes_labels_and_shapes(trees, name):
    for split in ("train", "val"):
        ds = get_dataset(name, split, root=trees[name], image_size=SIDE)
        assert (ds.num_classes, ds.in_channels, ds.image_size, len(ds)) == (3, 3, SIDE, 9)
        assert torch.bincount(ds.targets).tolist() == [3, 3, 3]
        assert len(ds.classes) == 3
        x, y = ds[0]
        assert x.shape == (3, SIDE, SIDE) and x.dtype == torch.float32 and y == int(ds.targets[0])
        # Every file lies in the folder of its class, so labels follow the layout.
        for path, label in zip(ds.files, ds.targets.tolist()):
            assert path.parent.name == ds.classes[label]
    train = get_dataset(name, "train", root=trees[name], image_size=SIDE, train_transform=True)
    assert train.augmented and train[1][0].shape == (3, SIDE, SIDE)
    assert not set(train.files) & set(get_dataset(name, "val", root=trees[name]).files)


def test_default_image_size_is_the_papers_224(trees):
    x, _ = get_dataset("cub200", "val", root=trees["cub200"])[0]
    assert x.shape == (3, 224, 224)


def test_cub_labels_come_from_image_class_labels(trees):
    root = trees["cub200"]
    images = dict(line.split() for line in (root / "images.txt").read_text().splitlines())
    labels = dict(line.split() for line in (root / "image_class_labels.txt").read_text().splitlines())
    is_train = dict(line.split() for line in (root / "train_test_split.txt").read_text().splitlines())
    for image_id in ("3", "7"):
        ds = get_dataset("cub200", "train" if is_train[image_id] == "1" else "val", root=root)
        index = ds.files.index(root / "images" / images[image_id])
        assert int(ds.targets[index]) == int(labels[image_id]) - 1
    classes = [line.split(" ", 1)[1] for line in (root / "classes.txt").read_text().splitlines()]
    assert get_dataset("cub200", "train", root=root).classes == classes


def test_cub_accepts_the_archive_folder_under_root(trees, tmp_path):
    shutil.copytree(trees["cub200"], tmp_path / "CUB_200_2011")
    assert len(get_dataset("cub200", "val", root=tmp_path)) == 9


def test_indoor_uses_only_listed_images(trees):
    root = trees["indoor67"]
    listed = {line for f in ("TrainImages.txt", "TestImages.txt") for line in (root / f).read_text().split()}
    on_disk = {str(p.relative_to(root / "Images")) for p in (root / "Images").rglob("*.jpg")}
    assert len(on_disk) == len(listed) + 3  # one unlisted image per class, as in the real archive
    ds = get_dataset("indoor67", "train", root=root)
    assert {str(p.relative_to(root / "Images")) for p in ds.files} <= listed


def test_greyscale_jpegs_come_out_rgb(trees):
    from PIL import Image

    ds = get_dataset("imagenet", "train", root=trees["imagenet"], image_size=SIDE)
    modes = [Image.open(p).mode for p in ds.files]
    assert "L" in modes
    assert ds[modes.index("L")][0].shape == (3, SIDE, SIDE)


# ---- validation: every error names the culprit file (and line) ----

def test_cub_missing_index_file(trees, tmp_path):
    root = copy_tree(trees, "cub200", tmp_path)
    (root / "train_test_split.txt").unlink()
    with pytest.raises(FileNotFoundError, match="train_test_split.txt"):
        get_dataset("cub200", "train", root=root)


def test_cub_listed_image_missing(trees, tmp_path):
    root = copy_tree(trees, "cub200", tmp_path)
    second = (root / "images.txt").read_text().splitlines()[1].split()[1]
    (root / "images" / second).unlink()
    with pytest.raises(FileNotFoundError, match=r"images.txt:2: listed image .*" + Path(second).name):
        get_dataset("cub200", "val", root=root)


def test_cub_label_out_of_range(trees, tmp_path):
    root = copy_tree(trees, "cub200", tmp_path)
    lines = (root / "image_class_labels.txt").read_text().splitlines()
    lines[4] = lines[4].split()[0] + " 4"
    (root / "image_class_labels.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"image_class_labels.txt:5: label 4 is out of range 1..3"):
        get_dataset("cub200", "train", root=root)


def test_cub_unequal_index_counts(trees, tmp_path):
    root = copy_tree(trees, "cub200", tmp_path)
    lines = (root / "train_test_split.txt").read_text().splitlines()
    (root / "train_test_split.txt").write_text("\n".join(lines[:-1]))
    with pytest.raises(ValueError, match=r"images.txt lists 18 images but .*train_test_split.txt lists 17"):
        get_dataset("cub200", "train", root=root)


def test_cub_malformed_line(trees, tmp_path):
    root = copy_tree(trees, "cub200", tmp_path)
    with open(root / "train_test_split.txt", "a") as f:
        f.write("19\n")
    with pytest.raises(ValueError, match=r"train_test_split.txt:19: expected 2 fields"):
        get_dataset("cub200", "train", root=root)


def test_unreadable_image_is_named_on_access(trees, tmp_path):
    root = copy_tree(trees, "indoor67", tmp_path)
    ds = get_dataset("indoor67", "val", root=root, image_size=SIDE)
    ds.files[2].write_bytes(ds.files[2].read_bytes()[:200])  # a truncated JPEG
    ds[1]  # others still load
    with pytest.raises(ValueError, match="cannot read image .*" + ds.files[2].name):
        ds[2]


def test_indoor_missing_and_bad_index_entries(trees, tmp_path):
    root = copy_tree(trees, "indoor67", tmp_path)
    (root / "TestImages.txt").unlink()
    with pytest.raises(FileNotFoundError, match="TestImages.txt not found"):
        get_dataset("indoor67", "train", root=root)  # both lists are checked whatever the split
    (root / "TestImages.txt").write_text("scene_a/nope.jpg\n")
    with pytest.raises(FileNotFoundError, match=r"TestImages.txt:1: listed image .*nope.jpg"):
        get_dataset("indoor67", "val", root=root)
    (root / "TestImages.txt").write_text("\nkitchen/k_1.jpg\n")
    with pytest.raises(ValueError, match=r"TestImages.txt:2: 'kitchen/k_1.jpg' does not start with a class folder"):
        get_dataset("indoor67", "val", root=root)
    first_train = (root / "TrainImages.txt").read_text().split()[0]
    (root / "TestImages.txt").write_text(first_train + "\n")
    with pytest.raises(ValueError, match="listed in both"):
        get_dataset("indoor67", "val", root=root)


def test_imagenet_layout_errors(trees, tmp_path):
    root = copy_tree(trees, "imagenet", tmp_path)
    shutil.copytree(root / "val" / "n00000001", root / "val" / "n09999999")
    with pytest.raises(ValueError, match=r"val class folder .*n09999999 has no counterpart"):
        get_dataset("imagenet", "val", root=root)
    shutil.rmtree(root / "val")
    (root / "val").mkdir()
    (root / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"")
    with pytest.raises(ValueError, match="holds images directly"):
        get_dataset("imagenet", "val", root=root)
    with pytest.raises(FileNotFoundError, match="ImageNet split directory .*train"):
        get_dataset("imagenet", "val", root=tmp_path / "absent")


def test_size_warning_only_for_real_trees(trees, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetSizeWarning)
        get_dataset("indoor67", "train", root=trees["indoor67"])
    root = copy_tree(trees, "indoor67", tmp_path)
    (root / FIXTURE_MARKER).unlink()
    with pytest.warns(DatasetSizeWarning, match="indoor67 train split .* has 9 images; the official dataset has 5360"):
        get_dataset("indoor67", "train", root=root)


# ---- fixtures ----

def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["cub200", "fashion_mnist"])
def test_fixture_is_deterministic_for_a_seed(tmp_path, name):
    a = _digest(make_fixture(name, tmp_path / "a", classes=None, per_class=2, seed=5, image_size=16))
    b = _digest(make_fixture(name, tmp_path / "b", classes=None, per_class=2, seed=5, image_size=16))
    c = _digest(make_fixture(name, tmp_path / "c", classes=None, per_class=2, seed=6, image_size=16))
    assert a == b and a != c


def test_fixture_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="fashion_mnist has a fixed set of 10 classes, got classes=3"):
        make_fixture("fashion_mnist", tmp_path, classes=3)
    with pytest.raises(ValueError, match="per_class must be an integer >= 1, got 0"):
        make_fixture("cub200", tmp_path, per_class=0)
    with pytest.raises(ValueError, match="unknown dataset 'cub'"):
        make_fixture("cub", tmp_path)


def test_cli_make_fixture(tmp_path, capsys):
    assert cli_main(["make-fixture", "imagenet", str(tmp_path / "in"), "--classes", "2", "--per-class", "1",
                     "--image-size", "16"]) == 0
    assert "2 train / 2 val images" in capsys.readouterr().out
    assert cli_main(["make-fixture", "fashion_mnist", str(tmp_path / "f"), "--classes", "4"]) == 2
    assert "fixed set of 10 classes" in capsys.readouterr().err


# ---- Fashion-MNIST ----

def test_fashion_fixture_and_transforms(trees):
    train = get_dataset("fashion_mnist", "train", root=trees["fashion_mnist"])
    val = get_dataset("fashion_mnist", "val", root=trees["fashion_mnist"], image_size=28)
    assert (len(train), len(val), train.num_classes, train.in_channels) == (30, 30, 10, 1)
    assert torch.bincount(train.targets).tolist() == [3] * 10
    assert train[0][0].shape == (1, 32, 32) and val[0][0].shape == (1, 28, 28)
    # Normalised with the training pixels' own statistics.
    pixels = read_idx(trees["fashion_mnist"] / "train-images-idx3-ubyte.gz", 3) / 255.0
    assert train.transform.mean == pytest.approx(pixels.mean()) and train.transform.std == pytest.approx(pixels.std())
    whole = torch.stack([train[i][0] for i in range(len(train))])
    assert abs(float(whole.mean())) < 0.15


def test_fashion_train_transform_is_seeded_by_torch(trees):
    ds = get_dataset("fashion_mnist", "train", root=trees["fashion_mnist"], train_transform=True)
    draws = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        draws.append(torch.stack([ds[i][0] for i in range(8)]))
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    eval_ds = get_dataset("fashion_mnist", "train", root=trees["fashion_mnist"])
    assert torch.equal(eval_ds[3][0], eval_ds[3][0])


def test_fashion_plain_and_torchvision_layouts(trees, tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in trees["fashion_mnist"].glob("*.gz"):
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    with pytest.warns(DatasetSizeWarning, match="has 30 images; the official dataset has 10000"):
        ds = get_dataset("fashion_mnist", "val", root=tmp_path)  # no fixture marker here: looks like real data
    assert ds.root == raw and len(ds) == 30


def test_fashion_corrupt_files_are_named(trees, tmp_path):
    root = copy_tree(trees, "fashion_mnist", tmp_path)
    images = root / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-40])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz"):
        get_dataset("fashion_mnist", "val", root=root)
    write_idx(images, np.zeros((29, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"holds 29 images but .*t10k-labels-idx1-ubyte.gz holds 30 labels"):
        get_dataset("fashion_mnist", "val", root=root)
    write_idx(images, np.zeros((30, 28), np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz has magic number 0x00000802"):
        get_dataset("fashion_mnist", "val", root=root)
    write_idx(images, np.zeros((30, 28, 28), np.uint8))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.full(30, 10, np.uint8))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: label 10 at index 0 is out of range"):
        get_dataset("fashion_mnist", "val", root=root)


def test_fashion_missing_files_say_where_and_how(tmp_path, monkeypatch):
    def offline(root):
        raise OSError("network unreachable")

    monkeypatch.setattr(fashion_mnist, "_download", offline)
    with pytest.raises(FileNotFoundError) as info:
        get_dataset("fashion_mnist", "train", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message and "train-labels-idx1-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message and "network unreachable" in message


@pytest.mark.skipif(not (fashion_mnist.DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Debian package dataset-fashion-mnist is not installed")
def test_real_fashion_mnist():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetSizeWarning)
        train = get_dataset("fashion_mnist", "train")
        val = get_dataset("fashion_mnist", "val")
    assert (len(train), len(val), train.num_classes) == (60000, 10000, 10)
    assert torch.bincount(val.targets).tolist() == [1000] * 10
    assert val[0][0].shape == (1, 32, 32)
    assert train.transform.mean == pytest.approx(0.2860, abs=1e-3)  # the published statistics
    subset = selection_subset(train, per_class=10, seed=0)
    assert torch.bincount(train.targets[subset.indices]).tolist() == [10] * 10


# ---- the selection subset ----

def test_selection_subset_counts_and_determinism(trees):
    ds = get_dataset("fashion_mnist", "train", root=trees["fashion_mnist"])
    a, b = selection_subset(ds, per_class=2, seed=3), selection_subset(ds, per_class=2, seed=3)
    assert a.indices == b.indices and len(set(a.indices)) == 20
    assert ds.targets[a.indices].tolist() == [c for c in range(10) for _ in range(2)]
    others = {tuple(selection_subset(ds, per_class=2, seed=s).indices) for s in range(4, 10)}
    assert len(others | {tuple(a.indices)}) > 1
    x, y = a[0]
    assert x.shape == (1, 32, 32) and y == 0
    # A Subset input: indices refer to it, labels are read through it.
    half = torch.utils.data.Subset(ds, list(range(0, 30, 2)))
    inner = selection_subset(half, per_class=1, seed=0)
    assert [half[i][1] for i in inner.indices] == list(range(10))


def test_selection_subset_short_classes_and_misuse(trees):
    ds = get_dataset("cub200", "train", root=trees["cub200"], image_size=SIDE)
    with pytest.raises(ValueError, match=r"class 0 \('001.Bird_1'\) has only 3 images.*allow_fewer"):
        selection_subset(ds, per_class=4)
    assert len(selection_subset(ds, per_class=4, allow_fewer=True)) == 9
    with pytest.raises(ValueError, match="per_class must be a positive integer"):
        selection_subset(ds, per_class=0)
    augmented = get_dataset("cub200", "train", root=trees["cub200"], train_transform=True)
    with pytest.raises(ValueError, match="evaluation transform"):
        selection_subset(augmented)
