"""How many samples ThiNet draws: at least `SAMPLES_PER_CHANNEL` per channel, so that ŵ helps.

Eq. 6 needs m ≥ C samples, but ŵ (Eq. 7) fits C·r scales to them: with m close to C it follows
the samples' noise, and on the consumer's full output map the rescaled cut is then *worse* than no
rescaling. `thinet bench refit` measures it unit by unit (docs/prune-your-own-model.md, "How many samples"): on networks
built without weights, at m = 1, 2, 4, 8 × C ŵ beat no rescaling in about half the units or fewer
(often none), at 8 × C in most, at 16 × C in nearly all. So `--strategy auto` draws at least
16 × C samples for its widest unit (`thinet prune`, `thinet bench models`; `--samples-per-channel`
changes the factor, `--samples-per-image` fixes the count), and never fewer than the paper's 10
per image.

    >>> samples_per_image_for(num_images=8, num_channels=64)  # 16 x 64 samples from 8 images
    128
    >>> samples_per_image_for(num_images=10_000, num_channels=512)  # the paper's 10 are plenty here
    10
"""
from __future__ import annotations

import math
from numbers import Integral

from thinet.types import PruningError

# Samples per channel of the widest unit (see the module docstring for the measurement).
SAMPLES_PER_CHANNEL = 16
# The paper's samples per image (§4.2), the floor of the rule.
MIN_SAMPLES_PER_IMAGE = 10


def samples_per_image_for(num_images: int, num_channels: int, per_channel: float = SAMPLES_PER_CHANNEL,
                          minimum: int = MIN_SAMPLES_PER_IMAGE) -> int:
    """Samples per image so that `num_images` images give at least `per_channel` × `num_channels` samples
    (`minimum` at least). `per_channel` = 1 is Eq. 6's bare minimum.
    """
    for name, value in (("num_images", num_images), ("num_channels", num_channels), ("minimum", minimum)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise PruningError(f"samples_per_image_for: {name} must be a positive int, got {value!r}")
    if isinstance(per_channel, bool) or not isinstance(per_channel, (int, float)) or not per_channel >= 1:
        raise PruningError(f"samples per channel must be a number >= 1 (Eq. 6 needs as many samples as "
                           f"channels), got {per_channel!r}")
    return max(int(minimum), math.ceil(per_channel * num_channels / num_images))
