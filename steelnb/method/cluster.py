"""Feature preprocessing and every clusterer behind one function, `cluster`.

Features -> PCA (whitening optional, off by default) -> L2-normalisation -> K-Means (scikit-learn, faiss, or torch on
the GPU), Mini-Batch K-Means (the paper's settings), BIRCH or spectral clustering, each a `Clusterer` of the registry
`CLUSTERERS` with
its options dataclass (a run records every option in its config.json: `TrainConfig.clusterer_options`). Every
method ends the same way: centroids are the means of their members, an empty cluster is re-seeded with the point
farthest from its centroid in the largest cluster, and each point's distance to its centroid is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
from sklearn.cluster import Birch, KMeans, MiniBatchKMeans, SpectralClustering
from sklearn.decomposition import PCA

from .. import validation
from ..validation import Above, AtLeast, ConfigError, Options


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
    """faiss k-means (on the GPU when faiss has one; where it has none but CUDA is there, `torch_kmeans` on the
    GPU): `niter` Lloyd iterations, `nredo` restarts."""

    niter: Annotated[int, AtLeast(1)] = 50
    nredo: Annotated[int, AtLeast(1)] = 5


@dataclass(frozen=True)
class TorchOptions(Options):
    """`torch_kmeans` (on the GPU when there is one): `niter` Lloyd iterations from greedy k-means++ seeds, `nredo`
    restarts, the lowest inertia kept."""

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


def faiss_build() -> dict:
    """Which faiss is imported: its version, whether it is a GPU build and how many GPUs it sees, and every faiss
    distribution installed (two, such as faiss-cpu beside faiss-gpu, share one module name: one shadows the other)."""
    from importlib import metadata

    installed = {}
    for name in ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11", "faiss"):
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import faiss
    except ImportError:
        return {"version": None, "gpu_build": False, "gpus": 0, "installed": installed}
    gpu_build = hasattr(faiss, "StandardGpuResources")
    return {"version": faiss.__version__, "gpu_build": gpu_build, "gpus": faiss.get_num_gpus() if gpu_build else 0,
            "installed": installed}


def kmeans_engine(method: str = "faiss") -> str:
    """What runs k-means for `method` ("faiss" or "torch") here: "faiss-gpu", "faiss-cpu", "torch-cuda" or
    "torch-cpu". faiss without GPU support on a machine with CUDA gives way to the torch k-means on the GPU."""
    cuda = torch.cuda.is_available()
    if method == "torch":
        return "torch-cuda" if cuda else "torch-cpu"
    build = faiss_build()
    if build["gpus"]:
        return "faiss-gpu"
    if cuda:
        return "torch-cuda"
    if build["version"] is None:
        raise ConfigError("the faiss clusterer needs faiss, which is not installed: pip install 'steelnb[cpu]' "
                          "(or [gpu] on a CUDA machine), or choose another clusterer (kmeans, torch)")
    return "faiss-cpu"


def _faiss(points: np.ndarray, k: int, seed: int, batch_size: int, options: FaissOptions) -> np.ndarray:
    engine = kmeans_engine("faiss")
    if engine == "torch-cuda":
        return torch_kmeans(points, k, seed, options.niter, options.nredo, device="cuda")
    import faiss  # imported here: the other methods need only scikit-learn

    kmeans = faiss.Kmeans(points.shape[1], k, niter=options.niter, nredo=options.nredo, seed=seed,
                          gpu=engine == "faiss-gpu", min_points_per_centroid=1, max_points_per_centroid=100000)
    kmeans.train(points)
    return kmeans.index.search(points, 1)[1][:, 0]


def _torch(points: np.ndarray, k: int, seed: int, batch_size: int, options: TorchOptions) -> np.ndarray:
    return torch_kmeans(points, k, seed, options.niter, options.nredo)


CHUNK = 65536  # points per distance block in torch_kmeans: bounds its memory at CHUNK x k distances


def _nearest(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distance to and index of the nearest centroid of every row of `x`, a block of rows at a time."""
    norms = centroids.pow(2).sum(1)
    found = [torch.addmm(norms, block, centroids.T, alpha=-2).add_(block.pow(2).sum(1, keepdim=True)).min(1)
             for block in x.split(CHUNK)]
    return torch.cat([f.values for f in found]).clamp_(min=0), torch.cat([f.indices for f in found])


def _kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeds (scikit-learn's): each new seed the best of 2 + log k candidates drawn in proportion
    to the squared distance to the seeds so far. Draws on the CPU generator: the same seeds on any device."""
    n, trials = len(x), 2 + int(np.log(k))
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    closest = _nearest(x, x[chosen])[0]
    for _ in range(1, k):
        weights = closest.double().cpu()
        if not weights.sum() > 0:  # fewer distinct points than seeds: any point will do
            weights = torch.ones(n, dtype=torch.float64)
        candidates = torch.multinomial(weights, trials, replacement=True, generator=generator)
        options = torch.minimum(closest[None], torch.stack([_nearest(x, x[c:c + 1])[0] for c in candidates.tolist()]))
        best = int(options.sum(1).argmin())
        chosen.append(int(candidates[best]))
        closest = options[best]
    return x[chosen].clone()


@torch.no_grad()
def torch_kmeans(points: np.ndarray, k: int, seed: int = 0, niter: int = 50, nredo: int = 5,
                 device: str | torch.device | None = None) -> np.ndarray:
    """Lloyd's k-means in torch on `device` (default: CUDA when present, else the CPU): `nredo` runs from greedy
    k-means++ seeds, each at most `niter` iterations (it stops when no point changes cluster), the run with the
    lowest inertia kept. An emptied cluster keeps its centroid. Returns the labels (N,).

    >>> points = np.array([[0, 0], [0, 0.1], [5, 5], [5, 5.1]], np.float32)
    >>> labels = torch_kmeans(points, 2, seed=0, device="cpu")
    >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
    True
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    x = torch.from_numpy(np.ascontiguousarray(points, np.float32)).to(device)
    generator = torch.Generator().manual_seed(seed)
    best, best_inertia = None, float("inf")
    for _ in range(nredo):
        centroids = _kmeans_plus_plus(x, k, generator)
        labels = None
        for _ in range(niter):
            new = _nearest(x, centroids)[1]
            if labels is not None and torch.equal(new, labels):
                break
            labels = new
            counts = torch.bincount(labels, minlength=k)
            sums = torch.zeros_like(centroids).index_add_(0, labels, x)
            centroids = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
        distances, labels = _nearest(x, centroids)
        inertia = float(distances.double().sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best.cpu().numpy()


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
              "spectral": Clusterer(_spectral, SpectralOptions), "torch": Clusterer(_torch, TorchOptions)}
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
