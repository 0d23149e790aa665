"""Channel Pruning's training examples (He, Zhang, Sun, ICCV 2017): the consumer's input patches X and its
output Y (minus the bias) for *all* its filters, at ThiNet's sampled positions.

`collect_patches` draws exactly as `collect_samples` does (the consumer's own `draw`, a CPU generator
seeded with `seed`, the same images in the same order) and ignores the drawn filter: row j of X and Y is
the position of row j of ThiNet's X̂, so Y[j, d_j] = Σ_c X̂[j, c] for the filter d_j ThiNet drew there.
The per-channel contribution of channel c to filter d is Σ_k W[d,c,k]·X[j,c,k], and Y[j, d] is their
sum over c (Eq. 2 and 3 of ThiNet, for every filter at once).
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from numbers import Integral

import torch
from torch import nn

from thinet.sampling._capture import consumer_inputs, resolve_device
from thinet.sampling._collect import consumer_of
from thinet.types import LayerPair, PruningError


def collect_patches(model: nn.Module, pair: LayerPair, batches: Iterable | torch.Tensor, *,
                    samples_per_image: int = 10, seed: int = 0,
                    device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, Y) for `pair` on CPU in float64: X is m×C×taps, the consumer's input window at each sampled
    output position (taps = Kh·Kw, in the weight's order; a Linear consumer reading S columns per channel
    has taps = S and one "position" per image, repeated for each of its draws as `LinearConsumer` does);
    Y is m×D, the consumer's output minus its bias there for all D filters (Y = X·Wᵀ, W flattened to
    D×C·taps). m = images × `samples_per_image`, rows of image n at n·L … n·L+L−1, as `collect_samples`.

    >>> import torch
    >>> from torch import nn
    >>> from thinet.types import LayerPair
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3))
    >>> x, y = collect_patches(net, LayerPair("0", "2"), torch.randn(6, 3, 8, 8), samples_per_image=5)
    >>> x.shape, y.shape, x.dtype
    (torch.Size([30, 8, 9]), torch.Size([30, 4]), torch.float64)
    >>> w = net[2].weight.detach().double().reshape(4, 8, 9)
    >>> torch.allclose(torch.einsum("mct,dct->md", x, w), y)
    True
    """
    module, consumer, _ = consumer_of(model, pair)
    if isinstance(samples_per_image, bool) or not isinstance(samples_per_image, Integral) or samples_per_image < 1:
        raise PruningError(f"layer {pair.producer!r}: samples_per_image must be a positive int, "
                           f"got {samples_per_image!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise PruningError(f"layer {pair.producer!r}: seed must be an int, got {seed!r}")
    dev = resolve_device(model, module, pair.consumer, device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    weight = module.weight.detach().to("cpu", torch.float64).reshape(module.weight.shape[0], -1)  # D×(C·taps)
    xs, ys = [], []
    with torch.no_grad(), closing(consumer_inputs(model, module, pair.consumer, batches, dev)) as inputs:
        for x in inputs:
            index = consumer.draw(x, int(samples_per_image), gen)  # the same draws as collect_samples
            patches = consumer.patches(x, *(i.to(x.device) for i in index))
            flat = patches.reshape(-1, consumer.num_channels * consumer.taps).to("cpu", torch.float64)
            xs.append(flat.view(-1, consumer.num_channels, consumer.taps))
            ys.append(flat @ weight.T)
    if not xs:
        raise PruningError(f"layer {pair.producer!r}: no images in batches")
    return torch.cat(xs), torch.cat(ys)
