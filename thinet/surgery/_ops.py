"""What a channel may pass through on its way from a producer to a consumer: an allow-list.

ThiNet removes producer channel c by removing consumer input c (§3), which is exact only when
(a) consumer input c depends on producer channel c alone and (b) the consumer is linear in its
input. So every operation met between the two must be *known* to keep channels apart, and the
consumer must be a layer known to be linear: everything else is refused with its name.

* per-channel operations (`per_channel`): element-wise maps of one tensor (activations,
  dropout, casts), spatial operations (pooling, padding, interpolation, reductions over H, W);
* joins: `add`/`sub`/`mul`/`div`/`maximum`/`minimum` of two traced tensors whose channels line
  up (residual streams, squeeze-and-excitation products); an operand the trace cannot see (a
  detached or constant tensor, other than a scalar) may depend on the removed channels: refused;
* modules: BatchNorm, InstanceNorm and PReLU (per channel), parameters (per-channel scales);
* concatenations along the channels: the producer's channels continue at an offset (the unit's
  `windows`); splits and chunks along them send each segment its channels (role "split": whether
  their sizes follow the cut is `_splits.py`'s); channel slices are refused;
* consumers: `nn.Conv2d` and `nn.Linear` exactly (grouped and depthwise forms included);
  producers also weight-standardised convs (`StdConv2d`, `ScaledStdConv2d`: a removed filter
  takes its gain along, `cut_extra_parameters`), whose *inputs* cannot be cut (each filter
  is re-standardised over its remaining inputs).

>>> import torch
>>> x = torch.randn(2, 4, 3, 3, requires_grad=True)
>>> op_reason(x.softmax(1).grad_fn), op_reason(torch.relu(x).grad_fn)
('mixes channels (reduces or normalises over the channel dimension)', None)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch_pruning import ops

from thinet.surgery._splits import split_sizes

# Conv/Linear types whose inputs ThiNet may cut: linear in the input, one weight column per input.
_LINEAR_CONSUMERS = {nn.Conv2d, nn.Linear}
_LINEAR_CONSUMER_NAMES = {"timm.layers.linear.Linear"}  # an nn.Linear casting its weight to the input dtype
# Producers whose forward keeps each filter apart; the extra per-filter parameters a cut must carry.
_EXTRA_OUT_PARAMETERS = {"StdConv2d": (), "StdConv2dSame": (), "ScaledStdConv2d": ("gain",),
                         "ScaledStdConv2dSame": ("gain",)}
_STANDARDISED = "weight-standardised: cutting its inputs re-standardises every filter over the rest"

Check = Callable[[Any], "str | None"]
_PER_CHANNEL: dict[str, Check] = {}
_JOINS = {"add", "sub", "mul", "div", "maximum", "minimum"}
_SCALABLE = {"mul", "div"}  # a scalar operand the trace cannot see is harmless here


def per_channel(*names: str) -> Callable[[Check], Check]:
    """Register a check (grad_fn -> None when per-channel, else the reason) for autograd op `names`."""
    def add(check: Check) -> Check:
        for name in names:
            _PER_CHANNEL[name] = check
        return check
    return add


def _signed(dim: int) -> int:
    return dim - (1 << 64) if dim >= 1 << 63 else dim  # autograd saves negative dims as unsigned


def _rank(grad_fn: Any) -> int | None:
    for attr in ("_saved_self_sym_sizes", "_saved_result", "_saved_self"):
        value = getattr(grad_fn, attr, None)
        if isinstance(value, torch.Tensor):
            return value.dim()
        if isinstance(value, tuple):
            return len(value)
    return None


def _touches_channels(dims: Any, rank: int | None) -> bool:
    if dims is None:
        return True  # no dim: over every dimension
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if not dims:
        return True  # an empty dim list reduces over every dimension
    if rank is None:
        return any(_signed(d) in (1, 0) or _signed(d) < -2 for d in dims)
    return any(_signed(d) % rank in (0, 1) for d in dims)


@per_channel("relu", "hardtanh", "clamp", "clampmin", "clampmax", "threshold", "sigmoid", "tanh", "silu", "gelu",
             "hardswish", "hardsigmoid", "leakyrelu", "elu", "celu", "selu", "mish", "softplus", "logsigmoid",
             "neg", "abs", "exp", "log", "sqrt", "rsqrt", "pow", "reciprocal", "clone", "tocopy", "alias",
             "nativedropout", "maxpool2dwithindices", "avgpool2d", "adaptiveavgpool2d", "adaptivemaxpool2d",
             "upsamplenearest2d", "upsamplenearestexact2d", "upsamplebilinear2d", "upsamplebicubic2d",
             "reflectionpad2d", "replicationpad2d", "expand", "view", "reshapealias", "unsafeview",
             "nativebatchnorm", "cudnnbatchnorm", "miopenbatchnorm")  # batch norm called inside a module
def _elementwise(_grad_fn: Any) -> str | None:
    return None


@per_channel("mean", "sum", "amax", "amin", "std", "var", "softmax", "logsoftmax")
def _over_dims(grad_fn: Any) -> str | None:
    dims = getattr(grad_fn, "_saved_dim", ())
    return "mixes channels (reduces or normalises over the channel dimension)" \
        if _touches_channels(dims, _rank(grad_fn)) else None


@per_channel("squeeze", "unsqueeze")
def _moves_dims(grad_fn: Any) -> str | None:
    dims = getattr(grad_fn, "_saved_dim", None)
    if dims is None:  # squeeze(): every singleton dimension; fine unless the channels are one
        sizes = getattr(grad_fn, "_saved_self_sym_sizes", ())
        return "drops the channel dimension" if len(sizes) > 1 and sizes[1] == 1 else None
    dims = dims if isinstance(dims, tuple) else (dims,)
    return "moves the channel dimension" if any(_signed(d) in (0, 1) or _signed(d) < -1 for d in dims) else None


@per_channel("constantpadnd")
def _pads(grad_fn: Any) -> str | None:
    pad = tuple(getattr(grad_fn, "_saved_pad", ()))
    return "pads the channel dimension" if len(pad) > 4 and any(pad[4:6]) else None


@per_channel("asstrided")
def _restrides(grad_fn: Any) -> str | None:
    """A dense re-striding (a channels-last pooled map) keeps every element where it is; any other view is refused."""
    size, stride = tuple(getattr(grad_fn, "_saved_size", ())), tuple(getattr(grad_fn, "_saved_stride", ()))
    offset = getattr(grad_fn, "_saved_storage_offset", None)
    dense = sorted((st, sz) for sz, st in zip(size, stride) if sz > 1)
    expected = 1
    for st, sz in dense:
        if st != expected:
            return "reinterprets the tensor's memory (as_strided)"
        expected *= sz
    return None if size and not offset else "reinterprets the tensor's memory (as_strided)"


def op_name(grad_fn: Any) -> str:
    """The autograd op's short name: 'SoftmaxBackward0' -> 'softmax'."""
    name = grad_fn.name() if hasattr(grad_fn, "name") else str(grad_fn)
    name = name.rsplit("::", 1)[-1]
    stem = name.split("Backward")[0] if "Backward" in name else name
    return stem.lower()


