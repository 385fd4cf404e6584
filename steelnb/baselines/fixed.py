"""Fixed (untrained) features and what is done with them: k-means, and a linear probe as the supervised ceiling.

Features: downsampled raw pixels, rotation-invariant uniform LBP histograms (Ojala et al. 2002), and pooled
backbone features (`steelnb.backbones.extract_features`). All take uint8 images (N, C, S, S).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..method.cluster import Preprocessor, cluster


def raw_pixel_features(images: np.ndarray, size: int = 32) -> np.ndarray:
    """Pixels (N, C*size*size) in 0..1 after area-averaging each image down to size x size."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255)
    return F.adaptive_avg_pool2d(x, size).flatten(1).numpy()


def lbp_features(images: np.ndarray, points: int = 8, radii: tuple[float, ...] = (1,), chunk: int = 64) -> np.ndarray:
    """Normalised LBP-riu2 histograms (N, len(radii) * (points + 2)), one block per radius.

    Each pixel compares `points` circular neighbours at a radius (bilinearly interpolated) with itself; the code
    is the number of neighbours >= the centre when the circular bit pattern has at most two 0/1 transitions, else
    `points + 1`. Channels are summed to one gray image. Border pixels without a full neighbourhood are left out.
    """
    gray = np.ascontiguousarray(images).sum(1, dtype=np.float32)
    blocks = []
    for radius in radii:
        codes = [_lbp_codes(gray[i : i + chunk], points, radius) for i in range(0, len(gray), chunk)]
        blocks.append(_histograms(np.concatenate(codes), points + 2))
    return np.concatenate(blocks, 1)


def _lbp_codes(gray: np.ndarray, points: int, radius: float) -> np.ndarray:
    """LBP-riu2 code (N, h, w) of every interior pixel of gray images (N, H, W)."""
    margin = math.ceil(radius)
    h, w = gray.shape[1] - 2 * margin, gray.shape[2] - 2 * margin
    if h < 1 or w < 1:
        raise ValueError(f"images of {gray.shape[1:]} px are too small for LBP radius {radius}")
    centre = gray[:, margin : margin + h, margin : margin + w]
    bits = np.empty((points, *centre.shape), bool)
    for p in range(points):
        angle = 2 * math.pi * p / points
        # Interpolate the neighbour's difference to the centre, not the neighbour itself: exact for constant
        # images and for brightness shifts (integer pixel sums are exact in float32).
        difference = sum(
            weight * (gray[:, margin + dy : margin + dy + h, margin + dx : margin + dx + w] - centre)
            for dy, dx, weight in _bilinear_taps(-radius * math.sin(angle), radius * math.cos(angle))
        )
        bits[p] = difference >= 0
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(0)
    return np.where(transitions <= 2, bits.sum(0), points + 1)


def _bilinear_taps(dy: float, dx: float) -> list[tuple[int, int, float]]:
    """(row offset, column offset, weight) of the pixels that bilinearly interpolate offset (dy, dx)."""
    dy, dx = round(dy, 9), round(dx, 9)  # sin/cos of multiples of pi/2 land on integers
    y0, x0 = math.floor(dy), math.floor(dx)
    ty, tx = dy - y0, dx - x0
    taps = [(y0, x0, (1 - ty) * (1 - tx)), (y0 + 1, x0, ty * (1 - tx)), (y0, x0 + 1, (1 - ty) * tx),
            (y0 + 1, x0 + 1, ty * tx)]
    return [tap for tap in taps if tap[2] > 0]


def _histograms(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Normalised per-image histograms (N, n_bins) of integer codes (N, ...)."""
    flat = codes.reshape(len(codes), -1)
    offsets = flat + n_bins * np.arange(len(codes))[:, None]
    counts = np.bincount(offsets.ravel(), minlength=n_bins * len(codes)).reshape(len(codes), n_bins)
    return (counts / flat.shape[1]).astype(np.float32)


def kmeans_on_features(features: np.ndarray, k: int, seed: int = 0, pca_dim: int | None = 64) -> np.ndarray:
    """Cluster ids (N,) from k-means on PCA-reduced, L2-normalised features (`steelnb.method.cluster`)."""
    points = Preprocessor.fit(features, pca_dim=pca_dim, seed=seed).transform(features)
    return cluster(points, k, "kmeans", seed).labels


def linear_probe(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Class predictions of logistic regression on standardised features: the supervised ceiling of a feature set."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    return probe.fit(train_features, train_labels).predict(test_features)
