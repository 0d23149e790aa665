"""Model registry: names, errors, shapes, the v1 stride, checkpoints, torchvision:/timm: sources."""
from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn as nn

import thinet.models
from thinet.models import available_models, create_model, input_size_of, register_model, vgg_conv_names

SUITE = ["vgg16", "vgg16_gap", "resnet50_v1", "vgg16_small", "resnet_small"]


def test_registry_lists_suite_models():
    assert set(SUITE) <= set(available_models())
    assert available_models() == sorted(available_models())


def test_unknown_name_lists_available_models_and_prefixes():
    with pytest.raises(ValueError) as info:
        create_model("vgg17")
    message = str(info.value)
    assert "'vgg17'" in message and "vgg16_small" in message and "torchvision:" in message and "timm:" in message


@pytest.mark.parametrize("name", ["torchvision:no_such_net", "timm:no_such_net", "torchvision:"])
def test_unknown_prefixed_name_is_a_value_error(name):
    with pytest.raises(ValueError, match="no_such_net|lacks"):
        create_model(name)


def test_unexpected_kwarg_and_bad_values_name_the_culprit():
    with pytest.raises(ValueError, match="widht_mult"):
        create_model("vgg16_small", 10, widht_mult=0.5)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("vgg16_small", 0)
    with pytest.raises(ValueError, match="input_size"):
        create_model("vgg16_small", 10, input_size=28)
    with pytest.raises(ValueError, match="layers"):
        create_model("resnet_small", 10, layers=())


def test_resnet50_v1_pretrained_points_to_checkpoint():
    with pytest.raises(ValueError, match="checkpoint="):
        create_model("resnet50_v1", pretrained=True)


def test_register_model_rejects_prefix_and_duplicates():
    with pytest.raises(ValueError, match="':'"):
        register_model("torchvision:x")
    with pytest.raises(ValueError, match="already registered"):
        register_model("vgg16")(lambda num_classes, pretrained=False: nn.Identity())


@pytest.mark.parametrize(
    "name, kwargs, x_shape",
    [
        ("vgg16_small", {}, (2, 1, 32, 32)),
        ("vgg16_small", {"in_chans": 3, "width_mult": 0.0625, "batch_norm": False, "input_size": 40}, (2, 3, 40, 40)),
        ("resnet_small", {}, (2, 1, 32, 32)),
        ("resnet_small", {"in_chans": 3, "layers": (2, 1)}, (2, 3, 32, 32)),
    ],
)
def test_small_models_forward_and_input_size(name, kwargs, x_shape):
    torch.manual_seed(0)
    model = create_model(name, 7, **kwargs)
    assert input_size_of(model) == x_shape[1:]
    assert model(torch.randn(*x_shape)).shape == (x_shape[0], 7)


def test_width_mult_floor_of_four_channels():
    model = create_model("vgg16_small", 10, width_mult=0.01)
    widths = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]
    assert len(widths) == 13 and min(widths) == 4


@pytest.mark.parametrize("name", ["vgg16", "vgg16_gap", "resnet50_v1"])
def test_imagenet_models_shapes_on_meta(name):
    with torch.device("meta"):
        model = create_model(name, 10)
        out = model(torch.empty(2, 3, 224, 224))
    assert out.shape == (2, 10)
    assert input_size_of(model) == (3, 224, 224)


def test_vgg16_gap_shares_vgg16_features_and_names():
    with torch.device("meta"):
        full, gap = create_model("vgg16"), create_model("vgg16_gap", 10)
    shapes = lambda m: [tuple(p.shape) for p in m.features.parameters()]  # noqa: E731
    assert shapes(full) == shapes(gap)
    assert isinstance(gap.avgpool, nn.AdaptiveAvgPool2d)
    assert [type(m) for m in gap.classifier] == [nn.Linear] and gap.classifier[0].in_features == 512
    assert vgg_conv_names(full) == vgg_conv_names(gap)
    assert vgg_conv_names(full)["conv4_3"] == "features.21"  # torchvision VGG-16: conv4_3 is features[21]
    assert len(vgg_conv_names(full)) == 13


