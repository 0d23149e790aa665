"""Reading a Caffe `.caffemodel` without Caffe: the few protobuf messages that hold weights.

A `.caffemodel` is a serialised `caffe.NetParameter`. We declare only the fields that carry
layer names and weights, with Caffe's field numbers (BVLC `src/caffe/proto/caffe.proto`);
protobuf skips every other field (layer parameters, bottoms, tops) as unknown. The message
classes are built at run time from a descriptor, so neither Caffe nor `protoc` is needed.

    NetParameter     layer = 100 (LayerParameter), layers = 2 (V1LayerParameter, pre-2015 files)
    LayerParameter   name = 1, type = 2 (string), blobs = 7
    V1LayerParameter name = 4, blobs = 6 (its type is an enum we do not need)
    BlobProto        shape = 7, data = 5 (packed float), double_data = 8 (packed double),
                     legacy 4-D num/channels/height/width = 1..4
    BlobShape        dim = 1 (packed int64)
"""
from __future__ import annotations

import os
from functools import cache
from typing import Any

import numpy as np

# protobuf is imported where the message class is built (`_net_parameter_class`), not with the package.


def _schema() -> dict[str, list[tuple[Any, ...]]]:
    """(message, [(field, number, type, label, message type or None, packed)])."""
    from google.protobuf import descriptor_pb2

    _F = descriptor_pb2.FieldDescriptorProto
    return {
        "BlobShape": [("dim", 1, _F.TYPE_INT64, _F.LABEL_REPEATED, None, True)],
        "BlobProto": [
            ("num", 1, _F.TYPE_INT64, _F.LABEL_OPTIONAL, None, False),
            ("channels", 2, _F.TYPE_INT64, _F.LABEL_OPTIONAL, None, False),
            ("height", 3, _F.TYPE_INT64, _F.LABEL_OPTIONAL, None, False),
            ("width", 4, _F.TYPE_INT64, _F.LABEL_OPTIONAL, None, False),
            ("data", 5, _F.TYPE_FLOAT, _F.LABEL_REPEATED, None, True),
            ("shape", 7, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "BlobShape", False),
            ("double_data", 8, _F.TYPE_DOUBLE, _F.LABEL_REPEATED, None, True),
        ],
        "LayerParameter": [
            ("name", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None, False),
            ("type", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None, False),
            ("blobs", 7, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "BlobProto", False),
        ],
        "V1LayerParameter": [
            ("name", 4, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None, False),
            ("blobs", 6, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "BlobProto", False),
        ],
        "NetParameter": [
            ("name", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None, False),
            ("layers", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "V1LayerParameter", False),
            ("layer", 100, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "LayerParameter", False),
        ],
    }


# Our own package name: a real caffe_pb2 imported in the same process cannot collide with it.
_PACKAGE = "thinet_caffe"


@cache
def _net_parameter_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file = descriptor_pb2.FileDescriptorProto(name="thinet_caffe_weights.proto", package=_PACKAGE, syntax="proto2")
    for message, fields in _schema().items():
        proto = file.message_type.add(name=message)
        for name, number, kind, label, type_name, packed in fields:
            field = proto.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
            if packed:
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.NetParameter"))


def _blob_array(blob: Any, where: str) -> np.ndarray:
    values = np.asarray(blob.data if len(blob.data) else blob.double_data, dtype=np.float32)
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:  # the legacy 4-D fields; absent ones are 0
        shape = tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width) if d)
    if int(np.prod(shape, dtype=np.int64)) != values.size:
        raise ValueError(f"{where}: blob of shape {shape} holds {values.size} values")
    return values.reshape(shape)


def read_caffemodel(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Layer name -> its weight blobs (float32 arrays in Caffe's shapes), for layers that have any.

    Reads both the current format (`layer`) and the V1 format (`layers`). Errors name the file.

    >>> blobs = read_caffemodel("ResNet-50-model.caffemodel")  # doctest: +SKIP
    >>> [b.shape for b in blobs["conv1"]]  # doctest: +SKIP
    [(64, 3, 7, 7), (64,)]
    """
    from google.protobuf.message import DecodeError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"caffemodel not found: {path}")
    net = _net_parameter_class()()
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        net.ParseFromString(raw)
    except DecodeError as err:
        raise ValueError(f"{path} is not a Caffe NetParameter (.caffemodel): {err}") from None
    layers = list(net.layer) + list(net.layers)
    if not layers:
        raise ValueError(f"{path} holds no Caffe layers (is it a .caffemodel, not a .prototxt or a mean file?)")
    weights: dict[str, list[np.ndarray]] = {}
    for layer in layers:
        if not layer.blobs:
            continue
        if layer.name in weights:
            raise ValueError(f"{path}: two layers named {layer.name!r} carry weights")
        weights[layer.name] = [_blob_array(b, f"{path}: layer {layer.name!r} blob {i}")
                               for i, b in enumerate(layer.blobs)]
    return weights
