"""Position: each grid cell's (log) anomaly values measured against the same cell of the pile's other images.

Every image of a pile is read onto one grid (`data.Fit`), so a cell is one place of the part. Part edges,
padding and fixtures make some places score high in every image; against the pile at that place they are
normal. `zmax` subtracts each cell's median over the pile and divides by the larger of that cell's spread
(1.4826 x MAD) and the whole pile's: a place that always varies a lot is judged by its own spread, a quiet
place is never judged by a spread smaller than the pile's, so a defect at an edge is not divided away any more
than one inside, and quiet cells are not blown up. `none` leaves the maps as they are.

>>> import torch
>>> log_maps = torch.zeros(5, 2, 2); log_maps[:, 0, 0] = 3.0; log_maps[4, 1, 1] = 2.0
>>> out = cell_normalised(log_maps, "zmax")
>>> out[:4, 0, 0].tolist(), out[4, 1, 1].item() > 0  # a place high in every image is normal, the one-off is not
([0.0, 0.0, 0.0, 0.0], True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .decision import MAD_TO_STD

if TYPE_CHECKING:  # the choices (CELLS) are read by DetectConfig, which imports no torch
    from torch import Tensor

CELLS = ("none", "zmax")


def cell_normalised(log_maps: Tensor, how: str = "zmax") -> Tensor:
    """(N, h, w) log maps, each cell against the pile at that cell (`how`: see the module docstring)."""
    if how == "none":
        return log_maps
    if how != "zmax":
        raise ValueError(f"cells must be one of {CELLS}, got {how!r}")
    median = log_maps.median(0).values
    deviation = (log_maps - median).abs()
    pile_spread = MAD_TO_STD * float((log_maps - log_maps.median()).abs().median())
    spread = (MAD_TO_STD * deviation.median(0).values).clamp(min=max(pile_spread, 1e-6))
    return (log_maps - median) / spread
