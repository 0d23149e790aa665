"""ThiNet sampling (§3.2.1): x̂ indexing against the layer's real output, determinism, streaming Gram."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import thinet.sampling._consumers as consumers
from thinet.sampling import collect_gram, collect_samples, iter_batches, make_consumer
from thinet.types import LayerPair, PruningError

CONV_CASES = {
    "3x3_pad1": dict(kernel_size=3, padding=1),
    "3x3_stride2": dict(kernel_size=3, stride=2, padding=1),
    "3x3_dilation2": dict(kernel_size=3, dilation=2, padding=2),
    "1x1": dict(kernel_size=1),
    "nonsquare": dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
    "same": dict(kernel_size=4, padding="same"),
    "reflect": dict(kernel_size=3, padding=1, padding_mode="reflect"),
}


def _conv(seed: int, c_in: int = 5, c_out: int = 7, **kw) -> nn.Conv2d:
    torch.manual_seed(seed)
    return nn.Conv2d(c_in, c_out, **kw).double()


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_samples_sum_to_real_output(case):
    conv = _conv(0, **CONV_CASES[case])
    x = torch.randn(3, 5, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = conv(x)
    consumer = make_consumer(conv, "conv", 5)
    filters, rows, cols = consumer.draw(x, 40, torch.Generator().manual_seed(2))
    assert int(rows.max()) < out.shape[2] and int(cols.max()) < out.shape[3]
    x_hat = consumer.samples(x, filters, rows, cols)
    images = torch.arange(3).view(-1, 1)
    expected = out[images, filters, rows, cols]
    assert torch.allclose(x_hat.sum(-1) + conv.bias[filters], expected, atol=1e-10)
    # The draws range over the whole output grid, borders included.
    assert set(rows.flatten().tolist()) == set(range(out.shape[2]))
    assert set(cols.flatten().tolist()) == set(range(out.shape[3]))


def _rows_found_in_output(x_hat: torch.Tensor, bias: torch.Tensor, out: torch.Tensor, per_image: int) -> bool:
    """Each sample's x̂.sum + b(d) must equal some entry of its own image's output for filter d."""
    y = x_hat.double().sum(1)
    for row, value in enumerate(y.tolist()):
        image_out = (out[row // per_image].reshape(out.shape[1], -1) - bias.view(-1, 1)).detach().double()
        if not torch.isclose(image_out, torch.tensor(value, dtype=torch.float64), rtol=1e-4, atol=1e-4).any():
            return False
    return True


def _conv_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.Conv2d(6, 4, (3, 2), stride=2, padding=(1, 0), dilation=(2, 1)))


def test_collect_samples_rows_match_consumer_output_per_image():
    net = _conv_net()
    images = torch.randn(5, 3, 10, 9, generator=torch.Generator().manual_seed(3))
    x_hat = collect_samples(net, LayerPair("0", "3"), iter_batches(images, batch_size=2), samples_per_image=6)
    assert x_hat.shape == (30, 6) and x_hat.dtype == torch.float32
    net.eval()
    with torch.no_grad():
        out = net(images)
    assert _rows_found_in_output(x_hat, net[3].bias, out, 6)
    # A wrong image assignment must be detectable: the check is not vacuous.
    assert not _rows_found_in_output(x_hat.roll(6, 0), net[3].bias, out, 6)


def _flat_net(gap: bool, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    if gap:
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 5))


@pytest.mark.parametrize("gap", [False, True], ids=["flattened_S9", "pooled_S1"])
def test_linear_consumer_samples(gap):
    net = _flat_net(gap)
    images = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(4))
    x_hat = collect_samples(net, LayerPair("0", "4" if gap else "3"), images, samples_per_image=7, seed=5)
    assert x_hat.shape == (28, 4)
    with torch.no_grad():
        out = net(images).unsqueeze(-1)
    assert _rows_found_in_output(x_hat, net[-1].bias, out, 7)
    # Explicit neurons: x̂_c is the contribution of channel c's S contiguous inputs.
    linear = net[-1]
    feats = torch.randn(2, linear.in_features, dtype=torch.float64)
    consumer = make_consumer(linear.double(), "fc", 4)
    neurons = torch.tensor([[0, 4], [2, 2]])
    x_hat = consumer.samples(feats, neurons)
    s = linear.in_features // 4
    expected = (linear.weight[neurons] * feats.unsqueeze(1)).view(2, 2, 4, s).sum(-1)
    assert torch.allclose(x_hat, expected)
    assert torch.allclose(x_hat.sum(-1) + linear.bias[neurons], linear(feats).gather(1, neurons))


def test_determinism_and_seed_dependence():
    net = _conv_net()
    images = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    a = collect_samples(net, LayerPair("0", "3"), images, seed=11)
    b = collect_samples(net, LayerPair("0", "3"), [(images[:3], None), (images[3:], None)], seed=11)
    c = collect_samples(net, LayerPair("0", "3"), images, seed=12)
    assert torch.equal(a, collect_samples(net, LayerPair("0", "3"), images, seed=11))
    assert b.shape == a.shape and not torch.equal(a, c)


def test_model_left_unchanged():
    net = _conv_net()
    net.train()
    net[1].eval()  # a mixed-mode model must come back exactly as it was
    before = {k: v.clone() for k, v in net.state_dict().items()}
    collect_samples(net, LayerPair("0", "3"), torch.randn(4, 3, 8, 8))
    collect_gram(net, LayerPair("0", "3"), torch.randn(4, 3, 8, 8))
    assert net.training and not net[1].training and net[3].training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not net[3]._forward_pre_hooks


def _exhaustive_conv_x_hat(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    consumer = make_consumer(conv, "conv", conv.in_channels)
    out_h, out_w = conv(x).shape[2:]
    d, r, c = torch.meshgrid(torch.arange(conv.out_channels), torch.arange(out_h), torch.arange(out_w), indexing="ij")
    grid = [t.reshape(1, -1).expand(x.shape[0], -1) for t in (d, r, c)]
    return consumer.samples(x, *grid).reshape(-1, conv.in_channels)


@pytest.mark.parametrize("case", ["3x3_stride2", "nonsquare", "1x1"])
def test_collect_gram_equals_exhaustive_conv(case):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 5, 1), nn.ReLU(), nn.Conv2d(5, 3, **CONV_CASES[case])).double()
    images = torch.randn(3, 2, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    gram = collect_gram(net, LayerPair("0", "2"), iter_batches(images, 2))
    with torch.no_grad():
        x_hat = _exhaustive_conv_x_hat(net[2], net[1](net[0](images)))
    assert gram.dtype == torch.float64 and gram.shape == (5, 5)
    assert torch.allclose(gram, x_hat.T @ x_hat, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("cov_limit", [consumers.MAX_COV_ELEMENTS, 10], ids=["patch_cov", "per_neuron"])
def test_collect_gram_equals_exhaustive_linear(cov_limit, monkeypatch):
    monkeypatch.setattr(consumers, "MAX_COV_ELEMENTS", cov_limit)
    net = _flat_net(gap=False).double()
    images = torch.randn(4, 3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    gram = collect_gram(net, LayerPair("0", "3"), images)
    with torch.no_grad():
        feats = net[2](net[1](net[0](images)))
    consumer = make_consumer(net[3], "fc", 4)
    x_hat = consumer.samples(feats, torch.arange(5).expand(4, -1)).reshape(-1, 4)
    assert torch.allclose(gram, x_hat.T @ x_hat, rtol=1e-10, atol=1e-9)


def test_bad_pairs_raise_before_compute(monkeypatch):
    net = _conv_net()
    images = torch.randn(2, 3, 8, 8)
    with pytest.raises(PruningError, match="'nope'"):
        collect_samples(net, LayerPair("0", "nope"), _Unusable())
    with pytest.raises(PruningError, match=r"producer '2'.*ReLU"):
        collect_samples(net, LayerPair("2", "3"), _Unusable())
    with pytest.raises(PruningError, match=r"consumer '1'.*BatchNorm2d"):
        collect_samples(net, LayerPair("0", "1"), _Unusable())
    with pytest.raises(PruningError, match="samples_per_image"):
        collect_samples(net, LayerPair("0", "3"), _Unusable(), samples_per_image=0)
    grouped = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(PruningError, match=r"'1'.*groups=2"):
        collect_samples(grouped, LayerPair("0", "1"), _Unusable())
    with pytest.raises(PruningError, match=r"'1'.*in_channels=4.*8 output channels"):
        collect_samples(nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(4, 4, 1)), LayerPair("0", "1"), _Unusable())
    with pytest.raises(PruningError, match=r"'fc'.*in_features=10.*4 output channels"):
        collect_samples(nn.ModuleDict({"conv": nn.Conv2d(3, 4, 1), "fc": nn.Linear(10, 2)}), LayerPair("conv", "fc"), _Unusable())
    with pytest.raises(PruningError, match=r"'2'.*not called"):
        collect_samples(_NeverCalls(), LayerPair("0", "2"), images)
    with pytest.raises(PruningError, match="no images"):
        collect_gram(net, LayerPair("0", "3"), [])
    monkeypatch.setattr(consumers, "MAX_COV_ELEMENTS", 10)
    with pytest.raises(PruningError, match=r"consumer '3'.*patch covariance"):
        collect_gram(net, LayerPair("0", "3"), _Unusable())


def test_hook_removed_when_a_batch_fails():
    net = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 3))
    with pytest.raises(PruningError, match=r"consumer '1'.*3-D input"):
        collect_samples(net, LayerPair("0", "1"), torch.randn(2, 5, 4))
    assert not net[1]._forward_pre_hooks and net.training


class _Unusable:
    """Batches that fail if anything iterates them: proves errors come before any forward pass."""

    def __iter__(self):
        raise AssertionError("batches were read before the error")


class _NeverCalls(nn.Module):
    """Owns a consumer that its forward never reaches."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("0", nn.Conv2d(3, 4, 1))
        self.add_module("2", nn.Conv2d(4, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "0")(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net = _conv_net()
    images = torch.randn(4, 3, 8, 8)
    cpu = collect_samples(net, LayerPair("0", "3"), images, seed=3)
    gpu = collect_samples(net.cuda(), LayerPair("0", "3"), images, seed=3)
    assert gpu.is_cuda and torch.allclose(cpu, gpu.cpu(), atol=1e-4)
