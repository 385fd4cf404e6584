"""Mutual scoring (after MuSc, Li et al., ICLR 2024): each image's patches against R other images of the pile.

For a patch of image i and each of R reference images j, take the distance to the nearest patch of j; the
patch's score is the mean of the lowest `band` share of those R distances (MuSc's interval average). A defect
patch is far from most images; a normal patch is near many, and the few images that share a defect do not
pull its score down as long as they stay out of the lowest band. The references are R + 1 images drawn once
(an image among them is scored against the other R); their patches are kept every second cell to bound the
memory and time, R x (h w)^2 / 4 distances an image. With a `window` (a share of the grid's height and width),
a patch meets only the reference patches near its own place (`positional.py`): border cells meet border cells.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ...patches import PatchFeatures
from ...progress import progress
from ..errors import DetectError
from .positional import nearest_in_window

STEP = 2  # reference patches are kept every STEP cells in both directions


class Mutual:
    """Score each patch by the interval mean of its nearest-patch distances to R reference images."""

    def __init__(self, references: int = 24, band: float = 0.3, seed: int = 0, batch_size: int = 8,
                 window: float | None = None) -> None:
        self.references, self.band, self.seed, self.batch_size = references, band, seed, batch_size
        self.window = window
        self.chosen: np.ndarray | None = None
        self.patches: Tensor | None = None  # (R + 1, h', w', D)

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
            grids.append(grid[:, ::STEP, ::STEP].cpu())
        self.patches = torch.cat(grids)  # (R + 1, h', w', D)

    def maps(self, features: Tensor, index: np.ndarray) -> Tensor:
        if self.patches is None:
            raise RuntimeError("Mutual.maps before prepare")
        features = features.float().cpu()
        nearest = torch.stack([nearest_in_window(features, reference, STEP, self.window)
                               for reference in self.patches])  # (R + 1, B, h, w)
        nearest[self._left_out(np.asarray(index))] = float("inf")
        kept = max(1, math.ceil(self.band * min(self.references, len(self.chosen) - 1)))
        return nearest.sort(0).values[:kept].mean(0)

    def _left_out(self, index: np.ndarray) -> Tensor:
        """(R + 1, B) True for the reference each image is not scored against: itself where it is one, else the
        last, so that every image meets R others."""
        left_out = self.chosen[:, None] == index[None]
        if len(self.chosen) > self.references:
            left_out[-1, ~left_out.any(0)] = True
        return torch.from_numpy(left_out)
