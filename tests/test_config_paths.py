"""Names from a config that become parts of paths are checked before anything is planned or written
(issue 25, item 7): experiment keys, base names and variant ids, like the schema's `name`."""
from __future__ import annotations

import copy
import re

import pytest

from thinet.experiment import ConfigError


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
def test_a_name_that_would_leave_its_folder_is_refused_naming_the_key(smoke_raw, load_raw, change, value, key):
    raw = copy.deepcopy(smoke_raw)
    change(raw, value)
    with pytest.raises(ConfigError, match=rf"config key {re.escape(repr(key))}: .* {re.escape(repr(value))} "
                                          r"becomes part of file paths"):
        load_raw(raw)


def test_ordinary_names_with_dots_and_dashes_pass(smoke_raw, load_raw):
    raw = copy.deepcopy(smoke_raw)
    _variant_id(raw, "seed1.b")
    _rename_experiment(raw, "vgg-criteria.v2")
    _rename_base(raw, "vgg_16.small")
    config = load_raw(raw)
    assert "vgg-criteria.v2" in config["experiments"] and "vgg_16.small" in config["bases"]
