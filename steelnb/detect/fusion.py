"""Maps of several scorers joined into one: each scorer's log map as robust z over the pile, averaged.

Scorers differ in scale (a distance within an image, a distance to other images); the robust z of the log
values (median and 1.4826 x MAD over every cell of the pile) puts them on one scale without any label, and a
defect that either scorer sees stands out of the mean. One scorer's maps pass as their log.

>>> import numpy as np
>>> robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0])).round(2).tolist()
[-1.35, -0.67, 0.0, 0.67, 65.43]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .decision import robust_spread


def robust_z(values: np.ndarray) -> np.ndarray:
    """(values - median) / (1.4826 x MAD); the mean absolute deviation stands in when MAD is 0, 1 when both are."""
    median, spread = robust_spread(values)
    return (np.asarray(values, np.float64) - median) / (spread or 1.0)


def log_maps(maps: Tensor, weights: tuple[float, ...] | None = None) -> Tensor:
    """(N, h, w) log maps of one scorer's (N, h, w) maps, or the fused z of several scorers' (N, S, h, w): their
    mean, or their mean weighted by `weights` (one a scorer).

    >>> maps = torch.ones(4, 2, 3, 3); maps[0, :, 1, 1] = 10.0  # both scorers see image 0's centre
    >>> fused = log_maps(maps); fused.shape, bool(fused[0, 1, 1] > fused[1:].max())
    (torch.Size([4, 3, 3]), True)
    >>> bool(torch.equal(log_maps(maps, (0.5, 0.5)), fused))
    True
    """
    logs = maps.float().clamp(min=1e-6).log()
    if logs.ndim == 3:
        return logs
    scales = [torch.from_numpy(robust_z(logs[:, s].flatten().numpy()).astype(np.float32)).view(logs[:, s].shape)
              for s in range(logs.shape[1])]
    if weights is None:
        return torch.stack(scales).mean(0)
    if len(weights) != len(scales):
        raise ValueError(f"{len(weights)} weights for {len(scales)} scorers")
    return sum(w * scale for w, scale in zip(weights, scales, strict=True)) / sum(weights)
