"""The training / fine-tuning loop (paper §4.2–4.3): SGD, momentum 0.9, weight decay 5e-4
(`thinet.runtime.make_optimizer`, with Caffe's bias rule as an option).

One loop serves training from scratch and fine-tuning after each pruning step.
It checkpoints atomically at every epoch end, every `checkpoint_minutes` and on
SIGTERM/SIGINT (mid-epoch: model, optimizer, scheduler, data-order position, RNG states),
and resumes from that file when it exists, ending with the same weights as an uninterrupted
run; it uses AMP on CUDA and the channels-last layout on every device (1.3-1.6x faster steps
for the default small VGG and ResNet on one CPU thread, measured); it runs data-parallel under
`torchrun`; it is seeded, so the same seed gives the same weights on CPU.

>>> import torch
>>> from torch import nn
>>> from thinet.runtime import Schedule
>>> data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
>>> model = nn.Linear(4, 2)
>>> history = train(model, data, Schedule(epochs=2, lr=0.1), device="cpu", progress=False)
>>> history[-1]["step"]
6
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from thinet.runtime._distributed import barrier, dist_info, setup_distributed, shard_loader, wrap_distributed
from thinet.runtime._checkpoint import atomic_save, load_checkpoint
from thinet.runtime._optimizer import OptimizerSettings, make_optimizer
from thinet.runtime._data_position import DataPosition
from thinet.runtime._interruption import DEFAULT_CHECKPOINT_MINUTES, CheckpointTrigger
from thinet.runtime._schedule import Schedule
from thinet.runtime._seeding import rng_state, seed_everything, set_rng_state

LogFn = Callable[[int, dict[str, float]], None]
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_amp(amp: str | bool | None, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: None (auto) means bf16 (fp16 where bf16 is missing) on CUDA, off on CPU."""
    if amp is None:
        amp = device.type == "cuda"
    if amp is False or amp == "off":
        return None
    if device.type != "cuda":
        raise ValueError(f"amp={amp!r} needs a CUDA device; training runs on {device}")
    if amp is True:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp not in _AMP_DTYPES:
        raise ValueError(f"amp={amp!r} is not one of None, True, False, 'off', {', '.join(map(repr, _AMP_DTYPES))}")
    return _AMP_DTYPES[amp]


def resolve_channels_last(channels_last: bool | None) -> bool:
    """None (auto) means on: oneDNN's CPU convolutions and cuDNN's both run faster channels-last."""
    if channels_last not in (None, True, False):
        raise ValueError(f"channels_last={channels_last!r} is not one of None, True, False")
    return channels_last is not False


def _resume(path: str, model: nn.Module, optimizer, scheduler, scaler, expected: Mapping[str, Any]) -> dict:
    ckpt = load_checkpoint(path)
    for key, value in expected.items():
        if ckpt.get(key) != value:
            raise ValueError(f"checkpoint {path!r} was written with {key}={ckpt.get(key)!r}, this run has "
                             f"{key}={value!r}; remove the file to start afresh")
    try:
        model.load_state_dict(ckpt["model"].state_dict())
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path!r} does not fit the model: {str(err).splitlines()[0]}") from None
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    return ckpt


