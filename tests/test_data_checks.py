"""Every job reads the data manifest, and the data step leaves no hole (issue 25, items 5 and 7).

compare_layer and the pretrain jobs read the manifest (or, before the data step has made it, check the
data the same way); missing files of both splits are listed at once with the unreadable ones and are
covered by `skip_unreadable_images`; the error names the config key that exists; an optional checksum
finds a same-size change before training; index lines that would leave the dataset folder are refused.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from thinet.data import get_dataset, make_fixture
from job_specs import base_run, compare_spec, job_spec
from thinet.experiment import DatasetSpec, JobSpec, run_compare_layer_job, run_prepare_data_job, run_pretrain_job
from thinet.models import create_model

ROOT = Path(__file__).resolve().parents[1]
SIDE = 32


@pytest.fixture(scope="module")
def indoor(tmp_path_factory) -> Path:
    return make_fixture("indoor67", tmp_path_factory.mktemp("indoor") / "indoor", classes=2, per_class=4,
                        image_size=SIDE, seed=0)


def _copy(indoor: Path, tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    root = Path(shutil.copytree(indoor, tmp_path / "indoor"))
    return root, (root / "TrainImages.txt").read_text().split(), (root / "TestImages.txt").read_text().split()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _entry(root: Path, **settings) -> dict:
    return {"name": "indoor67", "root": str(root), "image_size": SIDE, **settings}


def _dataset(root: Path, **settings) -> DatasetSpec:
    return DatasetSpec.from_dict(_entry(root, **settings))


def test_missing_files_of_both_splits_are_listed_at_once_with_the_unreadable_ones(indoor, tmp_path):
    root, train, val = _copy(indoor, tmp_path)
    (root / "Images" / train[1]).unlink()
    (root / "Images" / val[2]).unlink()
    _truncate(root / "Images" / train[3])
    with pytest.raises(ValueError) as caught:
        run_prepare_data_job(_dataset(root), tmp_path / "m.json")
    message = str(caught.value)
    assert "3 unreadable image(s)" in message
    assert f"TrainImages.txt:2: listed image {root / 'Images' / train[1]} does not exist" in message
    assert f"TestImages.txt:3: listed image {root / 'Images' / val[2]} does not exist" in message
    assert f"TrainImages.txt:4: cannot read image {root / 'Images' / train[3]}" in message


def test_skipping_covers_missing_files_too(indoor, tmp_path):
    root, train, val = _copy(indoor, tmp_path)
    (root / "Images" / train[1]).unlink()
    (root / "Images" / val[2]).unlink()
    manifest = tmp_path / "m.json"
    run_prepare_data_job(_dataset(root, skip_unreadable_images=True), manifest)
    saved = json.loads(manifest.read_text())
    assert sorted((b["split"], b["listed_at"].rsplit("/", 1)[1]) for b in saved["unreadable"]) == [
        ("train", "TrainImages.txt:2"), ("val", "TestImages.txt:3")]
    assert (saved["train"]["images"], saved["val"]["images"]) == (len(train) - 1, len(val) - 1)


def test_the_error_names_the_config_key_the_schema_accepts(indoor, tmp_path):
    from thinet.experiment import validate_schema

    root, train, _ = _copy(indoor, tmp_path)
    _truncate(root / "Images" / train[0])
    with pytest.raises(ValueError, match=r"set config key 'datasets\.indoor67\.skip_unreadable_images: true'"):
        run_prepare_data_job(_dataset(root), tmp_path / "m.json")
    config = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    config["datasets"]["fashion_mnist"]["skip_unreadable_images"] = True  # the key the message names
    validate_schema(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")


def test_without_a_manifest_every_missing_file_of_the_split_is_named_in_one_error(indoor, tmp_path):
    root, train, _ = _copy(indoor, tmp_path)
    for name in train[:2]:
        (root / "Images" / name).unlink()
    with pytest.raises(FileNotFoundError, match=r"2 listed images of the train split do not exist:\n"
                                                r"  .*TrainImages.txt:1: .*\n  .*TrainImages.txt:2: "):
        get_dataset("indoor67", "train", root=root)


def test_a_same_size_change_after_the_check_is_found_before_any_read_with_checksums(indoor, tmp_path):
    root, train, _ = _copy(indoor, tmp_path)
    plain, summed = tmp_path / "plain.json", tmp_path / "summed.json"
    run_prepare_data_job(_dataset(root), plain)
    run_prepare_data_job(_dataset(root, image_checksums=True), summed)
    victim = root / "Images" / train[2]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped in the image data: same size, still decodes
    victim.write_bytes(bytes(data))
    assert len(get_dataset("indoor67", "train", root=root, manifest=plain)) == len(train)  # unnoticed
    with pytest.raises(ValueError, match=rf"1 image\(s\) of the train split differ from the data manifest {summed}"
                                         rf".*\n  .*TrainImages.txt:3: image {victim} changed .*sha256 differs"):
        get_dataset("indoor67", "train", root=root, manifest=summed)
    assert len(get_dataset("indoor67", "val", root=root, manifest=summed)) == 8  # the other split is intact


def _compare_spec(root: Path, manifest: Path | None, **settings):
    return compare_spec(_entry(root, **settings),
                        {"layer": "conv1_1", "keep_ratio": 0.5, "seed": 0, "criteria": ["thinet", "random"]},
                        manifest=str(manifest) if manifest else None)


@pytest.fixture(scope="module")
def whole_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save(create_model("vgg16_small", 2, in_chans=3, width_mult=0.0625, input_size=SIDE), path)
    return path


def test_compare_layer_reads_the_manifest_not_the_listing(indoor, tmp_path, whole_model):
    root, train, _ = _copy(indoor, tmp_path)
    _truncate(root / "Images" / train[0])
    manifest = tmp_path / "m.json"
    run_prepare_data_job(_dataset(root, skip_unreadable_images=True), manifest)
    (root / "TrainImages.txt").unlink()  # only the manifest knows the files now
    out = tmp_path / "out"
    run_compare_layer_job(_compare_spec(root, manifest, skip_unreadable_images=True), whole_model,
                          out / "compare_layer.csv", out / "compare_layer.md")
    assert (out / "compare_layer.csv").read_text().count("\n") == 4  # header, none, thinet, random
    assert sorted(p.name for p in out.iterdir()) == ["compare_layer.csv", "compare_layer.md"]


def test_compare_layer_without_a_manifest_checks_the_data_the_same_way(indoor, tmp_path, whole_model):
    root, train, _ = _copy(indoor, tmp_path)
    _truncate(root / "Images" / train[0])
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="datasets.indoor67.skip_unreadable_images"):
        run_compare_layer_job(_compare_spec(root, None), whole_model, out / "c.csv", out / "c.md")
    assert not (out / "c.csv").exists()
    run_compare_layer_job(_compare_spec(root, None, skip_unreadable_images=True), whole_model,
                          out / "c.csv", out / "c.md")
    assert sorted(p.name for p in out.iterdir()) == ["c.csv", "c.md"]  # its own check removed when done


def _pretrain_spec(root: Path, manifest: Path, **settings) -> JobSpec:
    run = base_run(dataset="indoor67", model_args={"in_chans": 3, "width_mult": 0.0625, "input_size": SIDE},
                   pretrain={"iterations": 1, "lr": 0.01})
    run["training"]["batch_size"] = 4
    return JobSpec.from_dict(job_spec(run, _entry(root, **settings), data={"batch_size": 4, "eval_batch_size": 8},
                                      manifest=str(manifest)))


def test_a_pretrain_job_before_the_data_step_checks_the_data_itself(indoor, tmp_path):
    root, train, val = _copy(indoor, tmp_path)
    _truncate(root / "Images" / val[1])
    out = tmp_path / "models" / "vgg.pt"
    not_yet = tmp_path / "results" / "data" / "indoor67.json"  # the data step has not run (a fresh clone)
    with pytest.raises(ValueError, match=r"(?s)'datasets\.indoor67\.skip_unreadable_images: true'.*"
                                         r"TestImages.txt:2: cannot read image"):
        run_pretrain_job(_pretrain_spec(root, not_yet), out, checkpoint_minutes=None)
    assert not out.exists()
    run_pretrain_job(_pretrain_spec(root, not_yet, skip_unreadable_images=True), out, checkpoint_minutes=None)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["eval_images"] == len(val) - 1  # the unreadable image left out, as the data step would
    assert sorted(p.name for p in out.parent.iterdir()) == ["vgg.json", "vgg.pt"]


def test_a_pretrain_job_reads_the_data_steps_manifest_when_it_is_there(indoor, tmp_path):
    root, _, val = _copy(indoor, tmp_path)
    manifest = tmp_path / "m.json"
    run_prepare_data_job(_dataset(root), manifest)
    (root / "TestImages.txt").unlink()  # only the manifest knows the files now
    out = tmp_path / "models" / "vgg.pt"
    run_pretrain_job(_pretrain_spec(root, manifest), out, checkpoint_minutes=None)
    assert json.loads(out.with_suffix(".json").read_text())["eval_images"] == len(val)


def _first_line_leaves(index: Path, image_field: int) -> None:
    lines = index.read_text().splitlines()
    fields = lines[0].split()
    fields[image_field] = "scene_a/../../../outside.jpg" if image_field == 0 else "../../outside.jpg"
    index.write_text("\n".join([" ".join(fields), *lines[1:]]) + "\n")


@pytest.mark.parametrize("name, index, image_field, images", [("cub200", "images.txt", 1, "images"),
                                                              ("indoor67", "TrainImages.txt", 0, "Images")])
def test_index_lines_that_leave_the_image_folder_are_refused_with_file_and_line(tmp_path, name, index, image_field,
                                                                                 images):
    root = make_fixture(name, tmp_path / name, classes=2, per_class=2, image_size=SIDE, seed=0)
    # a real image where the line points (tmp_path/outside.jpg): the path alone is refused
    shutil.copy(next((root / images).rglob("*.jpg")), tmp_path / "outside.jpg")
    _first_line_leaves(root / index, image_field)
    with pytest.raises(ValueError, match=rf"{index}:1: '.*\.\./outside\.jpg' leaves {root / images} "):
        get_dataset(name, "train", root=root)