def op_reason(grad_fn: Any) -> str | None:
    """None when the one-input op `grad_fn` is known to act on each channel apart, else why not."""
    check = _PER_CHANNEL.get(op_name(grad_fn))
    if check is None:
        return "mixes channels (not a known per-channel operation)"
    return check(grad_fn)


def _hidden_operand(grad_fn: Any, traced_inputs: int, hidden: dict | None) -> str | None:
    """Why an operand of a join that the trace does not see forbids the cut (None when it is a scalar).

    `hidden` (grad_fn -> shapes, recorded while tracing) says it for sure; without it, only the
    tensors an op saves for its backward can be looked at.
    """
    if hidden is not None:
        shapes = hidden.get(grad_fn)
        return None if not shapes else (f"combines them with a tensor the trace cannot see (detached or constant, "
                                         f"shape {shapes[0]}), whose values may depend on the removed channels")
    slots = len(getattr(grad_fn, "next_functions", ()))
    if slots <= traced_inputs:
        return None
    if op_name(grad_fn) in _SCALABLE:
        for attr in ("_saved_other", "_saved_self"):
            other = getattr(grad_fn, attr, None)
            if isinstance(other, torch.Tensor):
                if other.numel() == 1:
                    return None
                return (f"combines them with a tensor the trace cannot see (detached or constant, shape "
                        f"{tuple(other.shape)}), whose values may depend on the removed channels")
    return "combines them with a tensor the trace cannot see (detached or constant)"


