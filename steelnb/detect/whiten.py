"""The pile's own whitening of the patch features, fitted on patches of every image (`--whiten`, `self` only).

Plain Euclidean distances between patch features are ruled by the directions in which the pile's patches vary
most: on a woven or ground surface, the texture itself. A defect that differs from its surroundings in a direction
of little variance (a smooth, texture-less smudge on DAGM 1) then lies barely farther from its nearest patch than
the texture's own variations. Whitening measures every direction in the pile's own units: the principal directions
that hold the `keep` share of the patches' variance, each divided by its standard deviation (shrunk towards their
mean by `shrink`); the remaining directions, the smallest, are dropped as noise. It is fitted once per pile, on
patches drawn evenly from all of its images (each image's draw seeded by its index, so the same under torchrun on
any number of processes; a sample of a few images is not enough: on KSDD two draws of 32 images gave AUROC 0.909
and 0.949), and applied to every image's features, so `self` and the clean bank of the second pass measure in the
same space. A flag, not the default: in the lab (benchmarks/detect_whiten.py, results/detect/whiten.md) it lifted
DAGM from 0.952 to 0.971 and moved KSDD from 0.951 to 0.949, and it cost KSDD's decision its MDR target.

>>> import torch
>>> patches = torch.randn(1000, 3) * torch.tensor([10.0, 1.0, 0.01])
>>> whitening = Whitening.fit(patches, keep=0.999)
>>> whitening.projection.shape[1], round(float(whitening(patches).std(0).mean()), 1)
(2, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .. import distributed
from ..progress import progress

FLOOR = 1e-3  # a direction whose variance is under this share of the largest is dropped (float16 rounding noise)
FIT_PATCHES = 100_000  # patches the whitening is fitted on, drawn evenly from every image of the pile


@dataclass
class Whitening:
    """features (..., D) -> ((features - mean) @ projection) (..., K): the kept principal directions, whitened."""

    mean: Tensor  # (D,)
    projection: Tensor  # (D, K)
    patches: int = 0  # how many it was fitted on

    @classmethod
    def fit(cls, patches: Tensor, keep: float, shrink: float = 0.0) -> Whitening:
        """Fitted on `patches` (..., D): the fewest leading principal directions holding `keep` of the variance,
        less those under FLOOR of the largest, each scaled by 1 / sqrt((1 - shrink) x its variance + shrink x their
        mean variance). Patches that do not vary at all are only centred (every distance stays 0)."""
        flat = patches.reshape(-1, patches.shape[-1]).double().cpu()
        if len(flat) < 2:
            raise ValueError(f"whitening needs at least 2 patches, got {len(flat)}")
        mean = flat.mean(0)
        variances, directions = torch.linalg.eigh(torch.cov((flat - mean).T))
        variances, directions = variances.flip(0).clamp(min=0), directions.flip(1)
        if variances[0] == 0:
            return cls(mean.float(), torch.eye(len(mean)), len(flat))
        share = variances.cumsum(0) / variances.sum()
        count = min(int(torch.searchsorted(share, torch.tensor(keep, dtype=share.dtype))) + 1,
                    int((variances >= FLOOR * variances[0]).sum()))
        kept = variances[:count]
        scale = ((1 - shrink) * kept + shrink * kept.mean()).rsqrt()
        return cls(mean.float(), (directions[:, :count] * scale).float(), len(flat))

    def __call__(self, features: Tensor) -> Tensor:
        """(..., D) features -> (..., K), in the pile's units."""
        return (features - self.mean.to(features)) @ self.projection.to(features)


def sampled_patches(grid: Tensor, image: int, count: int, seed: int) -> Tensor:
    """`count` patches of one image's (h, w, D) features, drawn with a seed of its own (the same draw whichever
    process holds the image).

    >>> sampled_patches(torch.arange(12.0).reshape(2, 2, 3), image=0, count=2, seed=0).shape
    torch.Size([2, 3])
    """
    flat = grid.reshape(-1, grid.shape[-1])
    order = np.random.default_rng([seed, image]).permutation(len(flat))[:count]
    return flat[torch.from_numpy(order)].cpu()


def fit_whitening(features: Callable[[np.ndarray], Tensor], mine: np.ndarray, n: int, keep: float, shrink: float,
                  seed: int, batch_size: int = 8, patches: int = FIT_PATCHES) -> Whitening:
    """The whitening of `patches` patches drawn evenly from every image of the pile (`features` by image index;
    this process's shard `mine` of the pile's `n` images, every process's draw gathered), a batch at a time. The
    scoring then reads the float16 copies `features` kept; a pile too large to keep them pays one more forward
    pass (the scoring extracts them again)."""
    per_image = max(1, patches // n)
    drawn: list[Tensor] = []
    starts = range(0, len(mine), batch_size)
    for start in progress(starts, f"whitening: patches of {len(mine)} images", unit="batch"):
        index = mine[start:start + batch_size]
        drawn.extend(sampled_patches(grid, int(image), per_image, seed)
                     for image, grid in zip(index, features(index), strict=True))
    local = torch.cat(drawn).float().numpy() if drawn else np.empty((0, 0), np.float32)
    return Whitening.fit(torch.from_numpy(distributed.gather(local)), keep, shrink)
