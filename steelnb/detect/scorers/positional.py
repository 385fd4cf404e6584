"""Nearest patches within a positional window: a patch is compared with the patches of another image that lie
near the same place (a share of the grid's height and width), so that border cells meet border cells.

Part edges, padding and fixtures make the outer cells of every image of an aligned pile unlike the rest of the
image; compared with the same place in other images they are normal, while a defect at an edge stays unlike the
edges of the other images. On an unaligned texture the window only narrows the candidates.

>>> import torch
>>> query, reference = torch.ones(8, 8, 2), torch.zeros(4, 4, 2)
>>> reference[0, 0] = 1.0  # only the other image's top-left cell matches
>>> near = nearest_in_window(query, reference, step=2, window=0.25)
>>> round(near[0, 0].item(), 3), round(near[7, 7].item(), 3)  # bottom-right is too far from it to match
(0.0, 1.414)
>>> nearest_in_window(query, reference, step=2, window=None)[7, 7].item()
0.0
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor


@lru_cache(maxsize=16)
def window_mask(height: int, width: int, step: int, window: float) -> Tensor:
    """(h w, h' w') True where the reference cell (kept every `step` cells) lies outside a query cell's window:
    `window` x the grid's height and width either way, at least `step` cells so that every cell has candidates."""
    reach_y, reach_x = max(step, math.ceil(window * height)), max(step, math.ceil(window * width))
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    kept_rows, kept_cols = rows[::step, ::step].flatten(), cols[::step, ::step].flatten()
    return ((rows.flatten()[:, None] - kept_rows[None]).abs() > reach_y) | \
           ((cols.flatten()[:, None] - kept_cols[None]).abs() > reach_x)


def nearest_in_window(query: Tensor, reference: Tensor, step: int, window: float | None) -> Tensor:
    """(..., h, w) distance of each cell of `query` (..., h, w, D), one image or a batch, to its nearest cell of
    `reference` (another image's features kept every `step` cells, (h', w', D)) within the window (None:
    anywhere)."""
    *batch, height, width, depth = query.shape
    flat = query.reshape(-1, height * width, depth).float()
    distance = torch.cdist(flat, reference.reshape(1, -1, depth).float())
    if window is not None:
        distance.masked_fill_(window_mask(height, width, step, window), float("inf"))
    return distance.min(-1).values.view(*batch, height, width)
