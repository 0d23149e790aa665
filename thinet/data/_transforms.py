"""Image transforms: the paper's (ImageNet-style) and their small-image equivalents.

Paper (§4.2): train = resize to 256x256, random 224 crop, horizontal flip;
eval = resize to 256x256, centre 224 crop. The small-image versions keep the
same resize:crop ratio idea for 28x28 images: resize to 36, crop 32.
All randomness comes from torch's global RNG (seeded by the caller or the
DataLoader's generator), never from python's `random`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

# The normalisation every ImageNet-pretrained torchvision/timm model expects.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
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


def imagenet_transform(train: bool, image_size: int = IMAGENET_CROP) -> v2.Compose:
    """PIL image -> normalised float tensor 3xSxS with the paper's augmentation when `train`.

    >>> from PIL import Image
    >>> imagenet_transform(False)(Image.new("RGB", (300, 200))).shape
    torch.Size([3, 224, 224])
    """
    side = resize_for(image_size, IMAGENET_CROP, IMAGENET_RESIZE)
    crop = [v2.RandomCrop(image_size), v2.RandomHorizontalFlip()] if train else [v2.CenterCrop(image_size)]
    return v2.Compose([
        v2.ToImage(),
        v2.Resize((side, side), antialias=True),
        *crop,
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


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
