"""The pile's own memory bank: patches sampled from reference images of the pile, in two halves.

`bank_images` images are drawn from the pile and split into two halves; from each a share of its patches is
sampled into its half's bank. Every image of the pile belongs to one half (references to theirs, the others at
random) and is scored against the OTHER half's bank, so no image is ever compared with its own patches and
every score comes from a bank of the same size and kind. A defective reference brings its defect's patches
into a bank: defects are assumed rare and varied enough that few test defects find their like there.
`denoise` (after SoftPatch, Jiang et al., NeurIPS 2022) drops that share of each bank's patches that lie
farthest from their `NEIGHBOURS`-th nearest patch of another image: patches like no other image's.
"""

from __future__ import annotations

import faiss
import numpy as np
import torch
from torch import Tensor

from ...patches import PatchFeatures
from ...progress import progress
from ..errors import DetectError

NEIGHBOURS = 16  # denoise: a patch is an outlier by its distance to this many-th nearest patch of other images
BLAS_FROM = 20  # a flat index's search goes through BLAS from this many queries (faiss's documented default; the
faiss.cvar.distance_compute_blas_threshold = BLAS_FROM  # wheel's 128,000 is 8x slower per pair below ~2,000)


class PileBank:
    """Score each image's patches by their distance to the nearest patch of the other half's bank."""

    def __init__(self, images: int = 256, share: float = 0.03, denoise: float = 0.0, seed: int = 0,
                 batch_size: int = 8) -> None:
        self.images, self.share, self.denoise = images, share, denoise
        self.seed, self.batch_size = seed, batch_size
        self.half: np.ndarray | None = None
        self.banks: list[faiss.Index] = []

    def prepare(self, images: np.ndarray, features: PatchFeatures) -> None:
        """Draw the references, sample their patches into two banks, optionally drop outlying patches."""
        n = len(images)
        if n < 2:
            raise DetectError(f"the bank method needs at least 2 images, the pile has {n}; use --method self")
        rng = np.random.default_rng(self.seed)
        references = np.sort(rng.choice(n, min(self.images, n), replace=False))
        self.half = rng.integers(0, 2, n)
        self.half[references] = rng.permutation(len(references)) % 2
        patches: list[list[np.ndarray]] = [[], []]
        owners: list[list[np.ndarray]] = [[], []]
        starts = range(0, len(references), self.batch_size)
        for start in progress(starts, f"bank: patches of {len(references)} reference images", unit="batch"):
            chosen = references[start:start + self.batch_size]
            for image, grid in zip(chosen, features(images[chosen]), strict=True):
                flat = grid.reshape(-1, grid.shape[-1]).cpu().numpy()
                keep = rng.choice(len(flat), max(1, round(self.share * len(flat))), replace=False)
                patches[self.half[image]].append(flat[keep])
                owners[self.half[image]].append(np.full(len(keep), image))
        self.banks = [self._bank(np.concatenate(p), np.concatenate(o)) for p, o in zip(patches, owners, strict=True)]

    def _bank(self, patches: np.ndarray, owners: np.ndarray) -> faiss.Index:
        if self.denoise > 0:
            patches = patches[~outlying(patches, owners, self.denoise)]
        return flat_index(patches)

    def maps(self, features: Tensor, index: np.ndarray) -> Tensor:
        """Distance of every patch to its nearest patch in the bank of the half its image is not in."""
        if self.half is None:
            raise RuntimeError("PileBank.maps before prepare")
        return other_half_maps(self.banks, self.half[np.asarray(index)], features.cpu().numpy())


def flat_index(patches: np.ndarray) -> faiss.Index:
    """An exact (flat) L2 nearest-neighbour index over `patches` (M, D)."""
    index = faiss.IndexFlatL2(patches.shape[1])
    index.add(np.ascontiguousarray(patches, np.float32))
    return index


def other_half_maps(banks: list[faiss.Index], halves: np.ndarray, features: np.ndarray) -> Tensor:
    """(B, h, w) distance of each patch of `features` (B, h, w, D) to its nearest patch in `banks[1 - half]`,
    `halves` (B,) being each image's half: the images of one half are searched at once.

    >>> banks = [flat_index(np.zeros((1, 2))), flat_index(np.ones((1, 2)))]
    >>> other_half_maps(banks, np.array([0, 1]), np.zeros((2, 1, 1, 2))).flatten().tolist()  # meets [1, 1], [0, 0]
    [1.4142135381698608, 0.0]
    """
    b, h, w, d = features.shape
    flat = features.reshape(b, h * w, d)
    out = np.empty((b, h * w), np.float32)
    for side in (0, 1):
        rows = np.flatnonzero(halves == side)
        if len(rows):
            squared, _ = banks[1 - side].search(np.ascontiguousarray(flat[rows].reshape(-1, d), np.float32), 1)
            out[rows] = np.sqrt(np.maximum(squared[:, 0], 0)).reshape(len(rows), h * w)
    return torch.from_numpy(out).view(b, h, w)


def outlying(patches: np.ndarray, owners: np.ndarray, share: float) -> np.ndarray:
    """Mask of the `share` of `patches` farthest from their NEIGHBOURS-th nearest patch of another image."""
    index = faiss.IndexFlatL2(patches.shape[1])
    index.add(np.ascontiguousarray(patches, np.float32))
    wanted = min(len(patches), 4 * NEIGHBOURS)
    squared, found = index.search(np.ascontiguousarray(patches, np.float32), wanted)
    squared = np.where(owners[found] != owners[:, None], squared, np.inf)
    squared.sort(axis=1)
    kth = squared[:, min(NEIGHBOURS, wanted) - 1]
    kth = np.where(np.isfinite(kth), kth, np.inf)  # fewer others found than asked for: as far as can be
    order = np.argsort(kth, kind="stable")
    mask = np.zeros(len(patches), bool)
    mask[order[len(patches) - int(share * len(patches)):]] = True
    return mask
