"""Image transforms: the paper's (ImageNet-style) and their small-image equivalents.

Paper (§4.2): train = resize to 256x256, random 224 crop, horizontal flip;
eval = resize to 256x256, centre 224 crop. Two ways to turn the crop into numbers
(`preprocessing`): "torchvision" (RGB in 0-1, ImageNet mean/std: torchvision and timm
weights) and "caffe" (BGR in 0-255 minus the mean, no scaling: MSRA's Caffe ResNet). The small-image versions keep the
same resize:crop ratio idea for 28x28 images: resize to 36, crop 32.
All randomness comes from torch's global RNG (seeded by the caller or the
DataLoader's generator), never from python's `random`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

# The normalisation every ImageNet-pretrained torchvision/timm model expects.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe's BGR means, per channel, on 0-255 pixels. MSRA trained ResNet-50 with a per-pixel mean
# image (ResNet_mean.binaryproto); its per-channel average is what every port of those weights
# uses (Keras' "caffe" mode, the ResNet-50 it ships being converted from MSRA's caffemodel), and
# our resize-then-crop would not line a 224x224 mean image up with the crop anyway.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_CROP = 224
IMAGENET_RESIZE = 256
SMALL_CROP = 32
SMALL_RESIZE = 36


def resize_for(image_size: int, crop: int, resize: int) -> int:
    """Side to resize to before cropping `image_size`, keeping the reference resize:crop ratio.

    >>> resize_for(224, 224, 256), resize_for(112, 224, 256), resize_for(32, 32, 36)
    (256, 128, 36)
    """
    if image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    return int(round(image_size * resize / crop))


def check_preprocessing(preprocessing: str) -> str:
    """`preprocessing` itself, if it is one of PREPROCESSINGS; else a ValueError naming the choices."""
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing {preprocessing!r}; use one of {', '.join(PREPROCESSINGS)}")
    return preprocessing


class CaffeBGR:
    """RGB float tensor in 0-255 (C x H x W) -> Caffe's input: BGR minus CAFFE_BGR_MEAN, unscaled.

    >>> CaffeBGR()(torch.tensor([123.68, 116.779, 103.939]).reshape(3, 1, 1)).flatten().tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(self) -> None:
        self.mean = torch.tensor(CAFFE_BGR_MEAN).reshape(3, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.flip(-3) - self.mean

    def __repr__(self) -> str:
        return f"CaffeBGR(mean={CAFFE_BGR_MEAN})"


# preprocessing -> the last steps of the transform, from uint8 RGB pixels to the model's input.
_TO_NUMBERS: dict[str, Callable[[], list[Callable]]] = {
    "torchvision": lambda: [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)],
    "caffe": lambda: [v2.ToDtype(torch.float32, scale=False), CaffeBGR()],
}
PREPROCESSINGS = tuple(_TO_NUMBERS)


def imagenet_transform(train: bool, image_size: int = IMAGENET_CROP,
                       preprocessing: str = "torchvision") -> v2.Compose:
    """PIL image -> float tensor 3xSxS with the paper's augmentation when `train`, as `preprocessing` wants.

    >>> from PIL import Image
    >>> imagenet_transform(False)(Image.new("RGB", (300, 200))).shape
    torch.Size([3, 224, 224])
    >>> imagenet_transform(False, preprocessing="caffe")(Image.new("RGB", (300, 200), (255, 0, 0)))[:, 0, 0]
    tensor([-103.9390, -116.7790,  131.3200])
    """
    side = resize_for(image_size, IMAGENET_CROP, IMAGENET_RESIZE)
    crop = [v2.RandomCrop(image_size), v2.RandomHorizontalFlip()] if train else [v2.CenterCrop(image_size)]
    to_numbers = _TO_NUMBERS[check_preprocessing(preprocessing)]()
    return v2.Compose([v2.ToImage(), v2.Resize((side, side), antialias=True), *crop, *to_numbers])


class SmallImageTransform:
    """uint8 HxW (or CxHxW) tensor -> normalised float CxSxS, as tensor ops (fast on CPU).

    >>> t = SmallImageTransform(mean=0.5, std=0.25, image_size=32, train=True)
    >>> t(torch.zeros(28, 28, dtype=torch.uint8)).shape
    torch.Size([1, 32, 32])
    """

    def __init__(self, mean: float, std: float, image_size: int = SMALL_CROP, train: bool = False) -> None:
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.mean, self.std, self.image_size, self.train = float(mean), float(std), image_size, train
        self.side = resize_for(image_size, SMALL_CROP, SMALL_RESIZE)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32).div_(255.0)
        x = x.reshape(1, -1, *x.shape[-2:])
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False,
                              antialias=self.side < x.shape[-1])
        x = x[0]
        span = self.side - self.image_size
        if self.train:
            top, left = (int(v) for v in torch.randint(0, span + 1, (2,)))
            x = x[:, top:top + self.image_size, left:left + self.image_size]
            if bool(torch.rand(()) < 0.5):
                x = x.flip(-1)
        else:
            top = span // 2
            x = x[:, top:top + self.image_size, top:top + self.image_size]
        return (x - self.mean) / self.std

    def __repr__(self) -> str:
        return (f"SmallImageTransform(resize={self.side}, crop={self.image_size}, train={self.train}, "
                f"mean={self.mean:.4f}, std={self.std:.4f})")
