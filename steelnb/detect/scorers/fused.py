"""Two scorers at once: each image's own other patches (`self`) and the other images' (`mutual`), both maps kept.

The features of a batch are extracted once and given to both; `maps` returns (B, 2, h, w), which
`detect.fusion.log_maps` joins into one map on a common scale. What one scorer misses the other may see: a
defect that repeats across the pile stays unlike the rest of its own image, and a place unlike its own image
but like every other image's (an edge, a fixture) is normal to `mutual`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ...patches import PatchFeatures
from .mutual import Mutual
from .self_similarity import SelfSimilarity


class Fused:
    """`self` and `mutual` side by side: maps (B, 2, h, w)."""

    def __init__(self, own: SelfSimilarity, others: Mutual) -> None:
        self.scorers = (own, others)

    def prepare(self, images: np.ndarray, features: PatchFeatures) -> None:
        for scorer in self.scorers:
            scorer.prepare(images, features)

    def maps(self, features: Tensor, index: np.ndarray) -> Tensor:
        return torch.stack([scorer.maps(features, index) for scorer in self.scorers], 1)
