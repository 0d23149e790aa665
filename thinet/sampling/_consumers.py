"""How samples x̂ (paper Eq. 2) are formed for each kind of consumer layer (layer i+1).

Each consumer kind is one small class, registered by module type:
  * `draw`: random sample indices for a batch (on CPU, from the caller's generator);
  * `samples`: x̂ for those indices, gathering only the sampled windows;
  * `accumulate` / `finish`: the exhaustive Gram matrix Σ x̂x̂ᵀ over every
    filter and position, through the patch covariance P = Σ_p u(p)u(p)ᵀ.

A Linear consumer reading a flattened C×H×W map (VGG fc6) gives channel c the S
contiguous inputs c·S … c·S+S−1; it is a 1-position "convolution" with S taps.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from thinet.types import PruningError

# Largest patch covariance (elements) held in memory (1 GiB in float64).
MAX_COV_ELEMENTS = 1 << 27
# Rough cap on elements of one temporary while gathering or unfolding.
_CHUNK_ELEMENTS = 1 << 24

_CONSUMERS: dict[type, Callable[..., "Consumer"]] = {}


def register_consumer(kind: type) -> Callable:
    def add(cls: Callable) -> Callable:
        _CONSUMERS[kind] = cls
        return cls
    return add


class Consumer:
    """Interface of a consumer kind; see the module docstring."""

    num_channels: int

    def draw(self, x: torch.Tensor, per_image: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def samples(self, x: torch.Tensor, *index: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def patches(self, x: torch.Tensor, *index: torch.Tensor) -> torch.Tensor:
        """The inputs the consumer reads at the positions `draw` gave (N×L×C×taps), the filter ignored:
        Σ_{c,k} W[d,c,k]·patches[n,l,c,k] is filter d's output minus its bias there (Channel Pruning's X)."""
        raise NotImplementedError

    def check_streaming(self) -> None:
        """Raise PruningError, before any forward pass, if `accumulate` cannot run for this layer."""

    def accumulate(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def finish(self, state: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def make_consumer(module: nn.Module, name: str, num_channels: int, *, grouped: bool = False) -> Consumer:
    """The registered Consumer for `module` (raises PruningError naming `name` for other kinds).

    `grouped=True` accepts a grouped convolution (a channel unit's consumer, `select_coupled`).
    """
    # The exact type first, then subclasses (timm's Linear is an nn.Linear with a dtype cast).
    kind = type(module) if type(module) in _CONSUMERS else \
        next((k for k in _CONSUMERS if isinstance(module, k)), None)
    if kind is not None:
        cls = _CONSUMERS[kind]
        return cls(module, name, num_channels, grouped=grouped) if grouped else cls(module, name, num_channels)
    known = ", ".join(k.__name__ for k in _CONSUMERS)
    raise PruningError(f"consumer {name!r} is a {type(module).__name__}; ThiNet sampling supports {known}")


def _working(t: torch.Tensor) -> torch.Tensor:
    """Half precision inputs are promoted so that sums over channels stay accurate."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _rows_per_chunk(row_elements: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, row_elements))


def gram_from_cov(weight_flat: torch.Tensor, cov: torch.Tensor, num_channels: int, taps: int) -> torch.Tensor:
    """G[c,c'] = Σ_{a,b} (WᵀW ⊙ P)[(c,a),(c',b)] with W = `weight_flat` (D × C·taps), in float64.

    Row blocks of WᵀW are formed a few channels at a time so only P is held whole.
    """
    w = weight_flat.to(cov.device, torch.float64)
    gram = torch.empty(num_channels, num_channels, dtype=torch.float64, device=cov.device)
    step = _rows_per_chunk(taps * cov.shape[1])
    for c0 in range(0, num_channels, step):
        c1 = min(num_channels, c0 + step)
        rows = slice(c0 * taps, c1 * taps)
        block = (w[:, rows].T @ w) * cov[rows]
        gram[c0:c1] = block.view(c1 - c0, taps, num_channels, taps).sum((1, 3))
    return gram


@register_consumer(nn.Conv2d)
class ConvConsumer(Consumer):
    """x̂_c = Σ_k W[d,c,k]·x[c,k] over the K_h×K_w window of output position (oh, ow).

    A grouped convolution (`grouped=True`) is drawn group by group: each image gives
    `per_image` samples of every group, and filter d of group g has x̂_c = 0 for the
    channels c outside g, which it does not read (a block-diagonal Gram matrix).
    """

    def __init__(self, conv: nn.Conv2d, name: str, num_channels: int, *, grouped: bool = False) -> None:
        if conv.groups != 1 and not grouped:
            raise PruningError(f"consumer {name!r} has groups={conv.groups}; ThiNet sampling needs groups=1")
        if conv.in_channels != num_channels:
            raise PruningError(f"consumer {name!r} has in_channels={conv.in_channels} but the producer has "
                               f"{num_channels} output channels")
        self.conv, self.name, self.num_channels = conv, name, num_channels
        self.kernel = tuple(conv.kernel_size)
        self.taps = self.kernel[0] * self.kernel[1]
        self.groups = conv.groups

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise PruningError(f"consumer {self.name!r} received a {x.dim()}-D input; expected N×C×H×W")

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        self._check_input(x)
        # The same padding Conv2d applies, 'same' and non-zero padding modes included.
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        return _working(F.pad(x, conv._reversed_padding_repeated_twice, mode=mode))

    def _out_size(self, height: int, width: int) -> tuple[int, int]:
        """Output size for an unpadded height×width input."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.conv.stride, self.conv.dilation
        left, right, top, bottom = self.conv._reversed_padding_repeated_twice
        return ((height + top + bottom - dh * (kh - 1) - 1) // sh + 1,
                (width + left + right - dw * (kw - 1) - 1) // sw + 1)

    def draw(self, x: torch.Tensor, per_image: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        self._check_input(x)
        out_h, out_w = self._out_size(x.shape[2], x.shape[3])
        shape = (x.shape[0], per_image * self.groups)
        filters_per_group = self.conv.out_channels // self.groups
        filters = torch.randint(filters_per_group, shape, generator=gen)
        if self.groups > 1:  # column j samples group j // per_image
            filters += (torch.arange(shape[1]) // per_image) * filters_per_group
        rows = torch.randint(out_h, shape, generator=gen)
        cols = torch.randint(out_w, shape, generator=gen)
        return filters, rows, cols

    def samples(self, x: torch.Tensor, filters: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """x̂ of shape N×L×C for filter `filters[n,l]` at output position (`rows`, `cols`)[n,l].

        Formed group by group (the columns `draw` gave each group, over that group's channels; x̂ is
        zero on the others) and a few columns at a time, so memory stays bounded at many samples.
        """
        padded = self._padded(x)
        out = padded.new_zeros(x.shape[0], filters.shape[1], self.num_channels)
        width, per_group = self.num_channels // self.groups, filters.shape[1] // self.groups
        weight = _working(self.conv.weight)  # D×(C/groups)×Kh×Kw: filter d reads its own group's channels
        step = _rows_per_chunk(x.shape[0] * self.taps * width)
        for g in range(self.groups):
            channels = slice(g * width, (g + 1) * width)
            for l0 in range(g * per_group, (g + 1) * per_group, step):
                l1 = min(l0 + step, (g + 1) * per_group)
                out[:, l0:l1, channels] = self._window_samples(padded[:, channels], weight, filters[:, l0:l1],
                                                               rows[:, l0:l1], cols[:, l0:l1])
        return out

    def _window_samples(self, padded: torch.Tensor, weight: torch.Tensor, filters: torch.Tensor, rows: torch.Tensor,
                        cols: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.conv.stride, self.conv.dilation
        dev = padded.device
        win_rows = (rows * sh).unsqueeze(-1) + torch.arange(kh, device=dev) * dh  # N×L×Kh
        win_cols = (cols * sw).unsqueeze(-1) + torch.arange(kw, device=dev) * dw  # N×L×Kw
        images = torch.arange(padded.shape[0], device=dev).view(-1, 1, 1, 1)
        windows = padded[images, :, win_rows.unsqueeze(-1), win_cols.unsqueeze(-2)]  # N×L×Kh×Kw×C
        return torch.einsum("nlhwc,nlchw->nlc", windows, weight[filters])  # weight[filters]: N×L×C×Kh×Kw

    def patches(self, x: torch.Tensor, filters: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The input window of output position (`rows`, `cols`)[n,l] as N×L×C×(Kh·Kw), taps in the
        weight's (kh, kw) order and the padding Conv2d applies; `filters` is ignored (every filter reads
        the same window). Needs groups == 1."""
        if self.groups != 1:
            raise PruningError(f"consumer {self.name!r} has groups={self.groups}; patches need groups=1")
        padded = self._padded(x)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.conv.stride, self.conv.dilation
        dev = padded.device
        rows, cols = rows.to(dev), cols.to(dev)
        out = padded.new_empty(x.shape[0], rows.shape[1], self.num_channels, self.taps)
        images = torch.arange(padded.shape[0], device=dev).view(-1, 1, 1, 1)
        step = _rows_per_chunk(x.shape[0] * self.taps * self.num_channels)
        for l0 in range(0, rows.shape[1], step):
            win_rows = (rows[:, l0:l0 + step] * sh).unsqueeze(-1) + torch.arange(kh, device=dev) * dh  # N×l×Kh
            win_cols = (cols[:, l0:l0 + step] * sw).unsqueeze(-1) + torch.arange(kw, device=dev) * dw  # N×l×Kw
            windows = padded[images, :, win_rows.unsqueeze(-1), win_cols.unsqueeze(-2)]  # N×l×Kh×Kw×C
            out[:, l0:l0 + step] = windows.permute(0, 1, 4, 2, 3).reshape(x.shape[0], -1, self.num_channels,
                                                                           self.taps)
        return out

    def check_streaming(self) -> None:
        if self.groups != 1:
            raise PruningError(f"consumer {self.name!r} has groups={self.groups}; streaming Gram needs groups=1")
        width = self.num_channels * self.taps
        if width * width > MAX_COV_ELEMENTS:
            raise PruningError(f"consumer {self.name!r}: streaming Gram needs a {width}×{width} patch covariance, "
                               f"over the {MAX_COV_ELEMENTS} element limit; use collect_samples instead")

    def accumulate(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        width = self.num_channels * self.taps
        padded = self._padded(x)
        cov = torch.zeros(width, width, dtype=torch.float64, device=x.device) if state is None else state
        out_h, out_w = self._out_size(x.shape[2], x.shape[3])
        step = _rows_per_chunk(width * out_h * out_w)
        for n0 in range(0, padded.shape[0], step):
            patches = F.unfold(padded[n0:n0 + step], self.kernel, dilation=self.conv.dilation,
                               stride=self.conv.stride)  # n×(C·K²)×P, channel-major like the weight
            flat = patches.transpose(1, 2).reshape(-1, width)
            cov += (flat.T @ flat).to(torch.float64)
        return cov

    def finish(self, state: torch.Tensor) -> torch.Tensor:
        weight_flat = self.conv.weight.detach().reshape(self.conv.out_channels, -1)
        return gram_from_cov(weight_flat, state, self.num_channels, self.taps)


@register_consumer(nn.Linear)
class LinearConsumer(Consumer):
    """x̂_c = Σ_s W[d, c·S+s]·x[c·S+s] for output neuron d (S = in_features / C)."""

    def __init__(self, linear: nn.Linear, name: str, num_channels: int) -> None:
        if linear.in_features % num_channels:
            raise PruningError(f"consumer {name!r} has in_features={linear.in_features}, not a multiple of the "
                               f"producer's {num_channels} output channels")
        self.linear, self.name, self.num_channels = linear, name, num_channels
        self.taps = linear.in_features // num_channels

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise PruningError(f"consumer {self.name!r} received a {x.dim()}-D input; a Linear consumer needs N×F")
        return _working(x)

    def draw(self, x: torch.Tensor, per_image: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        self._features(x)
        return (torch.randint(self.linear.out_features, (x.shape[0], per_image), generator=gen),)

    def samples(self, x: torch.Tensor, neurons: torch.Tensor) -> torch.Tensor:
        """x̂ of shape N×L×C for output neuron `neurons[n,l]`."""
        feats = self._features(x)
        n, per_image = neurons.shape
        c, s = self.num_channels, self.taps
        weight = _working(self.linear.weight)
        out = torch.empty(n, per_image, c, dtype=feats.dtype, device=feats.device)
        step = _rows_per_chunk(per_image * self.linear.in_features)
        for n0 in range(0, n, step):
            w = weight[neurons[n0:n0 + step]].view(-1, per_image, c, s)
            out[n0:n0 + step] = (w * feats[n0:n0 + step].view(-1, 1, c, s)).sum(-1)
        return out

    def patches(self, x: torch.Tensor, neurons: torch.Tensor) -> torch.Tensor:
        """The input as N×L×C×S (channel c reads columns c·S … c·S+S−1): the image's one "position",
        repeated for each of its L draws; `neurons` is ignored (every neuron reads the whole input)."""
        feats = self._features(x)
        return feats.view(feats.shape[0], 1, self.num_channels, self.taps).expand(-1, neurons.shape[1], -1, -1)

    def _cov_fits(self) -> bool:
        return self.linear.in_features ** 2 <= MAX_COV_ELEMENTS

    def accumulate(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        feats = self._features(x)
        if self._cov_fits():
            width = self.linear.in_features
            cov = torch.zeros(width, width, dtype=torch.float64, device=x.device) if state is None else state
            return cov + (feats.T @ feats).to(torch.float64)
        # F² too large to hold (e.g. VGG fc6, F = 25088): form x̂ for a few neurons at a time instead.
        c, s = self.num_channels, self.taps
        gram = torch.zeros(c, c, dtype=torch.float64, device=x.device) if state is None else state
        weight = _working(self.linear.weight).view(-1, c, s)
        step = _rows_per_chunk(feats.shape[0] * c * s)
        per_channel = feats.view(-1, c, s).transpose(0, 1)  # C×N×S
        for d0 in range(0, weight.shape[0], step):
            x_hat = torch.bmm(per_channel, weight[d0:d0 + step].permute(1, 2, 0))  # C×N×d
            flat = x_hat.reshape(c, -1)
            gram += (flat @ flat.T).to(torch.float64)
        return gram

    def finish(self, state: torch.Tensor) -> torch.Tensor:
        if not self._cov_fits():
            return state
        return gram_from_cov(self.linear.weight.detach(), state, self.num_channels, self.taps)
