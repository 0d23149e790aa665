"""Training loop, schedule, checkpoint/resume, evaluation and timing, on tiny models."""
from __future__ import annotations

import errno
import math
import os
import shutil
import signal

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from thinet.runtime import (
    Schedule, atomic_save, evaluate, layer_type_times, load_checkpoint, time_forward_backward, time_models, train,
)


def _blobs(seed: int = 0, n: int = 96) -> TensorDataset:
    """Three well-separated Gaussian blobs in 2-D: a problem any classifier must learn."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    return TensorDataset(centres[labels] + 0.5 * torch.randn(n, 2, generator=g), labels)


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def _loader(seed: int = 0) -> DataLoader:
    # Shuffling and dropout both draw from the global RNG: resume must restore it.
    return DataLoader(_blobs(seed), batch_size=16, shuffle=True)


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_schedule_needs_exactly_one_budget_and_names_bad_keys():
    with pytest.raises(ValueError, match="exactly one of 'epochs' or 'iterations'"):
        Schedule.from_config({"epochs": 1, "iterations": 5, "lr": 0.1})
    with pytest.raises(ValueError, match="exactly one"):
        Schedule.from_config({"lr": 0.1})
    with pytest.raises(ValueError, match=r"finetune\.final\.lr_start is not a schedule key"):
        Schedule.from_config({"epochs": 1, "lr_start": 0.1}, "finetune.final")
    with pytest.raises(ValueError, match="'lr' must be a positive number"):
        Schedule.from_config({"epochs": 1, "lr": -1})
    with pytest.raises(ValueError, match="'iterations' must be a positive int"):
        Schedule.from_config({"iterations": 2.5, "lr": 0.1})


def test_fractional_epochs_round_up_to_whole_batches():
    assert Schedule(epochs=0.5, lr=1).total_steps(10) == 5
    assert Schedule(epochs=1.25, lr=1).total_steps(10) == 13
    assert Schedule(iterations=7, lr=1).total_steps(10) == 7


def test_paper_schedule_is_a_step_schedule_from_lr_to_lr_end():
    # "learning rate from 1e-3 to 1e-5" (§4.2) as Caffe's step policy: x0.1 after 1/3 and 2/3 of the run.
    s = Schedule.from_config({"iterations": 12, "lr": 1e-3, "lr_end": 1e-5})
    assert s.lr_schedule == "step"
    assert [s.lr_at(i, 12) for i in range(12)] == pytest.approx([1e-3] * 4 + [1e-4] * 4 + [1e-5] * 4)
    cosine = Schedule(iterations=5, lr=1e-3, lr_end=1e-5, lr_schedule="cosine")
    rates = [cosine.lr_at(i, 5) for i in range(5)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert rates[2] == pytest.approx((1e-3 + 1e-5) / 2)  # half way down a cosine: the arithmetic midpoint
    with pytest.raises(ValueError, match="'lr_schedule' must be one of step, exp, cosine, got 'linear'"):
        Schedule.from_config({"iterations": 5, "lr": 1e-3, "lr_schedule": "linear"}, "schedule")


def test_learning_rate_decays_geometrically_from_lr_to_lr_end():
    s = Schedule(iterations=5, lr=1e-3, lr_end=1e-5, lr_schedule="exp")
    rates = [s.lr_at(i, 5) for i in range(5)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert rates[2] == pytest.approx(1e-4)  # geometric midpoint, not the arithmetic 5.05e-4
    ratios = [b / a for a, b in zip(rates, rates[1:])]
    assert all(r == pytest.approx(ratios[0]) for r in ratios)
    assert Schedule(iterations=5, lr=0.1).lr_at(4, 5) == 0.1


def test_train_applies_the_schedule_to_the_optimizer():
    seen: list[tuple[int, float]] = []
    data = [(torch.randn(4, 2), torch.tensor([0, 1, 2, 0]))] * 2
    train(_net(), data, Schedule(iterations=5, lr=1e-2, lr_end=1e-4, lr_schedule="exp"), device="cpu",
          progress=False, log_every=1, log=lambda step, m: seen.append((step, m["lr"])))
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5]
    assert [lr for _, lr in seen] == pytest.approx([1e-2 * 0.01 ** (i / 4) for i in range(5)])


def test_training_learns_a_separable_problem():
    model = _net()
    before = evaluate(model, DataLoader(_blobs(1), batch_size=32))
    history = train(model, _loader(), Schedule(epochs=8, lr=0.05), device="cpu", progress=False)
    after = evaluate(model, DataLoader(_blobs(1), batch_size=32))
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert after["loss"] < before["loss"] and after["top1"] > 95.0


def test_same_seed_same_weights_other_seed_other_weights():
    runs = []
    for seed in (3, 3, 4):
        model = _net()
        train(model, _loader(), Schedule(epochs=2, lr=0.05), device="cpu", seed=seed, progress=False)
        runs.append(model)
    assert _same(runs[0], runs[1])
    assert not _same(runs[0], runs[2])


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    schedule = Schedule(epochs=3, lr=0.05, lr_end=0.005)
    whole = _net()
    train(whole, _loader(), schedule, device="cpu", seed=1, checkpoint_path=tmp_path / "whole.pt", progress=False)

    class Killed(Exception):
        pass

    def kill_in_second_epoch(step: int, _metrics: dict) -> None:
        if step == 9:  # 6 batches per epoch: the epoch-1 checkpoint exists, epoch 2 is half done
            raise Killed

    path = tmp_path / "cut.pt"
    with pytest.raises(Killed):
        train(_net(), _loader(), schedule, device="cpu", seed=1, checkpoint_path=path, progress=False,
              log_every=1, log=kill_in_second_epoch)
    assert torch.load(path, weights_only=False)["step"] == 6
    resumed = _net(seed=99)  # different init: the weights must come from the checkpoint
    history = train(resumed, _loader(), schedule, device="cpu", seed=1, checkpoint_path=path, progress=False)
    assert _same(whole, resumed)
    assert history[-1]["step"] == 18


def test_resume_with_other_settings_names_the_key(tmp_path):
    path = tmp_path / "ckpt.pt"
    train(_net(), _loader(), Schedule(iterations=2, lr=0.05), device="cpu", checkpoint_path=path, progress=False)
    with pytest.raises(ValueError, match="schedule"):
        train(_net(), _loader(), Schedule(iterations=2, lr=0.01), device="cpu", checkpoint_path=path,
              progress=False)
    with pytest.raises(ValueError, match="seed"):
        train(_net(), _loader(), Schedule(iterations=2, lr=0.05), device="cpu", checkpoint_path=path, seed=5,
              progress=False)


def test_amp_is_refused_on_cpu():
    with pytest.raises(ValueError, match="amp='bf16' needs a CUDA device"):
        train(_net(), _loader(), Schedule(iterations=1, lr=0.1), device="cpu", amp="bf16", progress=False)
    with pytest.raises(ValueError, match="channels_last='yes'"):
        train(_net(), _loader(), Schedule(iterations=1, lr=0.1), device="cpu", channels_last="yes", progress=False)


def _convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, stride=2),
                         nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 3))


def _images() -> list:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(4)]


def test_channels_last_on_cpu_changes_only_the_layout():
    """The default layout (channels-last, for speed) trains the same model as the contiguous one up to
    float rounding, and repeats itself exactly."""
    runs = {}
    for name, layout in [("auto", None), ("again", None), ("contiguous", False)]:
        model = _convnet()
        train(model, _images(), Schedule(epochs=2, lr=0.05), device="cpu", channels_last=layout, progress=False)
        runs[name] = model
    assert runs["auto"][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert runs["contiguous"][0].weight.is_contiguous()
    assert _same(runs["auto"], runs["again"])
    for p, q in zip(runs["auto"].parameters(), runs["contiguous"].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def _scorer() -> nn.Module:
    """Logits are the input itself: each test row spells out its class ranking."""
    return nn.Sequential(nn.Identity(), nn.Dropout(0.5))


def test_evaluate_top1_top5_and_loss_on_a_hand_made_case():
    logits = torch.tensor([
        [9.0, 8, 7, 6, 5, 4],   # label 0: rank 1
        [9.0, 8, 7, 6, 5, 4],   # label 4: rank 5 -> top-5 hit only
        [9.0, 8, 7, 6, 5, 4],   # label 5: rank 6 -> miss
        [0.0, 0, 0, 0, 0, 1],   # label 5: rank 1
    ])
    labels = torch.tensor([0, 4, 5, 5])
    model = _scorer().train()
    result = evaluate(model, [(logits[:3], labels[:3]), (logits[3:], labels[3:])])
    assert result["top1"] == 50.0 and result["top5"] == 75.0 and result["images"] == 4
    expected = nn.functional.cross_entropy(logits, labels).item()
    assert result["loss"] == pytest.approx(expected, rel=1e-6)
    assert model.training  # the caller's mode is given back
    assert evaluate(model, [(logits, labels)], max_images=3)["images"] == 3
    assert evaluate(model, [(logits, labels)], max_images=3)["top1"] == pytest.approx(100 / 3)


def test_evaluate_with_fewer_than_five_classes_uses_top_k_of_all():
    result = evaluate(_scorer(), [(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 0]))])
    assert result["top1"] == 50.0 and result["top5"] == 100.0


def test_timing_is_positive_and_leaves_the_model_untouched():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    t = time_forward_backward(model, (3, 8, 8), batch_size=4, rounds=2, min_run_time=0.01)
    assert t["forward_ms"] > 0 and t["backward_ms"] > 0 and math.isfinite(t["backward_ms"])
    assert t["forward_iqr_ms"] >= 0 and t["threads"] == torch.get_num_threads()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="input_size"):
        time_forward_backward(model, (8, 8))
    with pytest.raises(ValueError, match="rounds"):
        time_forward_backward(model, (3, 8, 8), rounds=0)


def _head(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def test_timing_measures_the_model_it_is_given():
    # ~2000x the FLOPs of the thin model: slower by far more than any noise of a shared machine.
    # No absolute time is asserted; only the order, for both passes, with the models interleaved.
    t = time_models({"thin": _head(4), "huge": _head(192)}, (3, 32, 32), batch_size=2, rounds=2,
                    min_run_time=0.02, threads=1)
    assert t["huge"]["forward_ms"] > 5 * t["thin"]["forward_ms"]
    assert t["huge"]["backward_ms"] > 5 * t["thin"]["backward_ms"]
    assert t["huge"]["threads"] == 1


def test_layer_type_times_put_the_time_where_the_layers_are():
    model = nn.Sequential(nn.Conv2d(3, 128, 3, padding=1), nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))
    spent = layer_type_times({"m": model}, (3, 32, 32), batch_size=2, rounds=2)["m"]
    assert spent["bn"] == 0.0  # no BatchNorm layer, no BatchNorm time
    assert spent["conv"] > max(spent["relu"], spent["pooling"], spent["linear"])
    assert spent["total"] >= spent["conv"]


def test_caffe_bias_rule_doubles_the_bias_lr_and_drops_its_weight_decay():
    from thinet.runtime import OptimizerSettings, make_optimizer

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    opt = make_optimizer(model, 0.01, OptimizerSettings(bias_lr_factor=2.0, bias_weight_decay=False))
    weights, biases = opt.param_groups
    assert {id(p) for p in biases["params"]} == {id(model[0].bias), id(model[3].bias)}
    assert id(model[1].bias) in {id(p) for p in weights["params"]}  # BatchNorm's shift is no layer bias
    assert (weights["lr"], weights["weight_decay"], biases["lr"], biases["weight_decay"]) == (0.01, 5e-4, 0.02, 0.0)
    plain = make_optimizer(model, 0.01).param_groups[1]
    assert (plain["lr"], plain["weight_decay"]) == (0.01, 5e-4)
    with pytest.raises(ValueError, match="optimizer.bias_momentum is not an optimizer key"):
        OptimizerSettings.from_config({"bias_momentum": 0.9})


def test_bias_rule_reaches_the_training_step():
    from thinet.runtime import OptimizerSettings

    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    data = [(torch.randn(4, 2), torch.tensor([0, 1, 2, 0]))]
    start = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, data, Schedule(iterations=1, lr=0.1), device="cpu", progress=False,
          optimizer=OptimizerSettings(bias_lr_factor=2.0, bias_weight_decay=False))
    caffe_step = model.bias.detach() - start["bias"]
    model.load_state_dict(start)
    train(model, data, Schedule(iterations=1, lr=0.1), device="cpu", progress=False)
    plain_step = model.bias.detach() - start["bias"]
    # one SGD step: plain = -lr (g + wd b), Caffe's rule = -2 lr g
    assert torch.allclose(caffe_step, 2 * (plain_step + 0.1 * 5e-4 * start["bias"]), atol=1e-7)


def test_batch_size_is_the_global_batch_across_processes():
    from thinet.runtime import DistInfo, shard_loader

    loader = DataLoader(TensorDataset(torch.arange(256.0)), batch_size=128, shuffle=True)
    shard = shard_loader(loader, DistInfo(world_size=4, rank=1, local_rank=1), seed=0)
    assert shard.batch_size == 32 and len(shard) == 2  # 4 processes x 32 = the paper's 128 per step
    with pytest.raises(ValueError, match="batch_size 128 is the global batch.*3 processes"):
        shard_loader(loader, DistInfo(world_size=3, rank=0, local_rank=0), seed=0)
# ---------------------------------------------------------------- resumable state inside an epoch

def _seeded_loader(seed: int = 0) -> DataLoader:
    # As the workflow's loaders: the shuffling order comes from the loader's own generator.
    return DataLoader(_blobs(seed), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(7))


class _Stop(Exception):
    pass


@pytest.mark.parametrize("make_loader", [_loader, _seeded_loader], ids=["global-rng", "own-generator"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_epoch_saves_and_the_rerun_continues_to_the_same_weights(tmp_path, make_loader, signum):
    schedule = Schedule(epochs=3, lr=0.05, lr_end=0.005)  # 6 batches per epoch, 18 steps
    whole = _net()
    train(whole, make_loader(), schedule, device="cpu", seed=1, progress=False)

    def stop(*_args):  # the process's own handler: the loop re-delivers the signal after saving
        raise _Stop

    def preempt_at_step_9(step: int, _metrics: dict) -> None:
        if step == 9:  # the middle of the second epoch, long before any timed save
            os.kill(os.getpid(), signum)

    path = tmp_path / "state.pt"
    previous = signal.signal(signum, stop)
    try:
        with pytest.raises(_Stop):
            train(_net(), make_loader(), schedule, device="cpu", seed=1, checkpoint_path=path, progress=False,
                  log_every=1, log=preempt_at_step_9, checkpoint_minutes=None)
        assert signal.getsignal(signum) is stop  # the loop gave the handler back
    finally:
        signal.signal(signum, previous)
    saved = torch.load(path, weights_only=False)
    assert (saved["step"], saved["epoch"], saved["position"]["batch"]) == (9, 1, 3)
    resumed = _net(seed=99)  # different init: the weights must come from the checkpoint
    history = train(resumed, make_loader(), schedule, device="cpu", seed=1, checkpoint_path=path, progress=False)
    assert _same(whole, resumed)
    assert history[-1]["step"] == 18


def test_timed_saves_let_a_killed_run_resume_from_its_last_one(tmp_path):
    # SIGKILL cannot be caught: the run resumes from the last timed save (here: every step).
    schedule = Schedule(epochs=2, lr=0.05)
    whole = _net()
    train(whole, _seeded_loader(), schedule, device="cpu", seed=3, progress=False)
    path, snapshot = tmp_path / "state.pt", tmp_path / "at_kill.pt"

    def copy_the_file_at_step_8(step: int, _metrics: dict) -> None:
        if step == 8:  # the file holds step 7's state: what a SIGKILL now would leave behind
            shutil.copy(path, snapshot)

    train(_net(), _seeded_loader(), schedule, device="cpu", seed=3, checkpoint_path=path, progress=False,
          log_every=1, log=copy_the_file_at_step_8, checkpoint_minutes=0)
    assert torch.load(snapshot, weights_only=False)["step"] == 7
    resumed = _net(seed=5)
    train(resumed, _seeded_loader(), schedule, device="cpu", seed=3, checkpoint_path=snapshot, progress=False)
    assert _same(whole, resumed)


def test_an_epoch_boundary_resume_continues_the_shuffling_order(tmp_path):
    # The loader's generator is saved too: epoch 2 of a resumed run is not epoch 1's order again.
    schedule = Schedule(epochs=2, lr=0.05)
    whole = _net()
    train(whole, _seeded_loader(), schedule, device="cpu", seed=2, progress=False)
    path = tmp_path / "state.pt"
    train(_net(), _seeded_loader(), Schedule(epochs=1, lr=0.05), device="cpu", seed=2, checkpoint_path=path,
          progress=False)
    state = torch.load(path, weights_only=False)
    state.update(schedule=schedule.to_dict(), total_steps=12)  # as if a 2-epoch run had stopped after epoch 1
    torch.save(state, path)
    resumed = _net(seed=4)
    train(resumed, _seeded_loader(), schedule, device="cpu", seed=2, checkpoint_path=path, progress=False)
    assert _same(whole, resumed)


def test_a_writer_failing_half_way_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    atomic_save({"step": 1, "weights": torch.ones(1000)}, path)
    before = path.read_bytes()

    def disk_full_half_way(obj, target, *args, **kwargs):
        target.write(b"\0" * 4096)  # atomic_save hands torch.save an open file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full_half_way)
    with pytest.raises(OSError, match="No space left"):
        atomic_save({"step": 2, "weights": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]  # no torn temporary file left
