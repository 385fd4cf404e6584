"""Patch scorers: how far each patch of a pile's image lies from what the pile calls normal.

Each scorer is one file, with the same two calls:
- `prepare(images, features)`: what it needs from the pile before scoring (a memory bank, reference images);
- `maps(features, index)`: anomaly maps (B, h, w) of the pile's images at `index` from their patch features.

| name     | normal is                                                      | needs the pile | cost per image   |
|----------|----------------------------------------------------------------|----------------|------------------|
| `bank`   | a memory bank of patches sampled from half of the pile        | yes            | bank size        |
| `self`   | the other patches of the same image, outside a radius          | no             | patches squared  |
| `mutual` | the nearest patch of each of R other images, MuSc's interval mean | yes         | R x patches^2 / 4 |
| `fused`  | both `self` and `mutual`, their maps joined by `detect.fusion`  | yes            | the two summed   |

`positional.py` holds the windowed nearest-patch search that `mutual` uses with a `window`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from torch import Tensor

from ...patches import PatchFeatures
from ..config import DetectConfig
from .bank import PileBank
from .fused import Fused
from .mutual import Mutual
from .self_similarity import SelfSimilarity


class Scorer(Protocol):
    def prepare(self, images: np.ndarray, features: PatchFeatures) -> None: ...

    def maps(self, features: Tensor, index: np.ndarray) -> Tensor: ...


def make_scorer(config: DetectConfig) -> Scorer:
    """The scorer `config.method` names, with its options from `config`."""
    if config.method == "bank":
        return PileBank(config.bank_images, config.bank_share, config.denoise, config.seed, config.batch_size)
    own = SelfSimilarity(config.self_radius)
    others = Mutual(config.references, config.mutual_band, config.seed, config.batch_size, config.window or None)
    return {"self": own, "mutual": others, "fused": Fused(own, others)}[config.method]


__all__ = ["Fused", "Mutual", "PileBank", "Scorer", "SelfSimilarity", "make_scorer"]
