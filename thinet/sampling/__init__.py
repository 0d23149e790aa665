"""ThiNet's training examples (paper §3.2.1): the m×C matrix X̂ of channel contributions of
layer i+1's inputs, sampled at random positions (`collect_samples`) or summed over every
position as a Gram matrix (`collect_gram`).

Each consumer kind (Conv2d, a Linear after a flatten) is one small class in `_consumers.py`,
registered by module type; `_capture.py` stops the forward pass at the consumer. How many
samples `--strategy auto` draws is `samples_per_image_for` (`_budget.py`: at least 16 per channel).

>>> import torch
>>> from torch import nn
>>> from thinet.types import LayerPair
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3))
>>> collect_samples(net, LayerPair("0", "2"), torch.randn(6, 3, 8, 8), samples_per_image=5).shape
torch.Size([30, 8])
"""
from __future__ import annotations

from thinet.sampling._budget import MIN_SAMPLES_PER_IMAGE, SAMPLES_PER_CHANNEL, samples_per_image_for
from thinet.sampling._capture import first_images, iter_batches
from thinet.sampling._collect import collect_gram, collect_samples
from thinet.sampling._consumers import MAX_COV_ELEMENTS, Consumer, gram_from_cov, make_consumer, register_consumer
from thinet.sampling._paired import collect_paired_samples
from thinet.sampling._patches import collect_patches

__all__ = ["MAX_COV_ELEMENTS", "gram_from_cov", "MIN_SAMPLES_PER_IMAGE", "SAMPLES_PER_CHANNEL", "Consumer", "collect_gram", "collect_paired_samples",
           "collect_patches", "collect_samples", "first_images", "iter_batches", "make_consumer", "register_consumer",
           "samples_per_image_for"]
