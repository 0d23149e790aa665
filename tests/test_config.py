"""Config loading, validation and expansion into runs (thinet/config.py), without Snakemake."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from thinet.experiment import ConfigError, build_plan, deep_merge, load_config, read_yaml_files, validate_schema

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CRITERIA = ["apoz", "random", "taylor", "thinet", "thinet_forward", "thinet_nols", "weight_sum"]


@pytest.fixture(scope="module")
def default_raw() -> dict:
    return read_yaml_files([CONFIG / "default.yaml"])


def test_default_config_expands_to_the_documented_grid(default_raw):
    cfg = load_config([CONFIG / "default.yaml"], SCHEMA)
    plan = build_plan(cfg)
    chains = [plan.runs[r] for r in plan.of_kind("chain")]
    vgg = [r for r in chains if r["experiment"] == "vgg_criteria"]
    # every registered criterion at 0.5 with three paired seeds, and at 0.7/0.3 with seed 0
    assert sorted({r["criterion"] for r in vgg}) == sorted(set(CRITERIA) | {r["criterion"] for r in vgg})
    assert len(vgg) == 5 * len({r["criterion"] for r in vgg})
    assert {(r["keep_ratio"], r["seed"]) for r in vgg} == {(0.5, 0), (0.5, 1), (0.5, 2), (0.7, 0), (0.3, 0)}
    table1 = [r["variant"] for r in plan.runs.values() if r.get("experiment") == "vgg16_table1"]
    assert table1 == ["Original", "ThiNet-Conv", "Train from scratch", "ThiNet-GAP", "ThiNet-Tiny"]
    resnet = [r for r in chains if r["experiment"] == "resnet_thinet"]
    assert [r["variant"] for r in resnet] == ["ThiNet-70", "ThiNet-50", "ThiNet-30", "ThiNet-70, BN re-estimated",
                                              "ThiNet-50, BN re-estimated", "ThiNet-30, BN re-estimated"]
    assert [r.get("reestimate_bn", False) for r in resnet] == [False] * 3 + [True] * 3
    assert plan.compare_layer["layer"] == "conv1_1" and plan.compare_layer["keep_ratio"] == 0.4
    assert set(plan.selections) == {f"fashion_mnist-pc10-s{seed}" for seed in (0, 1, 2)}
    assert cfg["data"]["batch_size"] == 64  # default filled by the schema


@pytest.mark.parametrize("mutate, key, allowed", [
    (lambda c: c["experiments"]["vgg_criteria"]["variants"][1].update(criteria=["thinet", "l1_norm"]),
     "experiments.vgg_criteria.variants[1].criteria[1]", "weight_sum"),
    (lambda c: c["experiments"]["vgg_criteria"]["variants"][1].update(keep_ratios=[1.5]),
     "experiments.vgg_criteria.variants[1].keep_ratios[0]", "1"),
    (lambda c: c["experiments"]["vgg_criteria"]["variants"][1].update(keep_ratios=[0.0]),
     "experiments.vgg_criteria.variants[1].keep_ratios[0]", "0"),
    (lambda c: c["bases"]["vgg"].update(model="vgg19_tiny"), "bases.vgg.model", "vgg16_small"),
    (lambda c: c["datasets"]["fashion_mnist"].update(root="/nonexistent/fmnist"), "datasets.fashion_mnist.root",
     "/nonexistent/fmnist"),
    (lambda c: c["experiments"]["vgg_criteria"]["variants"][1].update(strategy="vgg19_conv"),
     "experiments.vgg_criteria.variants[1].strategy", "vgg16_conv"),
    (lambda c: c.update(bogus_key=1), "<top level>", "bogus_key"),
    (lambda c: c["bases"]["vgg"]["pretrain"].update(iterations=10), "bases.vgg.pretrain", "epochs"),
    (lambda c: c["bases"]["vgg"].update(checkpoint="vgg.pt"), "bases.vgg", "not checkpoint and pretrain"),
    (lambda c: c["experiments"]["vgg_criteria"]["variants"].append({"kind": "gap", "from": "nowhere",
                                                                    "train": {"iterations": 1}}),
     "experiments.vgg_criteria.variants[3].from", "nowhere"),
    (lambda c: c["experiments"]["vgg_criteria"]["variants"].append({"kind": "chain", "strategy": "vgg16_conv"}),
     "experiments.vgg_criteria.variants[3]", "criteria"),
    (lambda c: c.update(gpus=3), "data.batch_size", "'gpus' = 3"),
    (lambda c: c["compare_layer"].update(run="vgg_criteria-nope"), "compare_layer", "not both"),
    (lambda c: c["compare_layer"].pop("base") and c["compare_layer"].update(run="vgg_criteria-nope"),
     "compare_layer.run", "vgg_criteria-thinet-r0.5-s0"),
])
def test_bad_config_names_the_key(default_raw, load_raw, mutate, key, allowed):
    raw = copy.deepcopy(default_raw)
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        load_raw(raw)
    assert key in str(err.value) and allowed in str(err.value), str(err.value)


def test_reference_to_a_multi_run_chain_is_refused(default_raw, load_raw):
    raw = copy.deepcopy(default_raw)
    raw["experiments"]["vgg_criteria"]["variants"][1]["id"] = "grid"
    raw["experiments"]["vgg_criteria"]["variants"].append({"kind": "gap", "from": "grid", "train": {"iterations": 1}})
    with pytest.raises(ConfigError, match=r"variants\[3\]\.from.*'grid' expands to (\d+) runs") as err:
        load_raw(raw)
    # the applicable criteria (every registered one but those the BN-free VGG refuses) x 3 seeds
    assert int(err.value.args[0].split("expands to ")[1].split()[0]) % 3 == 0


def test_all_criteria_leaves_out_and_records_those_that_cannot_score_the_layers(default_raw):
    from thinet.criteria import available_criteria

    plan = build_plan(load_config([CONFIG / "default.yaml"], SCHEMA))
    vgg = {plan.runs[r]["criterion"] for r in plan.of_kind("chain") if plan.runs[r]["experiment"] == "vgg_criteria"}
    refused = {(r.experiment, r.variant, r.criterion): r for r in plan.refused}
    assert {c for _, _, c in refused} == {"bn_scale", "tp_bn_scale"}  # this VGG has no BatchNorm
    assert vgg == set(available_criteria()) - {"bn_scale", "tp_bn_scale"}
    line = refused[("vgg_criteria", "chain", "bn_scale")].line()
    assert "criterion 'bn_scale' cannot score layer 'features.0' (no BatchNorm on its output" in line
    resnet = {plan.runs[r]["criterion"] for r in plan.of_kind("chain") if plan.runs[r]["experiment"] == "resnet_thinet"}
    assert resnet == {"thinet"}


def test_a_listed_criterion_that_cannot_score_the_layers_is_refused_by_the_plan(default_raw, load_raw):
    raw = copy.deepcopy(default_raw)
    raw["experiments"]["vgg_criteria"]["variants"][1]["criteria"] = ["thinet", "bn_scale"]
    plan = build_plan(load_raw(raw))
    chains = [plan.runs[r] for r in plan.of_kind("chain") if plan.runs[r]["experiment"] == "vgg_criteria"]
    assert {r["criterion"] for r in chains if r["keep_ratio"] == 0.5} == {"thinet"}
    assert [(r.variant, r.criterion) for r in plan.refused if r.variant == "chain"] == [("chain", "bn_scale")]


def test_an_unknown_torch_pruning_name_in_a_config_lists_the_known_ones(default_raw, load_raw):
    raw = copy.deepcopy(default_raw)
    raw["experiments"]["vgg_criteria"]["variants"][1]["criteria"] = ["tp_nope"]
    with pytest.raises(ConfigError, match=r"variants\[1\]\.criteria\[0\].*tp_nope.*tp_magnitude"):
        load_raw(raw)
    raw["experiments"]["vgg_criteria"]["variants"][1]["criteria"] = ["tp_fpgm"]  # made on demand
    assert "tp_fpgm" in {r.get("criterion") for r in build_plan(load_raw(raw)).runs.values()}


def test_gap_and_scratch_inherit_the_source_chain(default_raw, load_raw):
    raw = copy.deepcopy(default_raw)
    chain = raw["experiments"]["vgg_criteria"]["variants"][1]
    chain.update(id="conv", criteria=["thinet"], keep_ratios=[0.5], seeds=[0], label="ThiNet-Conv")
    raw["experiments"]["vgg_criteria"]["variants"] += [
        {"kind": "gap", "id": "gap", "from": "conv", "label": "ThiNet-GAP", "train": {"iterations": 3, "lr": 0.01}},
        {"kind": "scratch", "like": "conv", "train": {"iterations": 3, "lr": 0.01}}]
    plan = build_plan(load_raw(raw))
    gap, scratch = plan.runs["vgg_criteria-gap"], plan.runs["vgg_criteria-scratch"]
    assert gap["after"] == scratch["after"] == "vgg_criteria-conv"
    assert (gap["variant"], gap["criterion"], gap["keep_ratio"]) == ("ThiNet-GAP", "thinet", 0.5)
    assert (scratch["variant"], scratch["criterion"], scratch["keep_ratio"]) == ("Train from scratch", "", 0.5)
    assert not scratch.get("kept") and scratch["checkpoint"] is None  # trained by the run itself


def test_only_a_scratch_variant_of_a_base_chain_can_be_kept(default_raw, load_raw):
    raw = copy.deepcopy(default_raw)
    variants = raw["experiments"]["vgg16_table1"]["variants"]
    assert variants[2]["kind"] == "scratch" and variants[2]["kept"]
    plan = build_plan(load_raw(copy.deepcopy(raw)))
    assert plan.runs["vgg16_table1-scratch"]["checkpoint"] == "models/default/vgg16_table1-scratch.pt"
    bad = copy.deepcopy(raw)
    bad["experiments"]["vgg16_table1"]["variants"][3]["kept"] = True   # the GAP variant
    with pytest.raises(ConfigError, match=r"variants\[3\]\.kept': only a scratch variant can be kept, not a 'gap'"):
        load_raw(bad)
    bad = copy.deepcopy(raw)
    bad["experiments"]["vgg16_table1"]["variants"].append(
        {"kind": "scratch", "id": "tiny_scratch", "like": "tiny", "train": {"iterations": 1}, "kept": True})
    with pytest.raises(ConfigError, match=r"variants\[5\]\.kept': the 'like' variant must be a chain pruning the base"):
        load_raw(bad)


def test_settings_hash_follows_the_settings(default_raw, load_raw):
    plan = build_plan(load_raw(copy.deepcopy(default_raw)))
    raw = copy.deepcopy(default_raw)
    chain = raw["experiments"]["vgg_criteria"]["variants"][1]
    # a new mapping: the YAML anchor shares one finetune mapping between both VGG chain variants
    chain["finetune"] = {**chain["finetune"], "per_layer": {"iterations": 31, "lr": 0.005}}
    changed = build_plan(load_raw(raw))
    rid = "vgg_criteria-thinet-r0.5-s0"
    assert changed.runs[rid]["hash"] != plan.runs[rid]["hash"]
    # the r = 0.7/0.3 variant and the ResNet chains are untouched
    for other in ("vgg_criteria-curves-thinet-r0.7-s0", "resnet_thinet-thinet-r0.5-s0"):
        assert changed.runs[other]["hash"] == plan.runs[other]["hash"]
    # a change to the base model changes every chain that starts from it
    raw = copy.deepcopy(default_raw)
    raw["bases"]["vgg"]["seed"] = 7
    assert build_plan(load_raw(raw)).runs[rid]["hash"] != plan.runs[rid]["hash"]


@pytest.mark.parametrize("paper, override", [("imagenet_vgg16", "ci/imagenet_vgg16"),
                                             ("imagenet_resnet50", "ci/imagenet_resnet50"),
                                             ("transfer", "ci/transfer")])
def test_paper_configs_and_ci_overrides(paper, override):
    raw = read_yaml_files([CONFIG / f"{paper}.yaml"])
    validate_schema(raw, SCHEMA)  # the real config is well-formed (its data is not here)
    merged = load_config([CONFIG / f"{paper}.yaml", CONFIG / f"{override}.yaml"], SCHEMA)
    assert merged["name"] == f"ci_{paper}"
    assert all("fixture" in ds for ds in merged["datasets"].values())
    real, ci = build_plan(raw), build_plan(merged)
    assert sorted(real.runs) == sorted(ci.runs)  # the CI run exercises the same DAG
    # the authors' protocol (§4.2-4.4): Caffe's bias rule, "lr from 1e-3 to 1e-5" as a step schedule
    assert raw["optimizer"] == {"bias_lr_factor": 2, "bias_weight_decay": False}
    decaying = [s for run in real.runs.values() for s in [run.get("train"), *(run.get("finetune") or {}).values()]
                if isinstance(s, dict) and s.get("lr_end")]
    assert decaying and all(s["lr_schedule"] == "step" for s in decaying)


def test_deep_merge_replaces_lists_and_merges_mappings():
    assert deep_merge({"a": [1, 2], "b": {"c": 1, "d": 2}}, {"a": [3], "b": {"d": 4}}) == {"a": [3], "b": {"c": 1, "d": 4}}


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config([tmp_path / "nope.yaml"], SCHEMA)


def test_criteria_modules_registers_a_criterion_kept_outside_baselines(default_raw, tmp_path, load_raw):
    plugin = tmp_path / "cfg_l1_plugin.py"
    plugin.write_text(
        "import torch\n"
        "from thinet.criteria import register_criterion\n\n"
        "@register_criterion('cfg_l1_plugin')\n"
        "def cfg_l1_plugin(ctx):\n"
        "    scores = ctx.producer.weight.detach().abs().flatten(1).sum(1)\n"
        "    return torch.sort(scores, descending=True, stable=True).indices[: ctx.n_keep]\n")
    raw = copy.deepcopy(default_raw)
    raw["experiments"]["vgg_criteria"]["variants"][1]["criteria"] = ["thinet", "cfg_l1_plugin"]
    raw["criteria_modules"] = [str(plugin)]
    plan = build_plan(load_raw(raw))
    assert "cfg_l1_plugin" in {plan.runs[r]["criterion"] for r in plan.of_kind("chain")}

    raw["criteria_modules"] = [str(tmp_path / "missing_plugin.py")]
    with pytest.raises(ConfigError, match="criteria_modules"):
        load_raw(raw)


def test_transfer_config_holds_the_papers_single_layer_setting():
    raw = read_yaml_files([CONFIG / "transfer.yaml"])
    plan = build_plan(validate_schema(raw, SCHEMA))
    cmp = plan.compare_layer
    assert (cmp["after"], cmp["layer"], cmp["keep_ratio"]) == ("transfer_cub200-ft_gap", "conv1_1", 0.4)
    source = plan.runs[cmp["after"]]
    assert (source["kind"], source["dataset"], source["model"]) == ("gap", "cub200", "vgg16")
def test_schema_declares_the_draft_snakemake_validates_with():
    # snakemake.utils.validate always builds a Draft202012Validator and warns
    # "No validator found for JSON Schema version identifier" for any other $schema.
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["$schema"] == Draft202012Validator.META_SCHEMA["$schema"]
    Draft202012Validator.check_schema(schema)


def test_verdict_config_shares_the_default_kept_models():
    cfg = load_config([CONFIG / "verdict.yaml"], SCHEMA)
    plan = build_plan(cfg)
    kept = {r["id"]: r["checkpoint"] for r in plan.runs.values() if r.get("kept")}
    # seed 0 is the default's kept Train from scratch; seeds 1 and 2 are kept beside it
    assert kept == {"vgg16_table1-scratch": "models/default/vgg16_table1-scratch.pt",
                    "vgg16_table1-scratch_s1": "models/default/vgg16_table1-scratch_s1.pt",
                    "vgg16_table1-scratch_s2": "models/default/vgg16_table1-scratch_s2.pt"}
    assert plan.runs["base-vgg"]["checkpoint"] == "models/default/vgg.pt"
    chains = [plan.runs[r] for r in plan.of_kind("chain")]
    short = [r for r in chains if r["experiment"] == "vgg_criteria"]
    assert len({r["seed"] for r in short if r["keep_ratio"] == 0.5}) >= 10
    assert {len({r["seed"] for r in short if r["keep_ratio"] == k}) for k in (0.7, 0.3)} == {5}
    long = [r for r in chains if r["experiment"] == "vgg_criteria_long"]
    assert {r["criterion"] for r in long} >= {"thinet", "weight_sum", "apoz", "taylor", "random"}
    assert len({r["seed"] for r in long}) >= 5
    assert cfg["statistics"] == {"level": 0.95, "equivalence_margin": 0.3, "correction": "holm"}


@pytest.mark.parametrize("key, value", [("name", ".."), ("name", ".hidden"), ("models_dir", "models/../x"),
                                        ("models_dir", "/tmp/models"), ("models_dir", "elsewhere")])
def test_path_keys_that_would_leave_their_folder_are_refused(default_raw, load_raw, key, value):
    raw = copy.deepcopy(default_raw)
    raw[key] = value
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        load_raw(raw)


def test_a_grouping_no_conv_of_the_chain_allows_is_refused_by_the_config_check(smoke_raw, load_raw):
    # The same rule as `thinet prune --gcos-groups`: refused before any job, not after the source chain ran.
    raw = copy.deepcopy(smoke_raw)
    grouped = next(v for v in raw["experiments"]["vgg_grouped"]["variants"] if v["kind"] == "grouped")
    grouped["groups"] = [2, 3]
    with pytest.raises(ConfigError, match=r"vgg_grouped.variants\[\d\]\.groups\[1\].*no conv of \w+ can be grouped "
                                          r"into 3 groups.*features\.2.*refused before any job runs"):
        load_raw(raw)