@dataclass(frozen=True)
class Verdict:
    """How a graph node treats the channels flowing through it.

    `role`: "layer" (a conv/linear module: a producer, consumer or depthwise conv), "carry"
    (per channel), "join" (two traced tensors whose channels line up), "split" (a split along the
    channels) or "refuse";
    `family` groups refusals for plan listings; `reason` says why.
    """

    role: str
    family: str = ""
    reason: str = ""


_MODULE_ROLES = {ops.OPTYPE.BN: "carry", ops.OPTYPE.IN: "carry", ops.OPTYPE.PRELU: "carry",
                 ops.OPTYPE.PARAMETER: "carry", ops.OPTYPE.CONV: "layer", ops.OPTYPE.DEPTHWISE_CONV: "layer",
                 ops.OPTYPE.LINEAR: "layer"}
_FAMILIES = {ops.OPTYPE.UNBIND: ("split", "unbinds them into single channels"),
             ops.OPTYPE.LN: ("norm", "normalises across channels"),
             ops.OPTYPE.GN: ("norm", "normalises across channels"),
             ops.OPTYPE.OUTPUT: ("output", "is the model's Output, whose channels cannot be cut")}


def _leaves(node: Any) -> list[Any]:
    """The leaf tensors (parameters, the model input) an op of the trace reads directly."""
    return [getattr(f, "variable", None) for f, _ in getattr(node.grad_fn, "next_functions", ())
            if f is not None and hasattr(f, "variable")]


def _is_parameter_path(node: Any, depth: int = 3) -> bool:
    """A node computed from parameters alone (a per-channel scale maybe reshaped, a Linear's transposed
    weight): not a second stream."""
    if node.type == ops.OPTYPE.PARAMETER:
        return True
    if not node.inputs and node.type in (ops.OPTYPE.RESHAPE, ops.OPTYPE.ELEMENTWISE, ops.OPTYPE.EXPAND):
        leaves = _leaves(node)
        return bool(leaves) and all(isinstance(v, nn.Parameter) for v in leaves)
    return depth > 0 and len(node.inputs) == 1 and node.type in (ops.OPTYPE.RESHAPE, ops.OPTYPE.ELEMENTWISE) \
        and _is_parameter_path(node.inputs[0], depth - 1)


def _concat(node: Any, unmapped: dict | None) -> Verdict:
    """A concatenation along the channels carries them at an offset (Torch-Pruning maps the indices);
    along another axis it joins tensors whose channels line up."""
    dim = _signed(getattr(node.grad_fn, "_saved_dim", 1))
    if dim >= 2:
        return Verdict("join")
    if dim == 1 and node.module.offsets is not None and not (unmapped and node in unmapped):
        return Verdict("carry")
    return Verdict("refuse", "concat", "concatenates them along an axis whose channel offsets cannot be followed")


def _split(node: Any, unmapped: dict | None) -> Verdict:
    """A split along the channels sends each segment its own channels (role "split": the unit checks that
    its sizes can follow the cut, `_splits.split_plan`); along another axis it keeps them where they are."""
    if unmapped and node in unmapped:
        return Verdict("refuse", "split", f"splits them in a way the channels cannot be followed ({unmapped[node]})")
    found = split_sizes(node.grad_fn)
    if found is None:
        return Verdict("refuse", "split", "splits them, but the trace does not record the segment sizes")
    if found[0] != 1:
        return Verdict("carry")
    return Verdict("split", "split", "splits them into segments (a plain pair cannot cut through a split; "
                   "--strategy auto cuts it as a channel unit)")


