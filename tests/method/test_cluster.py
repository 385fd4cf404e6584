"""Clustering: every method behind one function, preprocessing, empty clusters, the uniform sampler."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from steelnb.method import cluster as cluster_module
from steelnb.method.cluster import (
    CLUSTERERS,
    METHODS,
    Preprocessor,
    cluster,
    clusterer_options,
    faiss_build,
    kmeans_engine,
    nearest_centroid,
    torch_kmeans,
    uniform_label_sample,
)
from steelnb.metrics import evaluate
from steelnb.validation import ConfigError


def blobs(n_per=60, k=3, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (k, dim))
    points = np.concatenate([c + rng.normal(0, 1, (n_per, dim)) for c in centres])
    return points.astype(np.float32), np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_recovers_separated_blobs(method):
    points, truth = blobs()
    result = cluster(points, 3, method, seed=0)
    assert evaluate(truth, result.labels)["acc"] == 1.0
    assert result.centroids.shape == (3, points.shape[1])
    own = np.linalg.norm(points - result.centroids[result.labels], axis=1)
    np.testing.assert_allclose(result.distances, own, rtol=1e-5)


def test_same_seed_same_answer():
    points, _ = blobs(k=5)
    assert (cluster(points, 5, "minibatch", seed=3).labels == cluster(points, 5, "minibatch", seed=3).labels).all()


def test_empty_clusters_are_reseeded_when_points_repeat():
    points = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)  # 3 distinct points, asked for 5 clusters
    result = cluster(points, 5, "kmeans", seed=0)
    assert (result.sizes > 0).all()
    assert len(np.unique(result.labels)) == 5


def test_k_larger_than_data_and_bad_features_are_clear_errors():
    points, _ = blobs(n_per=2, k=2)
    with pytest.raises(ValueError, match="k=9 clusters cannot be made from 4 images"):
        cluster(points, 9)
    points[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cluster(points, 2)
    with pytest.raises(ValueError, match="empty"):
        cluster(np.zeros((0, 4)), 2)
    with pytest.raises(ValueError, match="unknown clustering method"):
        cluster(blobs()[0], 2, "dbscan")


def test_single_cluster():
    points, _ = blobs()
    result = cluster(points, 1)
    assert (result.labels == 0).all()
    np.testing.assert_allclose(result.centroids[0], points.mean(0), rtol=1e-5)


def test_preprocessor_whitens_and_normalises():
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (500, 32)) * np.linspace(0.1, 10, 32)
    pre = Preprocessor.fit(features, pca_dim=8, whiten=True, l2=False)
    reduced = pre.transform(features)
    assert reduced.shape == (500, 8)
    np.testing.assert_allclose(np.cov(reduced.T), np.eye(8), atol=0.05)
    normed = Preprocessor.fit(features, pca_dim=8).transform(features)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)


def test_pca_dim_is_capped_by_the_number_of_images():
    features = np.random.default_rng(0).normal(size=(5, 64))
    assert Preprocessor.fit(features, pca_dim=128).transform(features).shape == (5, 4)


def test_nearest_centroid():
    centroids = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    labels, dist = nearest_centroid(np.array([[1.0, 0.0], [7.0, 0.0]], np.float32), centroids)
    assert labels.tolist() == [0, 1]
    np.testing.assert_allclose(dist, [1.0, 3.0], rtol=1e-5)


def test_uniform_sampler_balances_a_dominant_cluster():
    labels = np.array([0] * 950 + [1] * 40 + [2] * 10)
    drawn = uniform_label_sample(labels, 900, np.random.default_rng(0))
    counts = np.bincount(labels[drawn], minlength=3)
    assert len(drawn) == 900
    assert counts.min() >= 290  # about a third each, although cluster 0 holds 95 % of the images


def test_the_registry_pairs_every_method_with_its_options():
    assert METHODS == ("kmeans", "faiss", "minibatch", "birch", "spectral", "torch")
    defaults = {name: clusterer_options(name).__dict__ for name in CLUSTERERS}
    assert defaults == {"kmeans": {"n_init": 10}, "faiss": {"niter": 50, "nredo": 5},
                        "minibatch": {"n_init": 3, "init_size_factor": 3, "reassignment_ratio": 0.01},
                        "birch": {"threshold": 0.1}, "spectral": {"n_neighbors": 10},
                        "torch": {"niter": 50, "nredo": 5}}


def test_options_reach_the_clusterer_and_bad_ones_are_named(monkeypatch):
    seen = {}
    real = CLUSTERERS["minibatch"]

    def spy(points, k, seed, batch_size, options):
        seen.update(batch_size=batch_size, options=options)
        return real.fit(points, k, seed, batch_size, options)

    monkeypatch.setitem(CLUSTERERS, "minibatch", cluster_module.Clusterer(spy, real.options))
    cluster(blobs()[0], 3, "minibatch", batch_size=64, options={"n_init": 1})
    assert seen["batch_size"] == 64 and seen["options"].n_init == 1 and seen["options"].init_size_factor == 3
    unknown = r"^clusterer_options.birch: unknown option\(s\) \['n_init'\]; known: threshold"
    with pytest.raises(ConfigError, match=unknown):
        cluster(blobs()[0], 3, "birch", options={"n_init": 1})
    with pytest.raises(ConfigError, match=r"^clusterer_options.birch: threshold must be greater than 0"):
        cluster(blobs()[0], 3, "birch", options={"threshold": 0.0})


# -- k-means in torch (the GPU's when faiss has none) ---------------------------------------------------
@pytest.mark.parametrize(("k", "seed"), [(3, 0), (8, 1), (20, 2)])
def test_torch_kmeans_finds_what_scikit_learn_finds_on_separated_blobs(k, seed):
    points, truth = blobs(n_per=25, k=k, dim=24, seed=seed)
    ours = torch_kmeans(points, k, seed=seed, device="cpu")
    theirs = KMeans(k, n_init=10, random_state=seed).fit_predict(points)
    assert adjusted_rand_score(theirs, ours) == 1.0 and adjusted_rand_score(truth, ours) == 1.0


def test_torch_kmeans_is_seeded_and_copes_with_repeated_points():
    points, _ = blobs(k=5)
    assert (torch_kmeans(points, 5, seed=4) == torch_kmeans(points, 5, seed=4)).all()
    repeated = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)  # 3 distinct points, 5 clusters asked
    labels = torch_kmeans(repeated, 5, seed=0, niter=5, nredo=2)
    assert labels.shape == (30,) and len(np.unique(labels)) == 3
    assert (cluster(repeated, 5, "torch", seed=0).sizes > 0).all()  # cluster() re-seeds the empty ones


def test_which_faiss_and_which_kmeans_engine_are_said():
    build = faiss_build()
    assert build["version"] is not None and not build["gpu_build"] and build["gpus"] == 0  # this CPU machine
    assert set(build["installed"]) >= {"faiss-cpu"}
    assert kmeans_engine("torch") == ("torch-cuda" if torch.cuda.is_available() else "torch-cpu")
    assert kmeans_engine("faiss") == "faiss-cpu"


def test_without_faiss_the_faiss_clusterer_says_what_to_install(monkeypatch):
    monkeypatch.setattr(cluster_module, "faiss_build",
                        lambda: {"version": None, "gpu_build": False, "gpus": 0, "installed": {}})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'steelnb\[cpu\]'"):
        cluster(blobs()[0], 3, "faiss")
