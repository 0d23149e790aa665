"""Per-filter samples of §3.2.1 for gcos: at sampled output positions, each input channel's contribution
x̂_c (Eq. 2) to *every* filter d, kept as one Gram matrix per filter, G_d = X̂_dᵀX̂_d (D×C×C).

ThiNet draws one (filter, position) per sample because its channel choice is shared by all filters;
gcos assigns each filter to a group, so it needs each filter's own statistics: per image it draws
`samples_per_image` output positions (uniformly, from `seed`, on CPU as ThiNet does) and takes the
window there for all D filters. Only the windows are gathered, never the whole unfolded input.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from thinet.criteria import consumer_input_hook, eval_mode
from thinet.models import find_layer
from thinet.types import PruningError

# Largest D·C² Gram tensor held (elements; 1 GiB in float64): VGG-16's 512×512 convs just fit.
MAX_GRAM_ELEMENTS = 1 << 27
# Rough cap on the elements of one x̂ block (samples × D × C) formed at a time.
_CHUNK_ELEMENTS = 1 << 24


def _images(batch: Any) -> torch.Tensor:
    images = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not isinstance(images, torch.Tensor):
        raise PruningError(f"a batch must be a tensor or an (images, labels) pair, got {type(batch).__name__}")
    return images


def dense_conv(model: nn.Module, layer: str) -> nn.Conv2d:
    """The layer if it is an ungrouped Conv2d, else PruningError naming it."""
    conv = find_layer(model, layer, "layer")
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
        detail = f" with groups={conv.groups}" if isinstance(conv, nn.Conv2d) else ""
        raise PruningError(f"layer {layer!r} is {type(conv).__name__}{detail}; gcos groups an ungrouped nn.Conv2d")
    return conv


def _windows(conv: nn.Conv2d, x: torch.Tensor, per_image: int, gen: torch.Generator) -> torch.Tensor:
    """(N·L)×C×taps input windows at `per_image` random output positions per image."""
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    padded = F.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    out_h = (padded.shape[2] - dh * (kh - 1) - 1) // sh + 1
    out_w = (padded.shape[3] - dw * (kw - 1) - 1) // sw + 1
    rows = torch.randint(out_h, (x.shape[0], per_image), generator=gen).to(x.device)
    cols = torch.randint(out_w, (x.shape[0], per_image), generator=gen).to(x.device)
    win_rows = (rows * sh).unsqueeze(-1) + torch.arange(kh, device=x.device) * dh  # N×L×Kh
    win_cols = (cols * sw).unsqueeze(-1) + torch.arange(kw, device=x.device) * dw  # N×L×Kw
    images = torch.arange(x.shape[0], device=x.device).view(-1, 1, 1, 1)
    windows = padded[images, :, win_rows.unsqueeze(-1), win_cols.unsqueeze(-2)]  # N×L×Kh×Kw×C
    return windows.reshape(-1, kh * kw, x.shape[1]).transpose(1, 2)


def collect_filter_grams(model: nn.Module, layer: str, batches: Iterable[Any] | torch.Tensor, *,
                         samples_per_image: int = 10, seed: int = 0) -> torch.Tensor:
    """G (D×C×C, float64, CPU): G[d] = Σ over sampled positions of x̂_d x̂_dᵀ, x̂_dc = Σ_k W[d,c,k]·x[c,k].

    The forward passes run in eval mode, without gradients, on the model's device.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3))
    >>> collect_filter_grams(net, "2", torch.randn(3, 1, 8, 8), samples_per_image=5).shape
    torch.Size([6, 4, 4])
    """
    conv = dense_conv(model, layer)
    d, c = conv.out_channels, conv.in_channels
    if d * c * c > MAX_GRAM_ELEMENTS:
        raise PruningError(f"layer {layer!r}: gcos statistics need {d}×{c}×{c} per-filter Gram entries, over "
                           f"the {MAX_GRAM_ELEMENTS} element limit")
    if isinstance(samples_per_image, bool) or not isinstance(samples_per_image, int) or samples_per_image < 1:
        raise PruningError(f"layer {layer!r}: samples_per_image must be a positive int, got {samples_per_image!r}")
    if isinstance(batches, torch.Tensor):
        batches = [batches]
    device = conv.weight.device
    weight = conv.weight.detach().to(torch.float64).reshape(d, c, -1)  # D×C×taps
    gen = torch.Generator().manual_seed(int(seed))
    grams = torch.zeros(d, c, c, dtype=torch.float64, device=device)
    seen_images = 0
    with eval_mode(model), torch.no_grad(), consumer_input_hook(conv) as seen:
        for batch in batches:
            seen.clear()
            model(_images(batch).to(device))
            if len(seen) != 1:
                raise PruningError(f"layer {layer!r} ran {len(seen)} times in one forward pass; expected once")
            windows = _windows(conv, seen[0].to(torch.float64), samples_per_image, gen)  # m×C×taps
            seen_images += seen[0].shape[0]
            step = max(1, _CHUNK_ELEMENTS // (d * c))
            for start in range(0, windows.shape[0], step):
                x_hat = torch.einsum("mck,dck->dmc", windows[start:start + step], weight)  # D×m×C
                grams += x_hat.transpose(1, 2) @ x_hat
    if seen_images == 0:
        raise PruningError(f"layer {layer!r}: no images in batches")
    return grams.cpu()
