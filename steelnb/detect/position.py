"""Position: each grid cell's anomaly values measured against the same cell of the pile's other images.

Every image of a pile is read onto one grid (`data.Fit`), so a cell is one place of the part. Part edges,
padding and fixtures make some places score high in every image; against the pile at that place they are
normal. `zmax` subtracts each cell's median over the pile and divides by the larger of that cell's spread
(1.4826 x MAD) and the whole pile's: a place that always varies a lot is judged by its own spread, a quiet
place is never judged by a spread smaller than the pile's, so quiet cells are not blown up. The result is put
back on the pile's own scale (its median plus that many of its spreads), one affine map for the whole pile, so
that the image scores rank as the z values do and stay positive for the label-free rules. The detection lab
(results/detect/lab.md) chose this on the maps themselves (not their logs), where a defect at an edge keeps its
AUROC within 0.02 of the same defect inside. `none` leaves the maps as they are. `auto` (the default) decides
from the pile: `zmax` where the pile has at least MIN_PILE images and its places hold a pattern that two random
halves of the pile agree on (`position_reliability`: the correlation over cells of the two halves' cell
medians, at least RELIABLE), else `none`: a pile of mixed layouts has no place to be normal at.

>>> import torch
>>> maps = torch.ones(5, 2, 2); maps[:, 0, 0] = 3.0; maps[4, 1, 1] = 2.0
>>> out = cell_normalised(maps, "zmax")
>>> out[:4, 0, 0].tolist(), bool(out[4, 1, 1] > out[:4].max())  # high everywhere at a place: normal there
([1.0, 1.0, 1.0, 1.0], True)
>>> cells_for_pile(maps, "auto")  # 5 images are too few to say what is normal at a place
('none', None)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .decision import MAD_TO_STD, robust_spread

if TYPE_CHECKING:  # the choices (CELLS) are read by DetectConfig, which imports no torch
    from torch import Tensor

CELLS = ("auto", "none", "zmax")
MIN_PILE = 20  # fewer images: no place's median and spread to trust
RELIABLE = 0.5  # the halves' agreement from which a pile's places are taken to be aligned


def cells_for_pile(maps: Tensor, asked: str) -> tuple[str, float | None]:
    """The cell normalisation used on this pile (`asked`, or what `auto` decides) and the pile's
    `position_reliability` (None below MIN_PILE images)."""
    if asked not in CELLS:
        raise ValueError(f"cells must be one of {CELLS}, got {asked!r}")
    reliability = position_reliability(maps) if len(maps) >= MIN_PILE else None
    if asked != "auto":
        return asked, reliability
    return ("zmax" if reliability is not None and reliability >= RELIABLE else "none"), reliability


def position_reliability(maps: Tensor, seed: int = 0) -> float:
    """How far the pile's places hold one pattern: the correlation over cells between the cell medians of two
    seeded random halves of the pile (N, h, w); 0 where either half's medians are flat."""
    order = np.random.default_rng(seed).permutation(len(maps))
    halves = [maps[order[part]].median(0).values.flatten().double()
              for part in (slice(None, len(order) // 2), slice(len(order) // 2, None))]
    first, second = (half - half.mean() for half in halves)
    scale = float(first.norm() * second.norm())
    return round(float(first @ second) / scale, 4) if scale > 0 else 0.0


def cell_normalised(maps: Tensor, how: str = "zmax") -> Tensor:
    """(N, h, w) maps, each cell against the pile at that cell (`how`, `none` or `zmax`: see the module
    docstring; `auto` is decided first by `cells_for_pile`)."""
    if how == "none":
        return maps
    if how != "zmax":
        raise ValueError(f"cells must be none or zmax here, got {how!r}")
    median = maps.median(0).values
    pile_median, pile_spread = robust_spread(maps.flatten().numpy())
    spread = (MAD_TO_STD * (maps - median).abs().median(0).values).clamp(min=max(pile_spread, 1e-6))
    return pile_median + pile_spread * (maps - median) / spread
