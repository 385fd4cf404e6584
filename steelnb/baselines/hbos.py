"""PCA + HBOS (Zhang et al. 2023): principal components of defect-free features, scored by the
Histogram-Based Outlier Score (Goldstein & Dengel 2012).

Each principal component gets a histogram of `n_bins` equal-width (static) bins spanning the fitting data,
scaled so its fullest bin has height 1 (which makes the score independent of each component's scale). An input
with components z_j scores sum_j -log(h_j(z_j) + alpha), where h_j is 0 outside the fitted range; `alpha`
bounds the penalty of an empty bin (as in PyOD).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA


class PCAHBOS:
    """HBOS on the PCA of feature vectors (N, D): `fit` on defect-free features, then `score` any."""

    def __init__(self, n_components: int = 32, n_bins: int = 10, alpha: float = 0.1, seed: int = 0):
        self.n_components = n_components
        self.n_bins = n_bins
        self.alpha = alpha
        self.seed = seed
        self.pca: PCA | None = None

    def fit(self, normal: np.ndarray) -> PCAHBOS:
        """PCA of the defect-free features, then one normalised histogram per component."""
        normal = np.asarray(normal, np.float64)
        n_components = max(1, min(self.n_components, len(normal) - 1, normal.shape[1]))
        self.pca = PCA(n_components, random_state=self.seed).fit(normal)
        z = self.pca.transform(normal)
        self.low, self.high = z.min(0), z.max(0)
        self.width = np.where(self.high > self.low, (self.high - self.low) / self.n_bins, 1.0)
        counts = np.zeros((z.shape[1], self.n_bins))
        np.add.at(counts, (np.arange(z.shape[1]), self._bins(z)), 1)
        self.heights = counts / counts.max(1, keepdims=True)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        """HBOS (N,) of each feature vector: higher is more anomalous."""
        if self.pca is None:
            raise RuntimeError("PCAHBOS.score before fit")
        z = self.pca.transform(np.asarray(features, np.float64))
        inside = (z >= self.low) & (z <= self.high)
        heights = np.where(inside, self.heights[np.arange(z.shape[1]), self._bins(z)], 0.0)
        return -np.log(heights + self.alpha).sum(1)

    def _bins(self, z: np.ndarray) -> np.ndarray:
        """Bin index of every component value, clipped to the histogram (the top edge joins the last bin)."""
        return np.clip(np.floor((z - self.low) / self.width).astype(np.int64), 0, self.n_bins - 1)
