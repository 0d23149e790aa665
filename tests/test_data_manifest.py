"""The data step verifies every image before compute and writes the manifest later jobs read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from thinet.data import get_dataset, make_fixture
from thinet.experiment import DatasetSpec, run_prepare_data_job, unreadable_count


def _tree(tmp_path: Path) -> tuple[Path, list[str]]:
    """An Indoor-67 fixture with three unreadable files and three odd-but-readable ones in TrainImages.txt."""
    root = make_fixture("indoor67", tmp_path / "indoor", classes=2, per_class=4, image_size=32)
    listed = (root / "TrainImages.txt").read_text().split()
    images = root / "Images"
    whole = (images / listed[0]).read_bytes()
    (images / listed[1]).write_bytes(whole[: len(whole) // 2])  # truncated JPEG
    (images / listed[2]).write_bytes(b"")  # zero bytes
    (images / listed[3]).write_text("not an image")
    Image.new("L", (40, 40), 128).save(images / listed[4], format="JPEG")  # greyscale
    Image.new("CMYK", (40, 40), (0, 50, 50, 0)).save(images / listed[5], format="JPEG")
    Image.new("RGB", (40, 40), (9, 9, 9)).save(images / listed[6], format="PNG")  # PNG named .jpg
    return root, listed


def test_unreadable_files_fail_the_data_step_listing_each_with_its_index_line(tmp_path):
    root, _ = _tree(tmp_path)
    with pytest.raises(ValueError) as caught:
        run_prepare_data_job(DatasetSpec("indoor67", str(root)), tmp_path / "manifest.json")
    message = str(caught.value)
    assert "3 unreadable image(s)" in message and "skip_unreadable_images" in message
    for line, reason in ((2, "truncated"), (3, "empty"), (4, "cannot identify image file")):
        assert f"TrainImages.txt:{line}: cannot read image" in message
        assert reason in message.splitlines()[line - 1]
    assert not (tmp_path / "manifest.json").exists()


def test_skipped_files_are_listed_counted_and_left_out_of_later_jobs(tmp_path):
    root, listed = _tree(tmp_path)
    manifest = tmp_path / "manifest.json"
    run_prepare_data_job(DatasetSpec("indoor67", str(root), skip_unreadable_images=True), manifest)
    saved = json.loads(manifest.read_text())
    assert [b["listed_at"].rsplit(":", 1)[1] for b in saved["unreadable"]] == ["2", "3", "4"]
    assert saved["train"]["images"] == len(listed) - 3 and saved["val"]["images"] == 8
    assert unreadable_count(manifest) == 3
    (root / "TrainImages.txt").unlink()  # later jobs read the manifest, never the listing
    train = get_dataset("indoor67", "train", root=root, manifest=manifest)
    assert len(train) == len(listed) - 3
    assert all(train[i][0].shape == (3, 224, 224) for i in range(len(train)))  # grey, CMYK, PNG converted
    # A file changed after the data step is an error naming it and the manifest.
    changed = root / "Images" / listed[0]
    changed.write_bytes(changed.read_bytes() + b"\0" * 10)
    with pytest.raises(ValueError, match=f"{listed[0]} changed since the data step verified it.*{manifest}"):
        train[0]


def test_array_datasets_need_no_file_manifest(tmp_path):
    root = make_fixture("fashion_mnist", tmp_path / "fm", per_class=2)
    manifest = tmp_path / "m.json"
    run_prepare_data_job(DatasetSpec("fashion_mnist", str(root)), manifest)
    saved = json.loads(manifest.read_text())
    assert saved["verified"] == {} and saved["unreadable"] == []
    assert len(get_dataset("fashion_mnist", "val", root=root, manifest=manifest)) == saved["val"]["images"]
