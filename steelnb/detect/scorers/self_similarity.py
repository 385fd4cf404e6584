"""Self-similarity: each patch against the other patches of its own image, outside a radius around it.

A surface's texture repeats across the image; a defect is a place unlike the rest of its image. The score of a
patch is its distance to the nearest patch of the same image lying more than `radius` cells away in either
direction (so a defect cannot match itself or its own surroundings). Nothing else in the pile is used: the
score does not depend on how many other images share the defect, and a pile of one image works.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from ...errors import SteelnbWarning

BLOCK = 1 << 24  # query x patch distances computed at once (64 MiB of float32): bounds memory at any image size


class SelfSimilarity:
    """Score each patch by its distance to the nearest patch of its image outside `radius` cells (several radii from
    one distance matrix: `maps_at`)."""

    def __init__(self, radius: int = 6) -> None:
        self.radius = radius

    def prepare(self, images: np.ndarray, features) -> None:
        """Nothing to prepare: every image is its own reference."""

    def maps(self, features: Tensor, index: np.ndarray) -> Tensor:
        return self.maps_at(features, (self.radius,))[:, 0]

    def maps_at(self, features: Tensor, radii: tuple[int, ...]) -> Tensor:
        """(B, len(radii), h, w) maps of `features` (B, h, w, d) at each of `radii` (ascending): each chunk's
        distances computed once, the cells within each radius masked in turn (a larger radius masks more)."""
        if list(radii) != sorted(radii):
            raise ValueError(f"radii must ascend, got {radii}")
        b, h, w, d = features.shape
        used = [_fitted(radius, h, w) for radius in radii]
        rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.int16), torch.arange(w, dtype=torch.int16),
                                    indexing="ij")
        rows, cols = rows.flatten(), cols.flatten()
        chunk = max(1, BLOCK // (h * w))
        out = torch.empty(b, len(radii), h * w)
        for image in range(b):
            flat = features[image].reshape(h * w, d).float().cpu()
            norms = flat.pow(2).sum(1)
            for start in range(0, h * w, chunk):
                query = slice(start, start + chunk)
                squared = (norms[query, None] + norms[None] - 2 * flat[query] @ flat.T).clamp_(min=0)
                apart = torch.maximum((rows[query, None] - rows[None]).abs(), (cols[query, None] - cols[None]).abs())
                for i, radius in enumerate(used):
                    nearest = squared.masked_fill_(apart <= radius, float("inf")).min(1).values
                    out[image, i, query] = torch.where(torch.isfinite(nearest), nearest, 0).sqrt()
        return out.view(b, len(radii), h, w)


def _fitted(radius: int, h: int, w: int) -> int:
    """`radius`, shrunk (with a warning) where the h x w grid would leave a patch nothing to compare with."""
    fitted = min(radius, (max(h, w) - 1) // 2)
    if fitted < radius:
        warnings.warn(f"self: the {h} x {w} grid is too small for --self-radius {radius} (used {fitted}); "
                      "read the images larger (--max-side) or take finer --strides", SteelnbWarning, stacklevel=4)
    return fitted
