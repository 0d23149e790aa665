"""`thinet convert-caffe`: MSRA's Caffe ResNet-50 weights into `resnet50_v1`, on a caffemodel this test writes.

The file is encoded here byte by byte from caffe.proto's field numbers (not with the converter's
own schema), so a wrong field number in the reader fails these tests.
"""
from __future__ import annotations

import string

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from thinet.cli import main
from thinet.models import convert_caffemodel, create_model, read_caffemodel

BN_EPS = 1e-5  # Caffe's BatchNormParameter default


# ---------------------------------------------------------------- protobuf wire format, by hand

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # wire type 2: length-delimited
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:  # wire type 0: varint
    return _varint(number << 3) + _varint(value)


def _blob(array: np.ndarray, legacy: bool = False) -> bytes:
    """BlobProto: data = 5 (packed float); shape = 7 (BlobShape, dim = 1 packed), or num/channels/height/width = 1-4."""
    data = _field(5, np.ascontiguousarray(array, dtype="<f4").tobytes())
    if legacy:
        dims = (1,) * (4 - array.ndim) + array.shape
        return b"".join(_int_field(i + 1, d) for i, d in enumerate(dims)) + data
    return _field(7, _field(1, b"".join(_varint(d) for d in array.shape))) + data


def _layer(name: str, kind: str, blobs: list[bytes]) -> bytes:
    """NetParameter.layer = 100: LayerParameter name = 1, type = 2, blobs = 7."""
    return _field(100, _field(1, name.encode()) + _field(2, kind.encode()) + b"".join(_field(7, b) for b in blobs))


def _v1_layer(name: str, blobs: list[bytes]) -> bytes:
    """NetParameter.layers = 2: V1LayerParameter name = 4, type = 5 (enum; CONVOLUTION = 4), blobs = 6."""
    return _field(2, _field(4, name.encode()) + _int_field(5, 4) + b"".join(_field(6, b) for b in blobs))


# ---------------------------------------------------------------- MSRA's ResNet-50, written out literally

def _msra_layout() -> list[tuple[str, str, str]]:
    """(torch conv, torch bn, Caffe suffix) for every convolution, from MSRA's ResNet-50-deploy.prototxt."""
    units = [("conv1", "bn1", "_conv1")]
    for stage, blocks in zip((2, 3, 4, 5), (3, 4, 6, 3)):
        for b in range(blocks):
            prefix, letter = f"layer{stage - 1}.{b}", string.ascii_lowercase[b]
            if b == 0:
                units.append((f"{prefix}.downsample.0", f"{prefix}.downsample.1", f"{stage}{letter}_branch1"))
            for k, branch in zip((1, 2, 3), "abc"):
                units.append((f"{prefix}.conv{k}", f"{prefix}.bn{k}", f"{stage}{letter}_branch2{branch}"))
    return units


def _names(suffix: str) -> tuple[str, str, str]:
    if suffix == "_conv1":
        return "conv1", "bn_conv1", "scale_conv1"
    return f"res{suffix}", f"bn{suffix}", f"scale{suffix}"


@pytest.fixture(scope="module")
def msra():
    """Random MSRA-style blobs for every layer of ResNet-50, and their encoded layer records."""
    rng = np.random.default_rng(0)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in create_model("resnet50_v1").state_dict().items()}
    blobs, records = {}, {}

    def add(name, kind, arrays, legacy=False):
        blobs[name] = arrays
        records[name] = _layer(name, kind, [_blob(a, legacy) for a in arrays])

    for i, (conv, bn, suffix) in enumerate(_msra_layout()):
        caffe_conv, caffe_bn, caffe_scale = _names(suffix)
        c = shapes[f"{bn}.weight"][0]
        weight = rng.standard_normal(shapes[f"{conv}.weight"], dtype=np.float32)
        add(caffe_conv, "Convolution", [weight, rng.standard_normal(c, dtype=np.float32)] if conv == "conv1" else [weight])
        factor = np.array([0.0 if i == 5 else 1.0 + i], dtype=np.float32)  # one layer never accumulated: s = 0
        add(caffe_bn, "BatchNorm", [rng.standard_normal(c, dtype=np.float32) * factor,
                                    rng.uniform(0.5, 2, c).astype(np.float32) * factor, factor], legacy=i % 2 == 1)
        add(caffe_scale, "Scale", [rng.standard_normal(c, dtype=np.float32) for _ in range(2)])
    add("fc1000", "InnerProduct", [rng.standard_normal((1000, 2048), dtype=np.float32),
                                   rng.standard_normal(1000, dtype=np.float32)], legacy=True)
    return blobs, records


def _write(path, records, replace=None, drop=()):
    replace = replace or {}
    body = b"".join(replace.get(name, record) for name, record in records.items() if name not in drop)
    # A layer without weights (ReLU) and the net's name, as real files have: both must be skipped.
    path.write_bytes(_field(1, b"ResNet-50") + _layer("conv1_relu", "ReLU", []) + body)
    return path


