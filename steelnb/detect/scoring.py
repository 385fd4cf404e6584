"""From anomaly maps to what an image is scored by and where its defect is.

The map is smoothed with a Gaussian of `sigma` cells; the image score is the mean of the top `top_share` of its
cells (more stable than the single largest cell, still driven by a small defect); the peak is the smoothed map's
largest cell, given as fractions of the image's height and width (resolution-independent).

Which share suits a pile follows its defects' size in cells: KSDD's long thin cracks in a 32 x 12 grid want 4-8 %,
DAGM's compact smudges in 32 x 32 a quarter of a percent (benchmarks/detect_aggregation.py,
results/detect/aggregation.md). `--top-share 0` (the default) chooses it from the pile: of AUTO_SHARES, the share
whose image scores set the pile's top tenth farthest above its bulk (`reach`: their mean robust z of the log
score), defects being a minority of the pile that a fitting share lifts clear of it (`farthest_reaching`, which
also reads the `self` radius at `--self-radius 0`: run.py).

>>> import torch
>>> maps = torch.zeros(2, 8, 8); maps[1, 2, 5] = 4.0
>>> image_scores(maps, sigma=0, top_share=1 / 64).tolist()
[0.0, 4.0]
>>> peaks(maps)[1].tolist()
[0.3125, 0.6875]
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .decision import NOISE_SPREAD, log_scores, robust_spread

AUTO_SHARES = (0.0025, 0.005, 0.01, 0.02, 0.04, 0.08)  # the shares `--top-share 0` chooses from
REACH_TOP = 0.1  # ... by how far this top share of the pile's image scores lies above the rest (`reach`)
RANKING_SHARE = 0.01  # ... and the share the passes before the last rank the pile by (rescore.py's clean images)


def smooth(maps: Tensor, sigma: float) -> Tensor:
    """(N, h, w) maps blurred by a Gaussian of std `sigma` cells (reflecting borders); as they are for 0."""
    if sigma <= 0:
        return maps
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, min(maps.shape[-2:]) - 1) if min(maps.shape[-2:]) > 1 else 0
    if radius == 0:
        return maps
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-x**2 / (2 * sigma**2))
    kernel /= kernel.sum()
    out = maps.float()[:, None]
    out = F.conv2d(F.pad(out, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return out[:, 0]


def image_scores(maps: Tensor, sigma: float = 1.0, top_share: float = 0.01) -> np.ndarray:
    """Score (N,) of each map: the mean of the top `top_share` of its smoothed cells (at least one cell)."""
    flat = smooth(maps, sigma).reshape(len(maps), -1)
    top = max(1, round(top_share * flat.shape[1]))
    return flat.topk(top, dim=1).values.mean(1).numpy().astype(np.float64)


def peaks(maps: Tensor, sigma: float = 0.0) -> np.ndarray:
    """(N, 2) centre of each smoothed map's largest cell as (y, x) fractions of its height and width."""
    smoothed = smooth(maps, sigma)
    h, w = smoothed.shape[-2:]
    flat = smoothed.reshape(len(smoothed), -1).argmax(1).numpy()
    return np.stack([(flat // w + 0.5) / h, (flat % w + 0.5) / w], axis=1)


def reach(scores: np.ndarray, top: float = REACH_TOP) -> float:
    """The mean robust z (decision.robust_spread, on log scores) of the `top` share of the pile's highest scores
    (at least one): how far the pile's top lies above its bulk.

    >>> round(reach(np.r_[np.linspace(1.0, 1.1, 90), np.full(10, 3.0)]), 1)
    26.5
    """
    logs = log_scores(scores)
    median, spread = robust_spread(logs)
    count = max(1, int(top * len(logs)))
    return float((np.sort(logs)[-count:].mean() - median) / max(spread, NOISE_SPREAD))


def distinct_shares(cells: int, shares: tuple[float, ...] = AUTO_SHARES) -> tuple[float, ...]:
    """The `shares` whose top of a map of `cells` cells holds a different number of cells (`image_scores` takes at
    least one, rounded), the smallest share of each count: on a small grid several shares take the same cells.

    >>> distinct_shares(64)  # 8 x 8 cells: 1, 1, 1, 1, 3 and 5
    (0.0025, 0.04, 0.08)
    """
    counts: dict[int, float] = {}  # cells taken -> the smallest share that takes them
    for share in sorted(shares):
        counts.setdefault(max(1, round(share * cells)), share)
    return tuple(counts.values())


def farthest_reaching(candidates: dict[float, np.ndarray]) -> tuple[float, dict[float, float]]:
    """The candidate (a share, a radius) whose image scores (`candidates`: candidate -> the pile's scores) reach
    farthest (`reach`), the smallest such candidate on a tie (a reach that is not a finite number wins only where
    every one is not); and each candidate's reach.

    >>> bulk = np.linspace(1.0, 1.1, 90)
    >>> farthest_reaching({0.01: np.r_[bulk, np.full(10, 1.2)], 0.04: np.r_[bulk, np.full(10, 3.0)]})[0]
    0.04
    """
    reaches = {key: reach(scores) for key, scores in sorted(candidates.items())}
    return max(reaches, key=lambda key: reaches[key] if np.isfinite(reaches[key]) else -np.inf), reaches
