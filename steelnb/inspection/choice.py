"""How many defect types: the number chosen from the data when the user gives none (`--types`).

Both rules look over k = min_types .. max_types (capped at the number of points less one) on the crops' last
starting features (the backbone's last features under the profile's starting weights, after the method's PCA and
L2 normalisation; `grouping.starting_points` says why these, and not the trained ones or the levels the types are
grouped on):

- `silhouette` (default): cluster into k with the method's own clusterer for every k; keep the k whose clustering
  has the largest mean silhouette (Euclidean on the L2-normalised points; ties: the smaller k).
- `eigengap`: the eigenvalues of the normalised Laplacian of a symmetric k-nearest-neighbour graph (cosine
  similarities, 10 neighbours); keep the k after which the gap between consecutive eigenvalues is largest
  (spectral clustering's classic heuristic: k well-separated groups give k eigenvalues near 0).

Neither can answer "one type" (a silhouette needs two clusters): give `--types 1` for that.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> centres = np.eye(8)[:3] * 10
>>> points = np.concatenate([c + rng.normal(size=(20, 8)) for c in centres])
>>> choose_types(points, 2, 6, "silhouette").k, choose_types(points, 2, 6, "eigengap").k
(3, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csgraph
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize

from ..method.cluster import cluster

Clusterer = Callable[[np.ndarray, int], np.ndarray]  # (points, k) -> labels
NEIGHBOURS = 10


@dataclass
class TypeChoice:
    """The number chosen, each candidate's score (`scores`: columns k, score) and one sentence saying how."""

    k: int
    scores: pd.DataFrame
    how: str


def candidates(n_points: int, low: int, high: int) -> list[int]:
    """The k the rules look over: low..high, at most n_points - 1 (a silhouette needs a point left over)."""
    return list(range(low, min(high, n_points - 1) + 1))


def _kmeans(points: np.ndarray, k: int) -> np.ndarray:
    return cluster(points, k, "kmeans", seed=0).labels


def silhouettes(points: np.ndarray, ks: list[int], clusterer: Clusterer = _kmeans) -> list[float]:
    """Mean silhouette of the clustering into each k of `ks` (NaN where the clustering has one group only)."""
    scores = []
    for k in ks:
        labels = clusterer(points, k)
        scores.append(float(silhouette_score(points, labels)) if len(np.unique(labels)) > 1 else float("nan"))
    return scores


def eigengaps(points: np.ndarray, ks: list[int]) -> list[float]:
    """Gap between the k-th and (k+1)-th smallest eigenvalues of the normalised Laplacian, for each k of `ks`."""
    unit = normalize(np.asarray(points, np.float64))
    neighbours = min(NEIGHBOURS, len(unit) - 1)
    graph = NearestNeighbors(n_neighbors=neighbours + 1).fit(unit).kneighbors_graph(unit, mode="distance")
    graph.data = np.clip(1.0 - graph.data**2 / 2, 0.0, 1.0)  # cosine similarity of unit vectors
    graph.setdiag(0)
    graph.eliminate_zeros()
    affinity = graph.maximum(graph.T).toarray()
    laplacian = csgraph.laplacian(affinity, normed=True)
    values = np.sort(np.linalg.eigvalsh(laplacian))
    return [float(values[k] - values[k - 1]) for k in ks]


def choose_types(points: np.ndarray, low: int, high: int, rule: str = "silhouette",
                 clusterer: Clusterer = _kmeans, of: str = "") -> TypeChoice:
    """The number of types in `points` by `rule` over low..high (`of`: what the points are, for `how`);
    ValueError when there are too few points."""
    ks = candidates(len(points), low, high)
    if not ks:
        raise ValueError(f"choosing the number of types over {low}..{high} needs at least {low + 1} images, "
                         f"got {len(points)}")
    if rule == "silhouette":
        scores = silhouettes(points, ks, clusterer)
        what = "largest mean silhouette"
    elif rule == "eigengap":
        scores = eigengaps(points, ks)
        what = f"largest eigengap of a {NEIGHBOURS}-nearest-neighbour graph's Laplacian"
    else:
        raise ValueError(f"unknown rule {rule!r}; choose silhouette or eigengap")
    table = pd.DataFrame({"k": ks, "score": scores})
    valid = table.dropna()
    k = int(valid.k.iloc[int(np.argmax(valid.score.to_numpy()))]) if len(valid) else ks[0]
    how = f"{rule}: k = {k} of {ks[0]}..{ks[-1]}, the {what}{f' on {of}' if of else ''} (type_choice.csv)"
    return TypeChoice(k, table, how)
