"""The detection lab's piles: the shared ones read as `steelnb detect` reads them, and a pair built from DAGM.

`edge` / `inside`: DAGM class 1's defect-free images, with the defects of its defective images (their weak-label
ellipses, softened) pasted into 60 of them, touching an image edge in `edge` and well inside in `inside`. Same
images, same defects, same seed: only the place differs, so the two AUROCs say what an edge costs. Built on the
fly from ../shared/datasets (nothing is written or committed).

>>> sorted(PILES)
['dagm', 'edge', 'inside', 'ksdd', 'severstal', 'synthetic']
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from steelnb.data import Fit, ImageSet, load_dataset
from steelnb.data.masks import defect_masks

PILES = ("synthetic", "ksdd", "dagm", "severstal", "edge", "inside")
MAX_SIDE = {"synthetic": 256}  # as `make run` reads it; every other pile at the default 512
PASTED = 60


def load_pile(name: str, data_root: str, max_side: int = 512) -> ImageSet:
    """Pile `name` at the detect default reading (the pile's own aspect, longer side <= max_side)."""
    if name in ("edge", "inside"):
        return pasted_pile(data_root, name == "edge", max_side)
    side = MAX_SIDE.get(name, max_side)
    return load_dataset(name, data_root if name != "synthetic" else None, Fit(side, 32))


def pasted_pile(data_root: str, at_edge: bool, max_side: int = 512, seed: int = 0) -> ImageSet:
    """DAGM's defect-free images, PASTED of them carrying a real defect moved to an edge (or inside)."""
    dagm = load_dataset("dagm", data_root, Fit(max_side, 32))
    masks = defect_masks(dagm)
    rng = np.random.default_rng(seed)
    sources = np.flatnonzero((dagm.defective == 1) & masks.any(axis=(1, 2)))
    normal = np.flatnonzero(dagm.defective == 0)
    targets = rng.choice(normal, PASTED, replace=False)
    images = dagm.images[normal].copy()
    defective = np.zeros(len(normal), np.int8)
    for target, source in zip(targets, rng.choice(sources, PASTED, replace=True), strict=True):
        row = int(np.flatnonzero(normal == target)[0])
        images[row] = _paste(images[row], dagm.images[source], masks[source], at_edge, rng)
        defective[row] = 1
    name = "dagm-edge" if at_edge else "dagm-inside"
    labels = defective.astype(np.int64)
    return ImageSet(name, images, labels, defective, ("defect-free", "defective"),
                    tuple(f"{name}/{i:04d}" for i in range(len(images))))


def _paste(target: np.ndarray, source: np.ndarray, mask: np.ndarray, at_edge: bool,
           rng: np.random.Generator) -> np.ndarray:
    """`source`'s defect (its mask, feathered) moved onto `target`, its centre at an edge or in the middle half."""
    alpha = ndimage.gaussian_filter(ndimage.binary_dilation(mask, iterations=4).astype(np.float32), 3)
    ys, xs = np.nonzero(mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    height, width = mask.shape
    if at_edge:
        side = rng.integers(4)
        ty = [0, height - 1, rng.integers(height), rng.integers(height)][side]
        tx = [rng.integers(width), rng.integers(width), 0, width - 1][side]
    else:
        ty, tx = rng.integers(height // 4, 3 * height // 4), rng.integers(width // 4, 3 * width // 4)
    shifted_alpha = _shift(alpha, ty - cy, tx - cx)
    shifted = _shift(source.astype(np.float32), ty - cy, tx - cx)
    out = target.astype(np.float32) * (1 - shifted_alpha) + shifted * shifted_alpha
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def _shift(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`array` moved by (dy, dx) over its last two axes, zeros where nothing moved in."""
    out = np.zeros_like(array)
    height, width = array.shape[-2:]
    ys, yd = (slice(0, height - dy), slice(dy, height)) if dy >= 0 else (slice(-dy, height), slice(0, height + dy))
    xs, xd = (slice(0, width - dx), slice(dx, width)) if dx >= 0 else (slice(-dx, width), slice(0, width + dx))
    out[..., yd, xd] = array[..., ys, xs]
    return out