def test_convert_caffe_puts_every_blob_in_its_place(msra, tmp_path, capsys):
    blobs, records = msra
    out = tmp_path / "models" / "resnet50_v1.pth"
    assert main(["convert-caffe", str(_write(tmp_path / "r50.caffemodel", records)), str(out)]) == 0
    assert "resnet50_v1 state_dict" in capsys.readouterr().out
    net = create_model("resnet50_v1", checkpoint=out)  # the project's normal checkpoint path, strict
    state = net.state_dict()
    for conv, bn, suffix in _msra_layout():
        caffe_conv, caffe_bn, caffe_scale = _names(suffix)
        mean_s, var_s, (s,) = blobs[caffe_bn]
        scale = 0.0 if s == 0 else 1.0 / s
        mean = mean_s * scale - (blobs[caffe_conv][1] if conv == "conv1" else 0)
        torch.testing.assert_close(state[f"{conv}.weight"], torch.from_numpy(blobs[caffe_conv][0]), rtol=0, atol=0)
        torch.testing.assert_close(state[f"{bn}.running_mean"], torch.from_numpy(mean.astype(np.float32)))
        torch.testing.assert_close(state[f"{bn}.running_var"], torch.from_numpy((var_s * scale).astype(np.float32)))
        torch.testing.assert_close(state[f"{bn}.weight"], torch.from_numpy(blobs[caffe_scale][0]), rtol=0, atol=0)
        torch.testing.assert_close(state[f"{bn}.bias"], torch.from_numpy(blobs[caffe_scale][1]), rtol=0, atol=0)
    assert float(state["layer1.1.bn1.running_var"].abs().max()) == 0  # s = 0 (the 6th conv): zero, not inf
    torch.testing.assert_close(state["fc.weight"], torch.from_numpy(blobs["fc1000"][0]), rtol=0, atol=0)
    torch.testing.assert_close(state["fc.bias"], torch.from_numpy(blobs["fc1000"][1]), rtol=0, atol=0)


def test_conv1_bias_folded_into_bn_gives_caffes_output(msra, tmp_path):
    """Caffe computes Scale(BatchNorm(conv1(x) + bias)); the converted conv1 has no bias, bn1 must make up for it."""
    blobs, records = msra
    net = create_model("resnet50_v1", checkpoint=_save(tmp_path, records)).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    weight, bias = (torch.from_numpy(a) for a in blobs["conv1"])
    mean_s, var_s, (s,) = blobs["bn_conv1"]
    gamma, beta = (torch.from_numpy(a)[:, None, None] for a in blobs["scale_conv1"])
    z = F.conv2d(x, weight, bias, stride=2, padding=3)
    caffe = gamma * (z - torch.from_numpy(mean_s / s)[:, None, None]) / torch.sqrt(
        torch.from_numpy(var_s / s)[:, None, None] + BN_EPS) + beta
    with torch.no_grad():
        torch.testing.assert_close(net.bn1(net.conv1(x)), caffe, rtol=1e-4, atol=1e-4)


def _save(tmp_path, records):
    out = tmp_path / "r50.pth"
    assert main(["convert-caffe", str(_write(tmp_path / "r50.caffemodel", records)), str(out)]) == 0
    return out


def test_missing_layer_is_named_and_nothing_is_written(msra, tmp_path, capsys):
    _, records = msra
    out = tmp_path / "r50.pth"
    assert main(["convert-caffe", str(_write(tmp_path / "r50.caffemodel", records, drop={"bn3b_branch2b"})),
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert "bn3b_branch2b" in err and "missing" in err and "r50.caffemodel" in err
    assert not out.exists()


def test_wrong_blob_shape_names_the_caffe_layer_and_the_parameter(msra, tmp_path):
    _, records = msra
    wrong = _layer("res4a_branch2b", "Convolution", [_blob(np.zeros((256, 128, 3, 3), np.float32))])
    with pytest.raises(ValueError, match=r"'res4a_branch2b' blob 0 has shape \(256, 128, 3, 3\).*layer3\.0\.conv2\.weight"):
        convert_caffemodel(_write(tmp_path / "r50.caffemodel", records, replace={"res4a_branch2b": wrong}))


def test_unexpected_layer_with_weights_and_bad_files_are_errors(msra, tmp_path):
    _, records = msra
    extra = {"fc1000": records["fc1000"] + _layer("fc_extra", "InnerProduct", [_blob(np.ones(3, np.float32))])}
    with pytest.raises(ValueError, match="no place for: \\['fc_extra'\\]"):
        convert_caffemodel(_write(tmp_path / "x.caffemodel", records, replace=extra))
    with pytest.raises(ValueError, match="not a Caffe NetParameter"):
        read_caffemodel(_raw(tmp_path / "junk.caffemodel", b"\xff\xff\xff"))
    with pytest.raises(ValueError, match="holds no Caffe layers"):
        read_caffemodel(_raw(tmp_path / "empty.caffemodel", _field(1, b"net")))
    with pytest.raises(ValueError, match="no Caffe layer mapping for model 'vgg16'"):
        convert_caffemodel(tmp_path / "x.caffemodel", "vgg16")


def _raw(path, data):
    path.write_bytes(data)
    return path


def test_reads_v1_layers_and_legacy_blob_shapes(tmp_path):
    weight, bias = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), np.array([0.5, -1.5], np.float32)
    path = _raw(tmp_path / "v1.caffemodel", _v1_layer("conv", [_blob(weight, legacy=True), _blob(bias, legacy=True)])
                + _v1_layer("relu", []))
    read = read_caffemodel(path)
    assert list(read) == ["conv"]
    np.testing.assert_array_equal(read["conv"][0], weight)
    np.testing.assert_array_equal(read["conv"][1].reshape(-1), bias)


def test_resnet50_v1_max_pools_as_caffe():
    """Caffe's pool1 (3x3, stride 2, no padding, rounded up) covers rows 0-2, 2-4, ...: a peak at row 2 reaches
    outputs 0 and 1 (torchvision's padding 1 covers rows -1-1, 1-3, ...: output 1 only), and the map stays 56 wide."""
    pool = create_model("resnet50_v1").maxpool
    x = torch.zeros(1, 1, 112, 112)
    x[0, 0, 2, 2] = 1.0
    y = pool(x)[0, 0]
    assert y.shape == (56, 56)
    assert torch.nonzero(y).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]


