"""Feature preprocessing and every clusterer behind one function, `cluster`.

Features -> PCA (whitening optional, off by default) -> L2-normalisation -> K-Means (scikit-learn or faiss), Mini-Batch
K-Means (the paper's settings), BIRCH or spectral clustering. Every method ends the same way: centroids
are the means of their members, an empty cluster is re-seeded with the point farthest from its centroid
in the largest cluster, and each point's distance to its centroid is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import Birch, KMeans, MiniBatchKMeans, SpectralClustering
from sklearn.decomposition import PCA

METHODS = ("kmeans", "faiss", "minibatch", "birch", "spectral")


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


def _fit_labels(points: np.ndarray, k: int, method: str, seed: int, params: dict) -> np.ndarray:
    """Raw cluster labels of one method (ids in 0..k-1, possibly with empty clusters)."""
    if method == "kmeans":
        return KMeans(k, n_init=params.get("n_init", 10), random_state=seed).fit_predict(points)
    if method == "minibatch":
        batch = params.get("batch_size", 256)
        model = MiniBatchKMeans(k, batch_size=batch, init_size=params.get("init_size", 3 * batch),
                                reassignment_ratio=params.get("reassignment_ratio", 0.01), n_init=3, random_state=seed)
        return model.fit_predict(points)
    if method == "faiss":
        import faiss  # imported here: the other methods need only scikit-learn

        use_gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
        kmeans = faiss.Kmeans(points.shape[1], k, niter=params.get("niter", 50), nredo=params.get("n_init", 5),
                              seed=seed, gpu=use_gpu, min_points_per_centroid=1, max_points_per_centroid=100000)
        kmeans.train(points)
        return kmeans.index.search(points, 1)[1][:, 0]
    if method == "birch":
        return Birch(n_clusters=k, threshold=params.get("threshold", 0.1)).fit_predict(points)
    if method == "spectral":
        neighbours = min(params.get("n_neighbors", 10), len(points) - 1)
        model = SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=neighbours, random_state=seed,
                                   assign_labels="cluster_qr")
        return model.fit_predict(points)
    raise ValueError(f"unknown clustering method {method!r}; choose one of {METHODS}")


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


def cluster(points: np.ndarray, k: int, method: str = "kmeans", seed: int = 0, **params) -> Clustering:
    """Cluster preprocessed `points` (N, D) into `k` non-empty clusters with `method`."""
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
        raw = np.asarray(_fit_labels(points, k, method, seed, params), np.int64)
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
