"""ThiNet's training examples (paper §3.2.1): the m×C matrix X̂ of channel contributions.

For each image, `samples_per_image` entries y of layer i+1's output are drawn at
random (a filter d and an output position); sample row = (x̂_1, …, x̂_C) with
x̂_c = Σ_k W[d,c,k]·x[c,k] (Eq. 2) and ŷ = Σ_c x̂_c = y − b (Eq. 3).
`collect_gram` instead sums x̂x̂ᵀ over *every* filter and position, streaming.
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from numbers import Integral

import torch
from torch import nn

from thinet.models import find_layer, out_channels_of
from thinet.sampling._capture import consumer_inputs, resolve_device
from thinet.sampling._consumers import Consumer, make_consumer
from thinet.types import LayerPair, PruningError

def consumer_of(model: nn.Module, pair: LayerPair, grouped: bool = False, window: tuple[int, int] | None = None,
                span: tuple[int, int] | None = None) -> tuple[nn.Module, Consumer, slice]:
    """The consumer module, its sampler and the columns of x̂ that are the producer's channels.

    `window` = (offset, width): the consumer reads `width` channels (a concatenation), the
    producer's from `offset` on; `span` = (first, count): of the producer's channels it reads only
    first .. first+count-1 (a split), so the columns are count wide. x̂ is formed for all `width`
    and sliced.
    """
    channels = out_channels_of(find_layer(model, pair.producer, "producer"), pair.producer, "producer")
    if span is not None:
        first, channels = span
        if not (0 <= first and first + channels <= out_channels_of(find_layer(model, pair.producer, "producer"))):
            raise PruningError(f"consumer {pair.consumer!r}: span {span} lies outside the channels of "
                               f"{pair.producer!r}")
    module = find_layer(model, pair.consumer, "consumer")
    offset, width = window if window is not None else (0, channels)
    if not 0 <= offset <= width - channels:
        raise PruningError(f"consumer {pair.consumer!r}: the {channels} channels of {pair.producer!r} at offset "
                           f"{offset} do not fit in its {width} input channels")
    sampler = make_consumer(module, pair.consumer, width, grouped=grouped)
    return module, sampler, slice(offset, offset + channels)


def collect_samples(model: nn.Module, pair: LayerPair, batches: Iterable | torch.Tensor, *,
                    samples_per_image: int = 10, seed: int = 0, device: torch.device | str | None = None,
                    grouped: bool = False, window: tuple[int, int] | None = None,
                    span: tuple[int, int] | None = None) -> torch.Tensor:
    """The m×C float32 sample matrix X̂ for `pair` (m = images × `samples_per_image`).

    Rows of image n are rows n·L … n·L+L−1. Forward passes stop at the consumer.
    Indices are drawn on CPU from `seed`, so CPU and CUDA runs pick the same samples.
    `grouped=True` accepts a grouped consumer conv: L samples per image *per group*
    (the channel units of `thinet.surgery.find_unit`). `window` = (offset, width) for a
    consumer reading the producer's channels inside a concatenation of `width` channels:
    the columns are the producer's, and ŷ = X̂·1 their share of the consumer's output. `span` =
    (first, count) for a consumer that a split gives only the producer's channels first .. first+count-1:
    their columns are sampled, the others are zero (the consumer does not read them).

    >>> import torch
    >>> from torch import nn
    >>> from thinet.types import LayerPair
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3))
    >>> x_hat = collect_samples(net, LayerPair("0", "2"), torch.randn(6, 3, 8, 8), samples_per_image=5)
    >>> x_hat.shape
    torch.Size([30, 8])
    """
    module, consumer, columns = consumer_of(model, pair, grouped, window, span)
    if isinstance(samples_per_image, bool) or not isinstance(samples_per_image, Integral) or samples_per_image < 1:
        raise PruningError(f"layer {pair.producer!r}: samples_per_image must be a positive int, got {samples_per_image!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise PruningError(f"layer {pair.producer!r}: seed must be an int, got {seed!r}")
    dev = resolve_device(model, module, pair.consumer, device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    parts = []
    # closing(): the hook comes off even when a batch raises, not only when the traceback dies.
    with torch.no_grad(), closing(consumer_inputs(model, module, pair.consumer, batches, dev)) as inputs:
        for x in inputs:
            index = consumer.draw(x, int(samples_per_image), gen)
            x_hat = consumer.samples(x, *(i.to(x.device) for i in index))
            parts.append(x_hat.reshape(-1, consumer.num_channels)[:, columns].float())
    if not parts:
        raise PruningError(f"layer {pair.producer!r}: no images in batches")
    x_hat = torch.cat(parts)
    if span is None:
        return x_hat
    full = x_hat.new_zeros(x_hat.shape[0], out_channels_of(find_layer(model, pair.producer, "producer")))
    full[:, span[0]:span[0] + span[1]] = x_hat
    return full


def collect_gram(model: nn.Module, pair: LayerPair, batches: Iterable | torch.Tensor, *,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """G = Σ x̂x̂ᵀ (C×C, float64, on CPU) over every image, consumer filter and output position.

    Equals X̂ᵀX̂ of the exhaustive sample set without forming it: the patch covariance
    P = Σ_p u(p)u(p)ᵀ is accumulated and G[c,c'] = Σ_{a,b} (WᵀW ⊙ P)[(c,a),(c',b)].
    Feed it to `thinet.selection.select_from_gram`.

    >>> import torch
    >>> from torch import nn
    >>> from thinet.types import LayerPair
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3))
    >>> collect_gram(net, LayerPair("0", "2"), torch.randn(6, 3, 8, 8)).shape
    torch.Size([8, 8])
    """
    module, consumer, _ = consumer_of(model, pair)
    consumer.check_streaming()
    dev = resolve_device(model, module, pair.consumer, device)
    state = None
    with torch.no_grad(), closing(consumer_inputs(model, module, pair.consumer, batches, dev)) as inputs:
        for x in inputs:
            state = consumer.accumulate(x, state)
        if state is None:
            raise PruningError(f"layer {pair.producer!r}: no images in batches")
        return consumer.finish(state).cpu()
