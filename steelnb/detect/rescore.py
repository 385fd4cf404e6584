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
>>> bank.update(4, np.array([0, 1, 2]), lambda index: features[index], np.arange(4))
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
from .scorers.bank import flat_index

KEEP_BYTES = 2 << 30  # the first pass keeps its shard's features (float16) for the second up to this, else re-extracts


def clean_images(scores: np.ndarray, share: float) -> np.ndarray:
    """Indices of the `share` of the pile with the lowest first-pass scores (sorted; ties by position).

    >>> clean_images(np.array([5.0, 1.0, 3.0, 2.0]), 0.5).tolist()
    [1, 3]
    """
    count = int(share * len(scores))
    return np.sort(np.argsort(scores, kind="stable")[:count])


class CleanBank:
    """Patches of the clean images in two half-banks; `maps` gives each patch's distance to the nearest patch of the
    half its image is not in. `update` moves the bank to a round's clean images; after each update `maps` meets
    every image of the shard once.

    A later round's clean images are mostly the last round's (5-11 % new on the real piles), each sampled as before
    (seeded by its index) and kept in its half; the images new to the bank take the halves of those that left it.
    So a patch's nearest bank patch is the nearer of the one it had, where that one's image is still in the bank,
    and the nearest of the new images' patches: only the patches whose nearest left, and every patch of an image
    whose half changed, are searched against the whole half again. The same distances as a bank built afresh with
    these halves (up to float32 rounding), at a fraction of the search (`full_share`). A bank built afresh each
    round (before 705982b) drew the second round's halves anew: the same pile's maps then differ as under another
    seed of the bank.
    """

    def __init__(self, patches: int, seed: int, batch_size: int = 8) -> None:
        self.patches, self.seed, self.batch_size = patches, seed, batch_size
        self.half: np.ndarray | None = None
        self.clean = np.empty(0, np.int64)
        self.rounds = 0
        self.sample: list[np.ndarray] = []  # per half: (M, D) float16 patches
        self.owners: list[np.ndarray] = []  # per half: (M,) the image each came from
        self.banks: list[faiss.Index] = []  # per half: all its patches
        self.new: list[tuple[faiss.Index, np.ndarray] | None] = []  # per half, after the first round: the new
        # images' patches and their owners
        self.left = np.empty(0, np.int64)  # the images that left the bank in the last update
        self.moved: set[int] = set()  # the images whose half changed in the last update
        self.nearest: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}  # image -> the round, each patch's
        # distance and its owner
        self.searched = [0, 0]  # after the first round: patches searched against a whole half, patches met

    def update(self, n: int, clean: np.ndarray, features: Callable[[np.ndarray], Tensor], mine: np.ndarray) -> None:
        """Make `clean` (of a pile of `n`) the bank's images: sample `patches` // len(clean) patches of each image new
        to the bank in this process's shard `mine` (features by image index), gather every process's samples."""
        if len(clean) < 2:
            raise ValueError(f"the clean bank needs at least 2 clean images, got {len(clean)}")
        if self.half is None or len(clean) != len(self.clean):
            self._start(n, clean)
        elif np.array_equal(clean, self.clean):  # the same images: the same bank, nothing new to meet
            self.left, self.moved, self.new = np.empty(0, np.int64), set(), [None, None]
            return
        arrived, self.left = np.setdiff1d(clean, self.clean), np.setdiff1d(self.clean, clean)
        before = self.half.copy()
        if len(self.left):  # a later round: as many arrived as left
            self.half[np.random.default_rng([self.seed, self.rounds]).permutation(arrived)] = self.half[self.left]
        self.moved = {int(image) for image in arrived[self.half[arrived] != before[arrived]]}
        patches, owners = sampled_patches(arrived, max(1, self.patches // len(clean)), features, mine, self.seed,
                                          self.batch_size)
        self._rebuild(patches, owners)
        self.clean, self.rounds = clean, self.rounds + 1

    def _rebuild(self, patches: np.ndarray, owners: np.ndarray) -> None:
        """Both halves: the patches of the images that stayed and the arrivals' (`patches`, `owners`); after the first
        round, the arrivals' own index beside (`new`)."""
        first = not self.owners
        theirs = [self.half[owners] == side for side in (0, 1)]
        stayed = [np.ones(0, bool) if first else ~np.isin(self.owners[side], self.left) for side in (0, 1)]
        self.sample = [np.concatenate([patches[:0] if first else self.sample[side][stayed[side]], patches[mask]])
                       for side, mask in enumerate(theirs)]
        self.owners = [np.concatenate([owners[:0] if first else self.owners[side][stayed[side]], owners[mask]])
                       for side, mask in enumerate(theirs)]
        self.banks = [flat_index(sample) for sample in self.sample]
        self.new = [None if first or not mask.any() else (flat_index(patches[mask]), owners[mask]) for mask in theirs]

    def _start(self, n: int, clean: np.ndarray) -> None:
        """An empty bank whose halves split the clean images evenly (the others' at random), seeded."""
        self.half = split_halves(n, clean, np.random.default_rng(self.seed))
        self.clean, self.rounds, self.sample, self.owners = np.empty(0, np.int64), 0, [], []
        self.nearest, self.searched = {}, [0, 0]

    def maps(self, features: Tensor, index: np.ndarray) -> Tensor:
        """(B, h, w) distance of every patch to its nearest patch in the half-bank its image is not in (the
        features rounded to float16 first, as the bank's were): what a patch met before, where its nearest is still
        in the bank, against the new patches only; the rest against the whole half (one search a half, a batch)."""
        if self.half is None:
            raise RuntimeError("CleanBank.maps before update")
        index = np.asarray(index)
        rounded = features.cpu().numpy().astype(np.float16).astype(np.float32)
        b, h, w, d = rounded.shape
        queries = rounded.reshape(b, h * w, d)
        distance, owner = self._known(index, h * w)
        again = np.isin(owner, self.left) | (owner < 0)
        for side in (0, 1):
            meets = (self.half[index] != side)[:, None]  # the images that meet this half
            if (full := again & meets).any():
                distance[full], owner[full] = _search(self.banks[side], self.owners[side], queries[full])
            if self.new[side] is not None and (rest := ~again & meets).any():
                near, whose = _search(*self.new[side], queries[rest])
                nearer = near < distance[rest]
                distance[rest], owner[rest] = np.where(nearer, near, distance[rest]), np.where(nearer, whose,
                                                                                               owner[rest])
        if self.rounds > 1:
            self.searched = [self.searched[0] + int(again.sum()), self.searched[1] + again.size]
        self.nearest.update((int(image), (self.rounds, distance[row].copy(), owner[row].copy()))
                            for row, image in enumerate(index))
        return torch.from_numpy(distance).view(b, h, w)

    def _known(self, index: np.ndarray, patches: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, P) distance of each patch to its nearest bank patch and that patch's image, as met in the round
        before (inf and -1 where the image did not meet it then, or its half changed)."""
        distance, owner = np.full((len(index), patches), np.inf, np.float32), np.full((len(index), patches), -1,
                                                                                        np.int32)
        for row, image in enumerate(index):
            met, *found = self.nearest.get(int(image), (None, None, None))
            if met == self.rounds - 1 and int(image) not in self.moved:
                distance[row], owner[row] = found
        return distance, owner

    def full_share(self) -> float | None:
        """Share of the patches met after the first round, on every process, that were searched against a whole
        half (None before a second round); every process must ask."""
        searched, met = distributed.gather(np.array([self.searched], np.int64)).sum(0).tolist()
        return searched / met if met else None

    @property
    def size(self) -> int:
        """Patches in the bank, both halves."""
        return sum(index.ntotal for index in self.banks)


def split_halves(n: int, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each of `n` images' half (0 or 1): the `clean` images split evenly, the others at random.

    >>> np.bincount(split_halves(10, np.arange(6), np.random.default_rng(0))[:6]).tolist()
    [3, 3]
    """
    half = rng.integers(0, 2, n)
    half[clean] = rng.permutation(len(clean)) % 2
    return half


def sampled_patches(images: np.ndarray, per_image: int, features: Callable[[np.ndarray], Tensor], mine: np.ndarray,
                    seed: int, batch_size: int, dtype: type = np.float16, what: str = "rescore"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(M, D) patches (`dtype`), `per_image` of each of `images` in the shard `mine` (features by image index), each
    image's draw seeded by `seed` and its index, gathered from every process in rank order; and the image each came
    from. The same pile gives the same sample on any number of processes."""
    owned = np.intersect1d(images, mine)
    sampled: list[np.ndarray] = []
    starts = range(0, len(owned), batch_size)
    for start in progress(starts, f"{what}: patches of {len(owned)} clean images", unit="batch"):
        index = owned[start:start + batch_size]
        for image, grid in zip(index, features(index), strict=True):
            flat = grid.reshape(-1, grid.shape[-1]).cpu().numpy().astype(dtype)
            sampled.append(flat[np.random.default_rng([seed, int(image)]).permutation(len(flat))[:per_image]])
    owners = [np.full(len(part), image, np.int32) for image, part in zip(owned, sampled, strict=True)]
    return (distributed.gather(np.concatenate(sampled) if sampled else np.empty((0, 0), dtype)),
            distributed.gather(np.concatenate(owners) if owners else np.empty(0, np.int32)))


def _search(bank: faiss.Index, owners: np.ndarray, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each of `patches` to its nearest in `bank` and the image that patch came from."""
    squared, found = bank.search(np.ascontiguousarray(patches, np.float32), 1)
    return np.sqrt(np.maximum(squared[:, 0], 0)).astype(np.float32), owners[found[:, 0]]


class KeptFeatures:
    """The first pass's patch features of this process's images (by image index), kept (float16) for the second pass and
    the discriminator while the shard's would fit in KEEP_BYTES (a process's own budget, judged from the first batch),
    else extracted again when asked for (each round then costs the clean images' and the shard's forward passes again);
    with `enabled` False (no second pass, whitening or discriminator) nothing is kept. `transform` (the whitening, once
    fitted) applies to every feature handed out. Each image's look, its mean patch feature as first extracted, is kept
    even when nothing else is, for its peers (peers.py)."""

    def __init__(self, extract: Callable[[np.ndarray], Tensor], shard: int, enabled: bool = True) -> None:
        self.extract, self.shard, self.budget = extract, shard, KEEP_BYTES
        self.transform: Callable[[Tensor], Tensor] | None = None
        self.kept: dict[int, Tensor] = {}
        self.looks: dict[int, np.ndarray] = {}
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
        self.looks.update((int(i), grid.float().mean((0, 1)).cpu().numpy()) for i, grid in zip(index, features,
                                                                                                strict=True))
        return self._transformed(features)

    def pile_looks(self, mine: np.ndarray) -> np.ndarray:
        """(N, D) the look of every image of the pile, this process's shard `mine` gathered with the others'."""
        return distributed.gather(np.stack([self.looks[int(i)] for i in mine]) if len(mine) else
                                  np.empty((0, 0), np.float32))

    def again(self, index: np.ndarray) -> Tensor:
        """The features of `index` for the second pass and the discriminator: as kept, or extracted again and
        rounded to float16 as the kept ones are, so that a pile's answer does not depend on whether they fitted (the
        discriminator's training would amplify the rounding: 13 % of a score on a test pile)."""
        if self.keeping:
            return self._transformed(torch.stack([self.kept[int(i)] for i in index]).float())
        return self._transformed(self.extract(index).half().float())

    def _transformed(self, features: Tensor) -> Tensor:
        return features if self.transform is None else self.transform(features)

    def record(self) -> str:
        mib = self.needed / 2**20
        return (f"kept in memory ({mib:.0f} MiB)" if self.keeping else
                f"extracted again (keeping them would take {mib:.0f} MiB, over {self.budget / 2**20:.0f})")
