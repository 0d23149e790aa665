"""Samples taken after a cut, with the target of the unpruned model (§3.1: each layer is sampled
again once the previous one is pruned).

Within one step of a shared stream, a consumer further down reads kept channels that earlier
blocks, fed by the cut stream, have just added to: its x̂ must come from the cut model, while
the value to reconstruct stays y − b of the *unpruned* model at the same images, filters and
positions. `collect_paired_samples` returns both.
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing

import torch
from torch import nn

from thinet.sampling._capture import consumer_inputs, resolve_device
from thinet.sampling._collect import consumer_of
from thinet.types import LayerPair, PruningError


def collect_paired_samples(reference: nn.Module, model: nn.Module, pair: LayerPair, batches: Iterable | torch.Tensor,
                           *, samples_per_image: int = 10, seed: int = 0, kept_filters: torch.Tensor | None = None,
                           device: torch.device | str | None = None, grouped: bool = False,
                           windows: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None),
                           spans: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None)
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(X̂ of `pair` in `model`, ŷ of the same samples in `reference`): m×C' and m float32.

    `model` is `reference` after a cut (the producer keeps C' channels, the consumer its inputs);
    samples are drawn as `collect_samples` draws them, from the consumer of `model`.
    `kept_filters` maps the consumer's filters in `model` to those of `reference` when the cut
    also removed some of its filters (a consumer that is itself a producer of the cut channels).
    `windows`: the consumer's (offset, width) in `reference` and in `model` (`collect_samples`);
    `spans`: the producer channels (first, count) it reads in each, behind a split: X̂ then has those
    `count` columns only, and ŷ is their share.

    >>> import copy, torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3))
    >>> x_hat, y = collect_paired_samples(net, copy.deepcopy(net), LayerPair("0", "2"), torch.randn(2, 3, 8, 8),
    ...                                   samples_per_image=5)
    >>> x_hat.shape, bool(torch.allclose(x_hat.sum(1), y, atol=1e-5))
    (torch.Size([10, 8]), True)
    """
    parts = []
    (ref_module, ref_consumer, ref_columns), (module, consumer, columns) = (
        consumer_of(net, pair, grouped, window, span) for net, window, span in zip((reference, model), windows, spans))
    dev = resolve_device(model, module, pair.consumer, device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    with torch.no_grad(), closing(consumer_inputs(reference, ref_module, pair.consumer, batches, dev)) as wanted, \
            closing(consumer_inputs(model, module, pair.consumer, batches, dev)) as got:
        for x_ref, x in zip(wanted, got):
            index = consumer.draw(x, int(samples_per_image), gen)
            ref_index = index if kept_filters is None else (kept_filters[index[0]],) + tuple(index[1:])
            x_hat = consumer.samples(x, *(i.to(x.device) for i in index))
            # The target is the producer's share of the unpruned consumer's output (all of it without a concat).
            target = ref_consumer.samples(x_ref, *(i.to(x_ref.device) for i in ref_index))[..., ref_columns].sum(-1)
            parts.append((x_hat.reshape(-1, consumer.num_channels)[:, columns].float(), target.reshape(-1).float()))
    if not parts:
        raise PruningError(f"layer {pair.producer!r}: no images in batches")
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
