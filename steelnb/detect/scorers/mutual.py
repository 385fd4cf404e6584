"""Mutual scoring (after MuSc, Li et al., ICLR 2024): each image's patches against R other images of the pile.

For a patch of image i and each of R reference images j, take the distance to the nearest patch of j; the
patch's score is the mean of the lowest `band` share of those R distances (MuSc's interval average). A defect
patch is far from most images; a normal patch is near many, and the few images that share a defect do not
pull its score down as long as they stay out of the lowest band. The references are R + 1 images drawn once
(an image among them is scored against the other R); their patches are kept every second cell to bound the
memory and time, R x (h w)^2 / 4 distances an image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ...patches import PatchFeatures
from ...progress import progress
from ..errors import DetectError

STEP = 2  # reference patches are kept every STEP cells in both directions


class Mutual:
    """Score each patch by the interval mean of its nearest-patch distances to R reference images."""

    def __init__(self, references: int = 24, band: float = 0.3, seed: int = 0, batch_size: int = 8) -> None:
        self.references, self.band, self.seed, self.batch_size = references, band, seed, batch_size
        self.chosen: np.ndarray | None = None
        self.patches: Tensor | None = None  # (R + 1, Q, D)

    def prepare(self, images: np.ndarray, features: PatchFeatures) -> None:
        n = len(images)
        if n < 2:
            raise DetectError(f"the mutual method needs at least 2 images, the pile has {n}; use --method self")
        rng = np.random.default_rng(self.seed)
        self.chosen = np.sort(rng.choice(n, min(self.references + 1, n), replace=False))
        grids = []
        starts = range(0, len(self.chosen), self.batch_size)
        for start in progress(starts, f"mutual: patches of {len(self.chosen)} reference images", unit="batch"):
            grid = features(images[self.chosen[start:start + self.batch_size]])
            grids.append(grid[:, ::STEP, ::STEP].reshape(len(grid), -1, grid.shape[-1]).cpu())
        self.patches = torch.cat(grids)

    def maps(self, features: Tensor, index: np.ndarray) -> Tensor:
        if self.patches is None:
            raise RuntimeError("Mutual.maps before prepare")
        b, h, w, d = features.shape
        reference_norms = self.patches.pow(2).sum(-1)  # (R + 1, Q)
        out = torch.empty(b, h * w)
        for row, image in enumerate(index):
            others = np.flatnonzero(self.chosen != image)[:self.references]
            query = features[row].reshape(h * w, d).float().cpu()
            query_norms = query.pow(2).sum(1, keepdim=True)
            nearest = torch.stack([
                (query_norms + reference_norms[j][None] - 2 * query @ self.patches[j].T).min(1).values
                for j in others]).clamp_(min=0).sqrt().sort(0).values  # (R, P), ascending over references
            out[row] = nearest[:max(1, math.ceil(self.band * len(others)))].mean(0)
        return out.view(b, h, w)