def test_resnet50_v1_strides_sit_on_first_1x1():
    model = create_model("resnet50_v1")
    for stage in ("layer2", "layer3", "layer4"):
        block = getattr(model, stage)[0]
        assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
        assert block.downsample[0].stride == (2, 2)
    names = {n for n, _ in model.layer1[0].named_children()}
    assert {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample"} <= names
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_vgg_conv_names_rejects_conv_free_model():
    with pytest.raises(ValueError, match="Conv2d"):
        vgg_conv_names(nn.Linear(3, 3))


def test_torchvision_and_timm_sources():
    tv = create_model("torchvision:resnet18", 5)
    assert tv.fc.out_features == 5 and input_size_of(tv) == (3, 224, 224)
    tm = create_model("timm:resnet18", 5, in_chans=1)
    assert input_size_of(tm) == (1, 224, 224)
    assert tm(torch.randn(2, 1, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("name, head", [("torchvision:vgg16", "classifier.6"), ("vgg16", "classifier.6")])
def test_pretrained_torchvision_loads_1000_classes_then_replaces_head(monkeypatch, name, head):
    import torchvision

    calls = []

    def fake_get_model(arch, weights=None, **kwargs):  # stands in for the weight download
        calls.append((arch, weights, kwargs))
        with torch.device("meta"):
            return torchvision.models.vgg16(weights=None, **kwargs)

    monkeypatch.setattr(torchvision.models, "get_model", fake_get_model)
    model = create_model(name, 10, pretrained=True)
    assert calls == [("vgg16", "DEFAULT", {})]
    assert model.get_submodule(head).out_features == 10
    assert model.get_submodule(head).weight.device.type == "cpu"  # a fresh head


def _shrink_conv1_1(model: nn.Module, keep: int) -> None:
    """Emulate a pruned model: conv1_1 keeps `keep` filters."""
    f = model.features
    f[0] = nn.Conv2d(f[0].in_channels, keep, 3, padding=1)
    f[1] = nn.BatchNorm2d(keep)
    f[3] = nn.Conv2d(keep, f[3].out_channels, 3, padding=1)


@pytest.mark.parametrize(
    "wrap",
    [lambda sd: sd, lambda sd: {"model": sd, "epoch": 3}, lambda sd: {"module." + k: v for k, v in sd.items()}],
    ids=["state_dict", "model_key", "dataparallel"],
)
def test_checkpoint_state_dict_round_trip(tmp_path, wrap):
    torch.manual_seed(0)
    model = create_model("vgg16_small", 10).eval()
    path = tmp_path / "ckpt.pt"
    torch.save(wrap(model.state_dict()), path)
    torch.manual_seed(1)
    loaded = create_model("vgg16_small", 10, checkpoint=path).eval()
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(model(x), loaded(x))


@pytest.mark.parametrize("whole", [True, False], ids=["module", "model_key_module"])
def test_checkpoint_whole_pruned_module_takes_precedence(tmp_path, whole):
    torch.manual_seed(0)
    model = create_model("vgg16_small", 10, width_mult=0.25)
    _shrink_conv1_1(model, 5)
    model.eval()
    path = tmp_path / "pruned.pt"
    torch.save(model if whole else {"model": model, "epoch": 1}, path)
    loaded = create_model("vgg16_small", 10, width_mult=0.25, checkpoint=path)
    assert loaded.features[0].out_channels == 5
    assert input_size_of(loaded) == (1, 32, 32)
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(model(x), loaded.eval()(x))


def test_whole_module_without_input_size_gets_the_constructors(tmp_path):
    model = create_model("vgg16_small", 10, in_chans=3, input_size=64)
    del model.thinet_input_size
    path = tmp_path / "bare.pt"
    torch.save(model, path)
    loaded = create_model("vgg16_small", 10, in_chans=3, input_size=64, checkpoint=path)
    assert input_size_of(loaded) == (3, 64, 64)


def test_pruned_state_dict_into_fresh_model_names_the_file(tmp_path):
    model = create_model("vgg16_small", 10)
    _shrink_conv1_1(model, 3)
    path = tmp_path / "pruned_sd.pt"
    torch.save({"model": model.state_dict()}, path)
    with pytest.raises(ValueError, match=r"pruned_sd\.pt.*features\.0\.weight"):
        create_model("vgg16_small", 10, checkpoint=path)


def test_bad_checkpoint_files(tmp_path):
    missing = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        create_model("vgg16_small", 10, checkpoint=missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="garbage.pt"):
        create_model("vgg16_small", 10, checkpoint=garbage)
    odd = tmp_path / "odd.pt"
    torch.save({"epoch": 3}, odd)
    with pytest.raises(ValueError, match="odd.pt"):
        create_model("vgg16_small", 10, checkpoint=odd)


def test_unknown_name_fails_before_reading_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vgg17", checkpoint=tmp_path / "absent.pt")


def test_docstring_examples():
    from thinet.models import vgg

    for module in (thinet.models, vgg):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0


def test_train_from_scratch_draws_the_architectures_own_initialisation():
    # PyTorch's layer defaults (std 1/sqrt(3 fan_in)) leave a 13-conv VGG without BatchNorm at chance:
    # Train from scratch must start as its unpruned original did (Kaiming, fan_out for convs).
    import math

    from thinet.experiment import scratch_model
    from thinet.models import create_model

    torch.manual_seed(0)
    model = create_model("vgg16_small", 10, width_mult=0.25, batch_norm=False, head="fc")
    fresh = scratch_model(model, seed=3)
    conv = fresh.features[2]  # conv1_2: 16 -> 16 channels, 3x3
    assert abs(conv.weight.std().item() - math.sqrt(2 / (16 * 9))) < 0.03
    fc6 = fresh.classifier[0]
    assert abs(fc6.weight.std().item() - math.sqrt(2 / fc6.in_features)) < 0.03
    assert not torch.equal(fresh.features[0].weight, model.features[0].weight)  # drawn anew
    assert torch.equal(scratch_model(model, seed=3).features[0].weight, fresh.features[0].weight)
