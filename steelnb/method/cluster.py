"""Feature preprocessing and every clusterer behind one function, `cluster`.

Features -> PCA (whitening optional, off by default) -> L2-normalisation -> K-Means (scikit-learn or faiss), Mini-Batch
K-Means (the paper's settings), BIRCH or spectral clustering, each a `Clusterer` of the registry `CLUSTERERS` with
its options dataclass (a run records every option in its config.json: `TrainConfig.clusterer_options`). Every
method ends the same way: centroids are the means of their members, an empty cluster is re-seeded with the point
farthest from its centroid in the largest cluster, and each point's distance to its centroid is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from sklearn.cluster import Birch, KMeans, MiniBatchKMeans, SpectralClustering
from sklearn.decomposition import PCA

from .. import validation
from ..validation import Above, AtLeast, Options


@dataclass
class Preprocessor:
    """x -> L2-normalise((x - mean) @ projection): PCA (and optional whitening) folded into one matrix."""

    mean: np.ndarray
    projection: np.ndarray
    l2: bool = True

    @classmethod
    def fit(cls, features: np.ndarray, pca_dim: int | None = 128, whiten: bool = False, l2: bool = True,
            seed: int = 0) -> Preprocessor:
        """PCA to `pca_dim` (None: keep the features as they are).

        Whitening (DeepCluster's choice) is off by default: on NEU with ImageNet EfficientNet-Lite0
        features, k-means reached ACC 0.926 after PCA-64 + L2 and 0.464 with whitening added
        (results/neu/whitening).

        >>> features = np.random.default_rng(0).normal(size=(10, 6))
        >>> points = Preprocessor.fit(features, pca_dim=3).transform(features)
        >>> points.shape, bool(np.allclose(np.linalg.norm(points, axis=1), 1))
        ((10, 3), True)
        """
        features = np.asarray(features, np.float64)
        if pca_dim is None:
            dim = features.shape[1]
            return cls(np.zeros(dim, np.float32), np.eye(dim, dtype=np.float32), l2)
        n_components = min(pca_dim, features.shape[0] - 1, features.shape[1])
        pca = PCA(n_components=max(n_components, 1), random_state=seed).fit(features)
        projection = pca.components_.T
        if whiten:
            projection = projection / np.sqrt(pca.explained_variance_ + 1e-8)
        return cls(pca.mean_.astype(np.float32), projection.astype(np.float32), l2)

    def transform(self, features: np.ndarray) -> np.ndarray:
        reduced = (np.asarray(features, np.float32) - self.mean) @ self.projection
        if self.l2:
            reduced /= np.linalg.norm(reduced, axis=1, keepdims=True) + 1e-12
        return np.ascontiguousarray(reduced, dtype=np.float32)


@dataclass
class Clustering:
    """Cluster of every point, the centroids (in preprocessed space) and each point's distance to its own."""

    labels: np.ndarray
    centroids: np.ndarray
    distances: np.ndarray
    method: str
    reseeded: int = 0

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.centroids))


def nearest_centroid(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and Euclidean distance to the nearest centroid of every point."""
    squared = (points**2).sum(1, keepdims=True) - 2 * points @ centroids.T + (centroids**2).sum(1)
    labels = squared.argmin(1)
    return labels.astype(np.int64), np.sqrt(np.maximum(squared[np.arange(len(points)), labels], 0))


# -- the clusterers: each one's options (recorded in a run's config.json) and its fit -------------------------
@dataclass(frozen=True)
class KMeansOptions(Options):
    """scikit-learn's KMeans: `n_init` restarts from k-means++ seeds, the best kept."""

    n_init: Annotated[int, AtLeast(1)] = 10


@dataclass(frozen=True)
class MiniBatchOptions(Options):
    """Mini-Batch K-Means with the paper's settings; its batch size is the run's `cluster_batch_size`, the first
    `init_size_factor` x batch points seed it."""

    n_init: Annotated[int, AtLeast(1)] = 3
    init_size_factor: Annotated[int, AtLeast(1)] = 3
    reassignment_ratio: Annotated[float, AtLeast(0)] = 0.01


@dataclass(frozen=True)
class FaissOptions(Options):
    """faiss k-means (on the GPU when faiss has one): `niter` Lloyd iterations, `nredo` restarts."""

    niter: Annotated[int, AtLeast(1)] = 50
    nredo: Annotated[int, AtLeast(1)] = 5


@dataclass(frozen=True)
class BirchOptions(Options):
    """BIRCH: the radius `threshold` of a subcluster (the points are L2-normalised)."""

    threshold: Annotated[float, Above(0)] = 0.1


@dataclass(frozen=True)
class SpectralOptions(Options):
    """Spectral clustering on the `n_neighbors`-nearest-neighbour graph (at most N - 1 neighbours)."""

    n_neighbors: Annotated[int, AtLeast(1)] = 10


def _kmeans(points: np.ndarray, k: int, seed: int, batch_size: int, options: KMeansOptions) -> np.ndarray:
    return KMeans(k, n_init=options.n_init, random_state=seed).fit_predict(points)


def _minibatch(points: np.ndarray, k: int, seed: int, batch_size: int, options: MiniBatchOptions) -> np.ndarray:
    model = MiniBatchKMeans(k, batch_size=batch_size, init_size=options.init_size_factor * batch_size,
                            reassignment_ratio=options.reassignment_ratio, n_init=options.n_init, random_state=seed)
    return model.fit_predict(points)


def _faiss(points: np.ndarray, k: int, seed: int, batch_size: int, options: FaissOptions) -> np.ndarray:
    import faiss  # imported here: the other methods need only scikit-learn

    use_gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    kmeans = faiss.Kmeans(points.shape[1], k, niter=options.niter, nredo=options.nredo, seed=seed, gpu=use_gpu,
                          min_points_per_centroid=1, max_points_per_centroid=100000)
    kmeans.train(points)
    return kmeans.index.search(points, 1)[1][:, 0]


def _birch(points: np.ndarray, k: int, seed: int, batch_size: int, options: BirchOptions) -> np.ndarray:
    return Birch(n_clusters=k, threshold=options.threshold).fit_predict(points)


def _spectral(points: np.ndarray, k: int, seed: int, batch_size: int, options: SpectralOptions) -> np.ndarray:
    model = SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=min(options.n_neighbors, len(points) - 1),
                               random_state=seed, assign_labels="cluster_qr")
    return model.fit_predict(points)