def train(model: nn.Module, loader: Iterable, schedule: Schedule | Mapping[str, Any], *,
          device: str | torch.device, amp: str | bool | None = None, channels_last: bool | None = None,
          checkpoint_path: str | os.PathLike | None = None, seed: int = 0, log: LogFn | None = None,
          progress: bool = True, log_every: int = 50, desc: str = "train",
          optimizer: OptimizerSettings | Mapping[str, Any] | None = None,
          checkpoint_minutes: float | None = DEFAULT_CHECKPOINT_MINUTES) -> list[dict[str, float]]:
    """Train `model` in place with cross-entropy; return the logged history.

    `loader` yields `(images, labels)` and has a length (a DataLoader or a list).
    `log(step, metrics)` receives `loss`, `accuracy` (%, on the training batches
    since the last log), `lr` and `epoch` every `log_every` steps and at each
    epoch end; those are also the history records. Only rank 0 logs and writes.
    `optimizer` sets the bias rule (`OptimizerSettings`; default: biases like other weights).
    With `checkpoint_path`, the resumable state is also saved every `checkpoint_minutes`
    (None: only at epoch ends and on a signal) and on SIGTERM/SIGINT, which then end the process.
    """
    schedule = Schedule.from_config(schedule)
    settings = OptimizerSettings.from_config(optimizer)
    device = torch.device(device)
    amp_dtype = resolve_amp(amp, device)
    use_channels_last = resolve_channels_last(channels_last)
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every!r}")
    info = dist_info()
    device = setup_distributed(info, device)
    loader = shard_loader(loader, info, seed)
    steps_per_epoch = len(loader)
    total = schedule.total_steps(steps_per_epoch)

    seed_everything(seed)
    was_training = model.training
    model.to(device, memory_format=torch.channels_last if use_channels_last else torch.preserve_format)
    sgd = make_optimizer(model, schedule.lr, settings)
    scheduler = torch.optim.lr_scheduler.LambdaLR(sgd, lambda s: schedule.lr_factor(s, total))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    fingerprint = {"schedule": schedule.to_dict(), "optimizer_settings": settings.to_dict(), "total_steps": total,
                   "seed": seed}
    step, epoch, history, position = 0, 0, [], DataPosition(loader)
    # Loss sum, correct, images since the last log (synced only at log time); in the state, so the first
    # record after a resume covers the whole interval.
    running = torch.zeros(3, device=device)
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        ckpt = _resume(str(checkpoint_path), model, sgd, scheduler, scaler, fingerprint)
        step, epoch, history = ckpt["step"], ckpt["epoch"], ckpt["history"]
        position = DataPosition(loader, ckpt.get("position"))
        running = torch.tensor(ckpt.get("running", [0.0, 0.0, 0.0]), device=device)

    def save() -> None:
        if checkpoint_path is not None and info.is_main:
            atomic_save({**fingerprint, "model": model, "optimizer": sgd.state_dict(),
                         "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                         "step": step, "epoch": epoch, "rng": rng_state(), "history": history,
                         "position": position.state_dict(), "running": running.tolist()}, checkpoint_path)
        barrier(info)

    net = wrap_distributed(model, info, device)
    net.train()
    show = progress and info.is_main and sys.stderr.isatty()
    bar = tqdm(total=total, initial=step, desc=desc, disable=not show, dynamic_ncols=True)
    trigger = CheckpointTrigger(checkpoint_minutes if checkpoint_path is not None else None)
    with trigger:
        while step < total:
            sampler = getattr(loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            for images, labels in position.epoch_batches():
                images = images.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                if use_channels_last and images.dim() == 4:
                    images = images.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                    logits = net(images)
                    loss = F.cross_entropy(logits, labels)
                sgd.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(sgd)
                scaler.update()
                scheduler.step()
                step += 1
                with torch.no_grad():
                    running += torch.stack([loss.detach().float() * labels.numel(),
                                            (logits.argmax(1) == labels).sum().float(),
                                            torch.tensor(float(labels.numel()), device=device)])
                bar.update(1)
                epoch_end = step % steps_per_epoch == 0 or step == total
                if step % log_every == 0 or epoch_end:
                    loss_sum, correct, seen = running.tolist()
                    running.zero_()
                    record = {"step": step, "epoch": step / steps_per_epoch, "loss": loss_sum / seen,
                              "accuracy": 100.0 * correct / seen, "lr": schedule.lr_at(step - 1, total)}
                    if info.is_main:
                        history.append(record)
                        bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{record['accuracy']:.1f}")
                        if log is not None:
                            log(step, {k: v for k, v in record.items() if k != "step"})
                if step == total:
                    break
                if trigger.due():  # mid-epoch: every checkpoint_minutes, or a SIGTERM/SIGINT to honour
                    save()
                    trigger.saved()
            epoch += 1
            save()
    bar.close()
    model.train(was_training)
    return history


def finetune(model: nn.Module, loader: Iterable, schedule: Schedule | Mapping[str, Any], **kwargs: Any) -> list[dict]:
    """Fine-tune a pruned model: the same loop as `train` (the paper uses one SGD setup for both).

    >>> # finetune(pruned, train_loader, Schedule(epochs=1, lr=1e-3), device="cuda")
    """
    return train(model, loader, schedule, **kwargs)
