"""Names from a config that become parts of paths are checked before anything is planned or written
(issue 25, item 7): experiment keys, base names and variant ids, like the schema's `name`."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from thinet.experiment import ConfigError, load_config, read_yaml_files

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def smoke() -> dict:
    return read_yaml_files([ROOT / "config" / "smoke.yaml"])


def _load(raw: dict, tmp_path: Path) -> dict:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config([path], SCHEMA)


def _rename_experiment(raw: dict, new: str) -> None:
    raw["experiments"] = {new if k == "vgg_criteria" else k: v for k, v in raw["experiments"].items()}


def _rename_base(raw: dict, new: str) -> None:
    raw["bases"] = {new if k == "vgg" else k: v for k, v in raw["bases"].items()}
    for exp in raw["experiments"].values():
        exp["base"] = new if exp["base"] == "vgg" else exp["base"]
    raw["compare_layer"]["base"] = new


def _variant_id(raw: dict, new: str) -> None:
    raw["experiments"]["vgg_criteria"]["variants"][2]["id"] = new  # the smoke's chain with id seed1


@pytest.mark.parametrize("change, value, key", [
    (_rename_experiment, "../../../tmp/x", "experiments"),
    (_rename_experiment, ".hidden", "experiments"),
    (_rename_experiment, "a/b", "experiments"),
    (_rename_base, "../vgg", "bases"),
    (_rename_base, "..", "bases"),
    (_variant_id, "..", "experiments.vgg_criteria.variants[2].id"),  # the schema's id pattern lets '..' pass
    (_variant_id, ".x", "experiments.vgg_criteria.variants[2].id"),
])
def test_a_name_that_would_leave_its_folder_is_refused_naming_the_key(smoke, tmp_path, change, value, key):
    raw = copy.deepcopy(smoke)
    change(raw, value)
    with pytest.raises(ConfigError, match=rf"config key {re.escape(repr(key))}: .* {re.escape(repr(value))} "
                                          r"becomes part of file paths"):
        _load(raw, tmp_path)


def test_ordinary_names_with_dots_and_dashes_pass(smoke, tmp_path):
    raw = copy.deepcopy(smoke)
    _variant_id(raw, "seed1.b")
    _rename_experiment(raw, "vgg-criteria.v2")
    _rename_base(raw, "vgg_16.small")
    config = _load(raw, tmp_path)
    assert "vgg-criteria.v2" in config["experiments"] and "vgg_16.small" in config["bases"]