@dataclass(frozen=True)
class Clusterer:
    """One clustering method: `fit(points, k, seed, batch_size, options)` gives raw labels in 0..k-1 (clusters may
    be empty); `options` is the dataclass of its settings."""

    fit: Callable[[np.ndarray, int, int, int, Any], np.ndarray]
    options: type


CLUSTERERS = {"kmeans": Clusterer(_kmeans, KMeansOptions), "faiss": Clusterer(_faiss, FaissOptions),
              "minibatch": Clusterer(_minibatch, MiniBatchOptions), "birch": Clusterer(_birch, BirchOptions),
              "spectral": Clusterer(_spectral, SpectralOptions)}
METHODS = tuple(CLUSTERERS)


def clusterer_options(method: str, values: Mapping | None = None) -> Any:
    """The options of `method` from `values` (missing ones take their defaults); ConfigError for an unknown
    option or a bad value."""
    if method not in CLUSTERERS:
        raise ValueError(f"unknown clustering method {method!r}; choose one of {METHODS}")
    return validation.options(CLUSTERERS[method].options, values, f"clusterer_options.{method}")


def _reseed_empty(points: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Centroids as member means; each empty cluster takes the largest cluster's farthest point."""
    labels = labels.copy()
    reseeded = 0
    while True:
        sizes = np.bincount(labels, minlength=k)
        centroids = np.stack([points[labels == c].mean(0) if sizes[c] else np.zeros(points.shape[1]) for c in range(k)])
        empty = np.flatnonzero(sizes == 0)
        if not len(empty):
            return labels, centroids.astype(np.float32), reseeded
        donor = int(sizes.argmax())
        members = np.flatnonzero(labels == donor)
        farthest = members[np.linalg.norm(points[members] - centroids[donor], axis=1).argmax()]
        labels[farthest] = empty[0]
        reseeded += 1


def cluster(points: np.ndarray, k: int, method: str = "kmeans", seed: int = 0, batch_size: int = 256,
            options: Mapping | None = None) -> Clustering:
    """Cluster preprocessed `points` (N, D) into `k` non-empty clusters with `method` (one of `CLUSTERERS`),
    its `options` (a dict or its options dataclass; missing ones take their defaults) and, for minibatch,
    `batch_size`.

    >>> points = np.array([[0, 0], [0, 0.1], [5, 5], [5, 5.1]], np.float32)
    >>> result = cluster(points, 2, "kmeans", seed=0, options={"n_init": 1})
    >>> result.sizes.tolist(), bool(result.labels[0] == result.labels[1] != result.labels[2])
    ([2, 2], True)
    """
    settings = clusterer_options(method, options)  # an unknown method or option is a clear error first
    points = np.ascontiguousarray(points, dtype=np.float32)
    if len(points) == 0:
        raise ValueError("cannot cluster an empty feature set")
    if not np.isfinite(points).all():
        raise ValueError("features contain NaN or infinity; the model has diverged or an image is broken")
    if not 1 <= k <= len(points):
        raise ValueError(f"k={k} clusters cannot be made from {len(points)} images; choose 1 <= k <= {len(points)}")
    if k == 1:
        raw = np.zeros(len(points), np.int64)
    else:
        raw = np.asarray(CLUSTERERS[method].fit(points, k, seed, batch_size, settings), np.int64)
    labels, centroids, reseeded = _reseed_empty(points, raw, k)
    distances = np.linalg.norm(points - centroids[labels], axis=1).astype(np.float32)
    return Clustering(labels, centroids, distances, method, reseeded)


def uniform_label_sample(labels: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn evenly over pseudo-labels (with replacement in small clusters), shuffled.

    As DeepCluster's UnifLabelSampler: one huge cluster cannot take over the training signal.
    """
    clusters = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    per_cluster = int(np.ceil(n_samples / len(clusters)))
    picks = [rng.choice(m, per_cluster, replace=len(m) < per_cluster) for m in clusters]
    drawn = np.concatenate(picks)
    rng.shuffle(drawn)
    return drawn[:n_samples]
