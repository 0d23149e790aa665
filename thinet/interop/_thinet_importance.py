"""ThiNet's channel selection as a Torch-Pruning importance: `ThiNetImportance`.

Algorithm 1 (§3.2.2) removes channels greedily, and the order does not depend on how many are
removed: each step adds to the removed set T the channel that minimises Eq. 6 given the channels
already in T (`thinet.selection.greedy_remove`), so the set removed at keep ratio r is the first
C − num_kept(C, r) channels of the full removal order, for every r (the sets are nested). The score of
channel c is therefore its position in that order, counted from 1: the channel removed first scores
1, the one removed last C. The n_keep highest-scored channels are exactly those criterion `thinet`
keeps for the layer pair with the same images and seed, at every keep ratio, which is what
MetaPruner's local pruning (the n lowest scores of each group are cut) needs.

For a group, `ThiNetImportance`:

* takes the model from the group's dependency graph (`group._DG.model`; Torch-Pruning and the suite's
  `thinet.surgery.pruning_group` both set it), else from `model=` given to the constructor;
* takes the producer from the group's root (`group[0].dep.target.module`, which must be cut on its
  output channels) and its name from the model's `named_modules`;
* finds the consumer with the suite's own rules: the conv/linear layers the producer's channels reach
  in `thinet.surgery.build_graph`'s graph of the model (traced on `example_inputs`, else two selection
  images; kept while the model's modules and shapes stay the same), checked by
  `thinet.surgery.check_pair`. Channels that reach several consumers, a residual add, a concatenation
  or the model output are refused with a PruningError naming the layer (leave such layers out with
  MetaPruner's `ignored_layers`);
* samples X̂ exactly as criterion `thinet` does for `CriterionContext(model, pair, batches, keep_ratio,
  seed=seed, samples_per_image=samples_per_image)`: the same `seed` for every layer, as a plain context
  gets it. (`thinet.prune_chain` derives one seed per step instead, so its choices differ.)

ŵ (Eq. 7) is not part of an importance: MetaPruner only removes channels. See docs/torch-pruning.md.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch_pruning.pruner.importance import Importance

from thinet.types import LayerPair, PruningError


class ThiNetImportance(Importance):
    """ThiNet's greedy removal order (Algorithm 1) as a per-channel importance for Torch-Pruning.

    `batches`: the selection images (a list of `(images, labels)` or of image tensors, or a DataLoader;
    re-iterable), `samples_per_image` and `seed` as for criterion `thinet`; `model=` when the groups
    scored carry no dependency graph; `example_inputs=` to trace the model with (default: two selection
    images); `device` as `CriterionContext`'s.

    >>> import torch
    >>> from torch import nn
    >>> from thinet.surgery import build_graph, pruning_group
    >>> from thinet.surgery import out_pruning_fn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3)).eval()
    >>> images = [torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))]
    >>> group = pruning_group(build_graph(net, images[0]), net[0], out_pruning_fn(net[0]), list(range(8)))
    >>> scores = ThiNetImportance(images, samples_per_image=4)(group)
    >>> sorted(scores.tolist())
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    """

    def __init__(self, batches: Iterable[Any] | torch.Tensor, samples_per_image: int = 10, seed: int = 0, *,
                 model: nn.Module | None = None, example_inputs: torch.Tensor | None = None,
                 device: torch.device | str | None = None) -> None:
        if isinstance(batches, torch.Tensor):
            batches = [batches]  # one batch of images, as CriterionContext takes it
        if iter(batches) is batches:
            raise PruningError(f"ThiNetImportance: batches must be re-iterable (a DataLoader or a list), got the "
                               f"one-shot {type(batches).__name__}")
        if isinstance(samples_per_image, bool) or not isinstance(samples_per_image, int) or samples_per_image < 1:
            raise PruningError(f"ThiNetImportance: samples_per_image {samples_per_image!r} must be a positive int")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise PruningError(f"ThiNetImportance: seed {seed!r} must be an int")
        self.batches = batches
        self.samples_per_image = samples_per_image
        self.seed = seed
        self.model = model
        self.example_inputs = example_inputs
        self.device = device
        self._graph_key: tuple | None = None
        self._graph: Any = None

    # ------------------------------------------------------------ what Torch-Pruning calls

    def __call__(self, group: Any) -> torch.Tensor:
        """One float score per channel of the group's root (`group[0]`'s indices, in their order)."""
        model = self._model_of(group)
        root = group[0].dep.target.module
        name = self._name_of(model, root)
        pair = self.pair_of(model, name, group[0].dep.handler)
        scores = self.channel_scores(model, pair)
        idxs = torch.as_tensor(list(group[0].idxs), dtype=torch.long)
        return scores[idxs]

    # ------------------------------------------------------------ the parts, usable alone

    def channel_scores(self, model: nn.Module, pair: LayerPair) -> torch.Tensor:
        """Position of every producer channel in Algorithm 1's full removal order, from 1 (removed first)
        to C (removed last), as float32."""
        order = self.removal_order(model, pair)
        scores = torch.empty(order.numel(), dtype=torch.float32)
        scores[order] = torch.arange(1, order.numel() + 1, dtype=torch.float32)
        return scores

    def removal_order(self, model: nn.Module, pair: LayerPair) -> torch.Tensor:
        """Every channel of `pair.producer` in the order Algorithm 1 removes them, on the samples criterion
        `thinet` draws for `CriterionContext(model, pair, batches, seed=seed, samples_per_image=...)`."""
        from thinet.criteria import CriterionContext
        from thinet.sampling import collect_samples
        from thinet.selection import checked_gram, greedy_remove

        ctx = CriterionContext(model, pair, self.batches, keep_ratio=1.0, seed=self.seed,
                               samples_per_image=self.samples_per_image, device=self.device)
        x_hat = collect_samples(ctx.model, ctx.pair, ctx.batches, samples_per_image=ctx.samples_per_image,
                                seed=ctx.seed, device=ctx.device)
        if x_hat.shape[0] < ctx.num_channels:
            raise PruningError(f"layer {pair.producer!r}: {x_hat.shape[0]} samples for {ctx.num_channels} channels; "
                               "ThiNet needs at least as many samples as channels (raise samples_per_image or "
                               "give more images)")
        # The Gram matrix exactly as select_channels forms it, so that the order is the criterion's.
        _, gram = checked_gram(x_hat, 1.0, pair.producer)
        return greedy_remove(gram, ctx.num_channels)

    def pair_of(self, model: nn.Module, producer: str, handler: Any = None) -> LayerPair:
        """(producer, its one consumer) by the suite's rules, or PruningError naming the layer."""
        from thinet.surgery import check_pair, coupling_of

        if handler is not None and not _cuts_outputs(handler):
            raise PruningError(f"layer {producer!r}: the group's root is cut by "
                               f"{getattr(handler, '__name__', type(handler).__name__)}; ThiNetImportance scores the "
                               "output channels of an nn.Conv2d (groups=1) or nn.Linear producer")
        graph, example = self._suite_graph(model)
        coupling = coupling_of(graph, producer)
        if not coupling.consumers:
            reached = "; ".join(coupling.problems) or "nothing"
            raise PruningError(f"layer {producer!r}: its output channels reach no conv/linear consumer (they reach "
                               f"{reached}); ThiNet selects a layer's channels from the next layer's input, so it "
                               "cannot score this one: pass it in MetaPruner's ignored_layers")
        pair = LayerPair(producer, coupling.consumers[0])
        try:
            check_pair(model, pair, example, graph=graph)
        except PruningError as err:
            raise PruningError(f"layer {producer!r}: ThiNetImportance scores only a plain ThiNet pair, a layer whose "
                               f"channels one conv/linear layer consumes ({err}); pass it in MetaPruner's "
                               "ignored_layers") from None
        return pair

    # ------------------------------------------------------------ helpers

    def _model_of(self, group: Any) -> nn.Module:
        graph = getattr(group, "_DG", None)
        model = getattr(graph, "model", None) if graph is not None else None
        if model is None:
            model = self.model
        elif self.model is not None and model is not self.model:
            raise PruningError("ThiNetImportance: the group belongs to another model than the one given as model=")
        if model is None:
            raise PruningError("ThiNetImportance: the group carries no dependency graph with a model; pass model= "
                               "to ThiNetImportance")
        return model

    @staticmethod
    def _name_of(model: nn.Module, module: nn.Module) -> str:
        for name, candidate in model.named_modules():
            if candidate is module and name:
                return name
        raise PruningError(f"ThiNetImportance: the group's root {type(module).__name__} is not a submodule of the "
                           "model")

    def _suite_graph(self, model: nn.Module) -> tuple[Any, torch.Tensor]:
        """The suite's dependency graph of `model` and the inputs it was traced on (rebuilt when the model's
        modules or parameter shapes change, e.g. after a pruning step)."""
        from thinet.sampling import first_images
        from thinet.surgery import build_graph

        key = (id(model), tuple((id(m), tuple(p.shape)) for m in model.modules()
                                for p in m.parameters(recurse=False)))
        if self.example_inputs is not None:
            example = self.example_inputs
        else:
            param = next(model.parameters(), None)
            device = self.device if self.device is not None else (param.device if param is not None else "cpu")
            example = first_images(self.batches, 2).to(device)
        if key != self._graph_key:
            self._graph, self._graph_key = build_graph(model, example), key
        return self._graph, example


def _cuts_outputs(handler: Any) -> bool:
    from torch_pruning.pruner import function

    return handler in (function.prune_conv_out_channels, function.prune_linear_out_channels)