def classify(node: Any, unmapped: dict | None = None, hidden: dict | None = None) -> Verdict:
    """The `Verdict` for a Torch-Pruning graph node met on a producer's channels.

    `unmapped`: nodes whose channel index mapping the trace could not infer (node -> error);
    `hidden`: ops with operands the trace cannot see (grad_fn -> shapes, `build_graph`).
    """
    role = _MODULE_ROLES.get(node.type)
    if role is not None:
        return Verdict(role)
    if node.type == ops.OPTYPE.CONCAT:
        return _concat(node, unmapped)
    if node.type == ops.OPTYPE.SPLIT:
        return _split(node, unmapped)
    if node.type in _FAMILIES:
        family, reason = _FAMILIES[node.type]
        return Verdict("refuse", family, reason)
    if unmapped and node in unmapped:
        return Verdict("refuse", "mixing", f"reshapes the channel dimension in a way the trace cannot map "
                       f"({unmapped[node]}; a channel shuffle?)")
    if node.type == ops.OPTYPE.SLICE:
        dim = _signed(node.module.dim)
        rank = _rank(node.grad_fn)
        on_channels = (dim % rank == 1) if rank else dim == 1
        return Verdict("refuse", "concat", "slices the channel dimension") if on_channels else Verdict("carry")
    grad_fn = node.grad_fn
    if _is_parameter_path(node):
        return Verdict("carry")  # a weight's transpose or a per-channel scale: no data flows through it
    if any(not isinstance(v, nn.Parameter) for v in _leaves(node)):
        return Verdict("refuse", "other", "reads the model input itself, whose channels cannot be cut")
    if node.type not in (ops.OPTYPE.ELEMENTWISE, ops.OPTYPE.RESHAPE, ops.OPTYPE.EXPAND) or grad_fn is None:
        return Verdict("refuse", "other", f"is a {type(node.module).__name__.lstrip('_')}, not known to keep "
                       "channels apart")
    name = op_name(grad_fn)
    streams = {id(i) for i in node.inputs if not _is_parameter_path(i)}  # x * x is one stream
    if name in _JOINS:
        invisible = _hidden_operand(grad_fn, len(node.inputs), hidden)
        if invisible:
            return Verdict("refuse", "detached", invisible)
        return Verdict("join") if len(streams) > 1 else Verdict("carry")
    reason = op_reason(grad_fn)
    if reason is None and len(node.inputs) > 1 and len({id(i) for i in node.inputs}) > 1:
        reason = "combines them with another tensor in an operation that is not a known join"
    return Verdict("carry") if reason is None else Verdict("refuse", "mixing", reason)


def consumer_refusal(module: nn.Module) -> str | None:
    """None when the inputs of `module` may be cut (a known linear layer), else why not."""
    kind = type(module)
    if kind in _LINEAR_CONSUMERS or f"{kind.__module__}.{kind.__qualname__}" in _LINEAR_CONSUMER_NAMES:
        return None
    if kind.__name__ in _EXTRA_OUT_PARAMETERS:
        return f"is a {kind.__name__} ({_STANDARDISED})"
    return f"is a {kind.__name__}, not an nn.Conv2d or nn.Linear known to be linear in its input"


def producer_refusal(module: nn.Module) -> str | None:
    """None when the filters of `module` may be removed, else why not."""
    if type(module).__name__ in _EXTRA_OUT_PARAMETERS:
        return None
    reason = consumer_refusal(module)
    return None if reason is None else reason.replace(" linear in its input", " to keep its filters apart")


def cut_extra_parameters(module: nn.Module, keep: torch.Tensor, old_out: int) -> None:
    """Cut the per-filter parameters Torch-Pruning does not know (a ScaledStdConv2d's gain) to `keep`."""
    for attr in _EXTRA_OUT_PARAMETERS.get(type(module).__name__, ()):
        param = getattr(module, attr)
        if param.shape[0] == old_out:
            setattr(module, attr, nn.Parameter(param.data[keep.to(param.device)].clone(),
                                               requires_grad=param.requires_grad))
