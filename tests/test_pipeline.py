"""The layer-by-layer chain: per-step checkpoints, resume after a kill, refused restarts."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from thinet.runtime import step_path
from thinet.pipeline import FinetunePlan, prune_chain
from thinet.types import LayerPair, PruneStep, PruningError

PLAN = FinetunePlan.from_config({
    "per_layer": {"iterations": 3, "lr": 0.01},
    "group_end_extra": {"iterations": 2, "lr": 0.001},
    "final": {"epochs": 1, "lr": 0.01, "lr_end": 0.001},
})
STEPS = [PruneStep(LayerPair("0", "2"), 0.5, group_end=True),
         PruneStep(LayerPair("2", "4"), 0.5),
         PruneStep(LayerPair("4", "8"), 0.25)]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 3))


def _data():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 6, 6, generator=g), torch.arange(32) % 3
    return x, [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]


def _run(workdir, model=None, steps=STEPS, evaluate_fn=None, log=None, **kw):
    x, batches = _data()
    return prune_chain(model if model is not None else _model(), steps, criterion=kw.pop("criterion", "thinet"),
                       selection_batches=[x[:16]], finetune=PLAN, train_loader=batches, workdir=workdir,
                       seed=kw.pop("seed", 0), device="cpu", example_inputs=x[:2], evaluate_fn=evaluate_fn,
                       log=log, progress=False, **kw)


def test_plan_phases_follow_the_paper():
    assert [n for n, _ in PLAN.phases(group_end=False, last=False)] == ["per_layer"]
    assert [n for n, _ in PLAN.phases(group_end=True, last=False)] == ["per_layer", "group_end_extra"]
    assert [n for n, _ in PLAN.phases(group_end=True, last=True)] == ["final"]
    with pytest.raises(ValueError, match="finetune.final is missing"):
        FinetunePlan.from_config({"per_layer": {"epochs": 1, "lr": 0.1}})


def test_chain_prunes_every_step_and_saves_one_checkpoint_each(tmp_path):
    calls, steps_logged = [], []
    model = _run(tmp_path, evaluate_fn=lambda m, phase, i: calls.append((phase, i)) or {"phase": phase},
                 log=lambda step, m: steps_logged.append((step, m["chain_step"])))
    assert [model[0].out_channels, model[2].out_channels, model[4].out_channels] == [4, 4, 2]
    assert model[8].in_features == 2
    assert calls == [("pruned", 0), ("finetuned", 0), ("pruned", 1), ("finetuned", 1), ("pruned", 2), ("finetuned", 2)]
    # one global step counter: 3 + 2 (group end) after step 0, 3 after step 1, 4 (one epoch) after step 2
    assert [s for s, _ in steps_logged] == [3, 5, 8, 12]
    ckpt = torch.load(step_path(tmp_path, 1), weights_only=False)
    assert ckpt["step"] == 1 and ckpt["metrics"]["finetuned"] == {"phase": "finetuned"}
    assert ckpt["selection"].keep.numel() == 4
    assert json.loads((tmp_path / "chain.json").read_text())["steps"][2]["keep_ratio"] == 0.25
    assert not list(tmp_path.glob("*.finetune*.pt"))  # fine-tuning checkpoints are cleaned up


def test_steps_marked_without_fine_tuning_are_fine_tuned_with_the_next(tmp_path):
    # ResNet's recipe (§4.3): prune conv1 and conv2 of a block, then fine-tune once.
    calls, trained = [], []
    steps = [PruneStep(LayerPair("0", "2"), 0.5, finetune_after=False), PruneStep(LayerPair("2", "4"), 0.5),
             PruneStep(LayerPair("4", "8"), 0.25)]
    _run(tmp_path, steps=steps, evaluate_fn=lambda m, phase, i: calls.append((phase, i)),
         log=lambda step, m: trained.append((step, m["chain_step"])))
    assert calls == [("pruned", 0), ("pruned", 1), ("finetuned", 1), ("pruned", 2), ("finetuned", 2)]
    assert [chain_step for _, chain_step in trained] == [1, 2]  # no training after step 0
    assert json.loads((tmp_path / "chain.json").read_text())["steps"][0]["finetune_after"] is False
    assert [n for n, _ in PLAN.phases(group_end=False, last=False, finetune_after=False)] == []
    assert [n for n, _ in PLAN.phases(group_end=False, last=True, finetune_after=False)] == ["final"]


def test_resume_after_a_kill_does_not_redo_finished_steps(tmp_path):
    uninterrupted = _run(tmp_path / "whole")

    class Killed(Exception):
        pass

    def kill_during_step_2(_step: int, metrics: dict) -> None:
        if metrics["chain_step"] == 2:
            raise Killed

    with pytest.raises(Killed):
        _run(tmp_path / "cut", log=kill_during_step_2)
    assert step_path(tmp_path / "cut", 1).exists() and not step_path(tmp_path / "cut", 2).exists()
    calls = []
    resumed = _run(tmp_path / "cut", evaluate_fn=lambda m, phase, i: calls.append((phase, i)))
    assert calls == [("pruned", 2), ("finetuned", 2)]
    for a, b in zip(uninterrupted.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_at_a_step_boundary_keeps_a_shuffling_loaders_order(tmp_path):
    # The loader's own generator runs on across the chain's fine-tunes; a new process starts it
    # afresh, so the step checkpoint must carry it (a kill between steps changed the weights otherwise).
    x, _ = _data()
    data = TensorDataset(x, torch.arange(32) % 3)

    def loader() -> DataLoader:  # what a new process builds: the generator at its seed
        return DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(7))

    def run(workdir, log=None):
        return prune_chain(_model(), STEPS, criterion="thinet", selection_batches=[x[:16]], finetune=PLAN,
                           train_loader=loader(), workdir=workdir, seed=0, device="cpu", example_inputs=x[:2],
                           log=log, progress=False)

    class Killed(Exception):
        pass

    def kill_when_step_2_trains(_step: int, metrics: dict) -> None:
        if metrics["chain_step"] == 2:
            raise Killed

    uninterrupted = run(tmp_path / "whole")
    with pytest.raises(Killed):
        run(tmp_path / "cut", log=kill_when_step_2_trains)
    assert not list((tmp_path / "cut").glob("*.finetune*.pt"))  # killed before any save inside step 2
    resumed = run(tmp_path / "cut")
    for a, b in zip(uninterrupted.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_restart_with_other_settings_names_the_key(tmp_path):
    _run(tmp_path, steps=STEPS[:1])
    other = [PruneStep(LayerPair("0", "2"), 0.75, group_end=True)]
    with pytest.raises(PruningError, match=r"steps\[0\]\.keep_ratio=0\.5.*0\.75"):
        _run(tmp_path, steps=other)
    with pytest.raises(PruningError, match="seed"):
        _run(tmp_path, steps=STEPS[:1], seed=1)


def test_bad_input_is_refused_before_the_model_changes(tmp_path):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PruningError, match="unknown criterion 'thinett'"):
        _run(tmp_path / "a", model=model, criterion="thinett")
    with pytest.raises(PruningError, match="keep_ratio 1.5"):
        _run(tmp_path / "b", model=model, steps=[PruneStep(LayerPair("0", "2"), 1.5)])
    with pytest.raises(PruningError, match="conv9"):
        _run(tmp_path / "c", model=model, steps=[PruneStep(LayerPair("conv9", "2"), 0.5)])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not (tmp_path / "a").exists()


def test_too_few_selection_samples_fail_before_the_first_layer(tmp_path):
    # 16 images x 1 sample = 16 samples; fine for the 8-channel layers, so widen one layer to 32
    model = _model()
    model[4] = nn.Conv2d(8, 32, 3, padding=1)
    model[8] = nn.Linear(32, 3)
    x, batches = _data()
    with pytest.raises(PruningError, match=r"layer '4'.*16 samples for 32 channels"):
        prune_chain(model, STEPS, criterion="thinet", selection_batches=x[:16], finetune=PLAN,
                    train_loader=batches, workdir=tmp_path, seed=0, device="cpu", example_inputs=x[:2],
                    samples_per_image=1, progress=False)
    assert model[0].out_channels == 8 and not (tmp_path / "chain.json").exists()  # nothing pruned or written


def test_batchnorm_statistics_are_reestimated_after_each_surgery_when_asked(tmp_path):
    from thinet.runtime import reestimate_batchnorm

    def bn_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    x, _ = _data()
    stats = {}
    steps = [PruneStep(LayerPair("0", "3"), 0.5)]
    for flag in (False, True):
        prune_chain(bn_model(), steps, criterion="thinet", selection_batches=[x[:16]], finetune=None,
                    train_loader=None, workdir=tmp_path / str(flag), seed=0, device="cpu", example_inputs=x[:2],
                    evaluate_fn=lambda m, phase, i, f=flag: stats.__setitem__(f, m[4].running_mean.clone()),
                    progress=False, reestimate_bn=flag)
    # off: the untouched running mean of a fresh BN (zeros); on: the exact batch mean of the pruned model
    assert torch.equal(stats[False], torch.zeros(8))
    pruned = torch.load(tmp_path / "True" / "step_000.pt", weights_only=False)["model"]
    expected = pruned[:4](x[:16]).mean(dim=(0, 2, 3))
    assert torch.allclose(stats[True], expected, atol=1e-5)
    assert json.loads((tmp_path / "True" / "chain.json").read_text())["reestimate_bn"] is True
    assert reestimate_batchnorm(nn.Linear(2, 2), [x]) == 0  # nothing to do without BatchNorm