# ---------------------------------------------------------------- Caffe preprocessing (data.preprocessing: caffe)

def test_caffe_preprocessing_is_bgr_0_255_minus_the_mean():
    """Same crop as torchvision's preprocessing, only the numbers differ: undo torchvision's (x * std + mean)
    to 0-255 RGB, reverse the channels, subtract Caffe's BGR mean."""
    from PIL import Image

    from thinet.data import CAFFE_BGR_MEAN
    from thinet.data._transforms import IMAGENET_MEAN, IMAGENET_STD, imagenet_transform

    pixels = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    pixels[..., 0] = 250  # a red cast: a missing channel swap cannot hide
    image = Image.fromarray(pixels)
    caffe = imagenet_transform(False, 16, preprocessing="caffe")(image)
    torchvision = imagenet_transform(False, 16)(image)
    rgb_255 = (torchvision * torch.tensor(IMAGENET_STD)[:, None, None]
               + torch.tensor(IMAGENET_MEAN)[:, None, None]) * 255
    torch.testing.assert_close(caffe, rgb_255.flip(0) - torch.tensor(CAFFE_BGR_MEAN)[:, None, None],
                               rtol=0, atol=1e-3)
    torch.testing.assert_close(caffe[2].mean(), torch.tensor(250 - CAFFE_BGR_MEAN[2]), rtol=0, atol=0.5)
    with pytest.raises(ValueError, match="unknown preprocessing 'bgr'; use one of torchvision, caffe"):
        imagenet_transform(False, preprocessing="bgr")


def test_get_dataset_reads_an_imagenet_tree_caffe_style_and_refuses_grayscale(tmp_path):
    from thinet.data import CAFFE_BGR_MEAN, get_dataset, make_fixture

    root = make_fixture("imagenet", tmp_path / "imagenet", classes=2, per_class=1, seed=0, image_size=24)
    image, _ = get_dataset("imagenet", "val", root=root, image_size=16, preprocessing="caffe")[0]
    tv, _ = get_dataset("imagenet", "val", root=root, image_size=16)[0]
    assert image.shape == tv.shape == (3, 16, 16)
    assert float(image.max()) <= 255 - min(CAFFE_BGR_MEAN) and float(image.max() - image.min()) > 10
    with pytest.raises(ValueError, match="dataset 'fashion_mnist' supports preprocessing torchvision, not 'caffe'"):
        get_dataset("fashion_mnist", "val", root=tmp_path / "nowhere", preprocessing="caffe")


def test_resnet50_config_reads_caffe_pixels_and_refuses_them_for_fashion_mnist():
    from pathlib import Path

    from thinet.experiment import ConfigError, load_config

    root = Path(__file__).resolve().parents[1]
    schema = root / "workflow" / "schemas" / "config.schema.yaml"
    paper = load_config([root / "config" / "imagenet_resnet50.yaml"], schema, check_paths=False)
    assert paper["data"]["preprocessing"] == "caffe"
    assert load_config([root / "config" / "smoke.yaml"], schema)["data"]["preprocessing"] == "torchvision"
    with pytest.raises(ConfigError, match="'data.preprocessing': dataset 'fashion_mnist' supports preprocessing "
                                          "torchvision, not 'caffe'"):
        load_config([root / "config" / "smoke.yaml"], schema, overrides={"data": {"preprocessing": "caffe"}})
