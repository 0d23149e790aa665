"""`thinet bench sampling`: collect_samples on a VGG-16 middle layer vs a plain full forward pass.

Target (from the project brief): sampling ≤ 1.3× the full forward pass over the same images.

    >>> res = run_sampling_bench(images=2, batch_size=2, image_size=32, repeats=1)
    >>> res["samples_shape"]
    '20x256'
"""
from __future__ import annotations

import torch

from thinet.bench._selection import median_time
from thinet.sampling import collect_samples, iter_batches
from thinet.types import LayerPair

# conv3_2 -> conv3_3 of torchvision's VGG-16.
DEFAULT_PAIR = LayerPair("features.12", "features.14")


def run_sampling_bench(*, images: int = 16, batch_size: int = 8, image_size: int = 224, samples_per_image: int = 10,
                       pair: LayerPair = DEFAULT_PAIR, repeats: int = 3, seed: int = 0,
                       device: str | torch.device = "cpu") -> dict:
    """Median seconds of collect_samples(pair) and of a full forward pass over the same random images."""
    import torchvision

    dev = torch.device(device)
    torch.manual_seed(seed)
    model = torchvision.models.vgg16(weights=None).to(dev).eval()
    gen = torch.Generator().manual_seed(seed)
    data = torch.randn(images, 3, image_size, image_size, generator=gen).to(dev)

    def forward() -> None:
        with torch.no_grad():
            for batch in iter_batches(data, batch_size):
                model(batch)

    def sample() -> torch.Tensor:
        return collect_samples(model, pair, iter_batches(data, batch_size), samples_per_image=samples_per_image,
                               seed=seed)

    forward_s, _ = median_time(forward, dev, repeats)
    sample_s, x_hat = median_time(sample, dev, repeats)
    return {"model": "torchvision:vgg16", "pair": f"{pair.producer}->{pair.consumer}", "images": images,
            "image_size": image_size, "device": str(dev), "samples_shape": "x".join(map(str, x_hat.shape)),
            "full_forward_s": forward_s, "collect_samples_s": sample_s, "ratio_sampling_over_forward": sample_s / forward_s}
