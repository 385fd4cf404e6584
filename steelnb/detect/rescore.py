"""Clean-then-rescore: the images the first pass calls most normal lend their patches to every image's references.

The first pass (`self`) measures each patch only against its own image, so a place unlike the rest of its image
but common in the pile (the centre of a woven pattern, a part's fixture) scores high there. The second pass gives
every patch a second set of references: a bank of patches sampled from the share of the pile that the first pass
ranks most normal (after SoftPatch and InReaCh: references rebuilt from what looks clean), and keeps the nearer
of its two distances, its own image's and the bank's: one nearest-neighbour search over both sets, in the same
feature space. A defect stays far from both; a pattern the pile shares finds its like in the bank. The bank is
split in two halves by image and each image meets the half it is not in, so no image meets its own patches.

Every choice is seeded per image, not per process: the same pile gives the same bank under torchrun on any
number of processes (each samples its own shard's clean images; the samples are gathered). The lab chose the
share and the bank's size (benchmarks/detect_rescore.py, results/detect/rescore.md).

>>> import torch
>>> features = torch.zeros(4, 2, 2, 3); features[3, 0, 0] = 5.0  # image 3 holds one odd patch
>>> bank = CleanBank(patches=8, seed=0)
>>> bank.build(4, np.array([0, 1, 2]), lambda index: features[index], np.arange(4))
>>> (bank.maps(features, np.arange(4))[3] > 0).flatten().tolist()  # the odd patch is far from the clean images
[True, False, False, False]
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np
import torch
from torch import Tensor

from .. import distributed
from ..progress import progress
from .scorers.bank import flat_index, other_half_maps

KEEP_BYTES = 2 << 30  # the first pass keeps its shard's features (float16) for the second up to this, else re-extracts


def clean_images(scores: np.ndarray, share: float) -> np.ndarray:
    """Indices of the `share` of the pile with the lowest first-pass scores (sorted; ties by position).

    >>> clean_images(np.array([5.0, 1.0, 3.0, 2.0]), 0.5).tolist()
    [1, 3]
    """
    count = int(share * len(scores))
    return np.sort(np.argsort(scores, kind="stable")[:count])


class CleanBank:
    """Patches of the clean images in two half-banks; `maps` gives each patch's distance to the other half."""

    def __init__(self, patches: int, seed: int, batch_size: int = 8) -> None:
        self.patches, self.seed, self.batch_size = patches, seed, batch_size
        self.half: np.ndarray | None = None
        self.banks: list[faiss.Index] = []

    def build(self, n: int, clean: np.ndarray, features: Callable[[np.ndarray], Tensor], mine: np.ndarray) -> None:
        """Sample `patches` // len(clean) patches of each clean image of this process's shard `mine` (features
        by image index), gather every process's samples and index both halves."""
        if len(clean) < 2:
            raise ValueError(f"the clean bank needs at least 2 clean images, got {len(clean)}")
        rng = np.random.default_rng(self.seed)
        self.half = rng.integers(0, 2, n)
        self.half[clean] = rng.permutation(len(clean)) % 2
        per_image = max(1, self.patches // len(clean))
        owned = np.intersect1d(clean, mine)
        sampled: list[np.ndarray] = []
        halves: list[np.ndarray] = []
        starts = range(0, len(owned), self.batch_size)
        for start in progress(starts, f"rescore: patches of {len(clean)} clean images", unit="batch"):
            index = owned[start:start + self.batch_size]
            for image, grid in zip(index, features(index), strict=True):
                flat = grid.reshape(-1, grid.shape[-1]).cpu().numpy().astype(np.float16)
                sampled.append(flat[np.random.default_rng([self.seed, int(image)]).permutation(len(flat))[:per_image]])
                halves.append(np.full(len(sampled[-1]), self.half[image], np.int8))
        patches = distributed.gather(np.concatenate(sampled) if sampled else np.empty((0, 0), np.float16))
        which = distributed.gather(np.concatenate(halves) if halves else np.empty(0, np.int8))
        self.banks = [flat_index(patches[which == side]) for side in (0, 1)]

    def maps(self, features: Tensor, index: np.ndarray) -> Tensor:
        """(B, h, w) distance of every patch to its nearest patch in the half-bank its image is not in (the
        features rounded to float16 first, as the bank's were)."""
        if self.half is None:
            raise RuntimeError("CleanBank.maps before build")
        rounded = features.cpu().numpy().astype(np.float16).astype(np.float32)
        return other_half_maps(self.banks, self.half[np.asarray(index)], rounded)


class KeptFeatures:
    """The first pass's patch features of this process's images (by image index), kept (float16) for the second
    pass while the shard's would fit in KEEP_BYTES (a process's own budget, judged from the first batch), else
    extracted again when asked for (each round then costs the clean images' and the shard's forward passes again);
    with `enabled` False (no second pass, no whitening) nothing is kept. `transform` (the whitening, once fitted)
    applies to every feature handed out."""

    def __init__(self, extract: Callable[[np.ndarray], Tensor], shard: int, enabled: bool = True) -> None:
        self.extract, self.shard, self.budget = extract, shard, KEEP_BYTES
        self.transform: Callable[[Tensor], Tensor] | None = None
        self.kept: dict[int, Tensor] = {}
        self.keeping: bool | None = None if enabled else False
        self.needed = 0  # bytes the shard's features take as float16

    def __call__(self, index: np.ndarray) -> Tensor:
        """The first pass's features of `index` (full precision), kept where they fit."""
        features = self.extract(index)
        if self.keeping is None:
            self.needed = features[0].numel() * 2 * self.shard
            self.keeping = self.needed <= self.budget
        if self.keeping:
            self.kept.update((int(i), grid.half().cpu()) for i, grid in zip(index, features, strict=True))
        return self._transformed(features)

    def again(self, index: np.ndarray) -> Tensor:
        """The features of `index` for the second pass: as kept (float16), or extracted again (the bank rounds both
        the same way)."""
        if self.keeping:
            return self._transformed(torch.stack([self.kept[int(i)] for i in index]).float())
        return self._transformed(self.extract(index))

    def _transformed(self, features: Tensor) -> Tensor:
        return features if self.transform is None else self.transform(features)

    def record(self) -> str:
        mib = self.needed / 2**20
        return (f"kept in memory ({mib:.0f} MiB)" if self.keeping else
                f"extracted again (keeping them would take {mib:.0f} MiB, over {self.budget / 2**20:.0f})")
