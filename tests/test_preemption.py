"""Preemption with DataLoader workers: SIGTERM to the whole process group (what SLURM sends at
preemption, `scontrol requeue` and `scancel`) still saves the mid-epoch state, whichever process sees
the signal first, and the resumed run ends with the uninterrupted run's weights.

A training process (a subprocess, its own process group, `num_workers: 2`, an augmentation drawn in
the workers) holds at a mid-epoch step until the test has sent its signals; the state it leaves must
be that step's, and training on from it must give `torch.equal` weights.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from thinet.runtime import Schedule, train

STEPS_PER_EPOCH, EPOCHS, STOP_AT = 8, 2, 11  # step 11 = epoch 1, batch 3: mid-epoch

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_preemption import loader, model, SCHEDULE
    from thinet.runtime import train

    state, ready, sent = (Path(p) for p in sys.argv[1:4])

    def hold(step, _metrics):
        if step == {stop_at}:
            ready.touch()  # the test sends its signals now
            deadline = time.monotonic() + 60
            while not sent.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.5)  # time for a dead worker to be noticed (SIGCHLD) before the loop goes on

    train(model(), loader(), SCHEDULE, device="cpu", seed=0, checkpoint_path=state, checkpoint_minutes=None,
          log=hold, log_every=1, progress=False)
""").format(tests=str(Path(__file__).parent), stop_at=STOP_AT)

SCHEDULE = Schedule(epochs=EPOCHS, lr=0.05)


class Jittered(torch.utils.data.Dataset):
    """Fixed points plus noise drawn from torch's RNG where the item is read (a worker): an augmentation."""

    def __len__(self) -> int:
        return 8 * STEPS_PER_EPOCH

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        base = torch.randn(4, generator=torch.Generator().manual_seed(i))
        return base + 0.1 * torch.randn(4), i % 2


def loader() -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(Jittered(), batch_size=8, shuffle=True, num_workers=2,
                                       generator=torch.Generator().manual_seed(0))


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def send(proc: subprocess.Popen, order: str) -> None:
    workers = children(proc.pid)
    assert len(workers) == 2, f"expected 2 DataLoader workers, found {workers}"
    if order == "process-group":
        os.killpg(proc.pid, signal.SIGTERM)
        return
    first, then = ([proc.pid], workers) if order == "main-first" else (workers, [proc.pid])
    for pid in first:
        os.kill(pid, signal.SIGTERM)
    time.sleep(0.3)  # the first ones have acted on it (a worker without protection is dead by now)
    for pid in then:
        os.kill(pid, signal.SIGTERM)


ORDERS = ("process-group", "workers-first", "main-first")


@pytest.fixture(scope="module")
def preempted(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """{order: (exit status, stderr, state file)} of one training process per order, run side by side."""
    root = tmp_path_factory.mktemp("preempted")
    runs = {}
    try:
        for order in ORDERS:
            files = [root / f"{order}.{name}" for name in ("state.pt", "ready", "sent")]
            proc = subprocess.Popen([sys.executable, "-c", CHILD, *map(str, files)], start_new_session=True,
                                    stderr=subprocess.PIPE, text=True)
            runs[order] = proc, files
        deadline = time.monotonic() + 120
        for order, (proc, (_, ready, sent)) in runs.items():
            while not ready.exists():
                assert proc.poll() is None, f"training ended before step {STOP_AT}: {proc.stderr.read()[-2000:]}"
                assert time.monotonic() < deadline, "training did not reach the step in 120 s"
                time.sleep(0.02)
            send(proc, order)
            sent.touch()
        return {order: (proc.wait(timeout=60), proc.stderr.read(), files[0])
                for order, (proc, files) in runs.items()}
    finally:
        for proc, _ in runs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def uninterrupted() -> torch.nn.Module:
    net = model()
    train(net, loader(), SCHEDULE, device="cpu", seed=0, progress=False)
    return net


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find the worker processes")
@pytest.mark.parametrize("order", ORDERS)
def test_sigterm_with_dataloader_workers_saves_mid_epoch_and_resumes_exactly(order, preempted, uninterrupted):
    status, err, state = preempted[order]
    assert status == -signal.SIGTERM, f"exit {status}, not killed by the re-delivered SIGTERM: {err[-2000:]}"
    saved = torch.load(state, weights_only=False)
    assert (saved["step"], saved["epoch"], saved["position"]["batch"]) == (STOP_AT, 1, STOP_AT - STEPS_PER_EPOCH)
    resumed = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))  # other init
    train(resumed, loader(), SCHEDULE, device="cpu", seed=0, checkpoint_path=state, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted.state_dict().values(), resumed.state_dict().values()))


def test_worker_augmentation_depends_on_the_batch_not_on_the_worker_count(uninterrupted):
    # Each batch's draws in a worker are seeded by the epoch and the batch's number, so the number of
    # workers does not change the weights either (and a resumed epoch redraws the same crops).
    net = model()
    data = loader()
    one = torch.utils.data.DataLoader(data.dataset, batch_size=8, shuffle=True, num_workers=1,
                                      generator=torch.Generator().manual_seed(0))
    train(net, one, SCHEDULE, device="cpu", seed=0, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted.state_dict().values(), net.state_dict().values()))
