"""Clustering: every method behind one function, preprocessing, empty clusters, the uniform sampler."""

import numpy as np
import pytest

from steelnb.method import cluster as cluster_module
from steelnb.method.cluster import (
    CLUSTERERS,
    METHODS,
    Preprocessor,
    cluster,
    clusterer_options,
    nearest_centroid,
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
    assert METHODS == ("kmeans", "faiss", "minibatch", "birch", "spectral")
    defaults = {name: clusterer_options(name).__dict__ for name in CLUSTERERS}
    assert defaults == {"kmeans": {"n_init": 10}, "faiss": {"niter": 50, "nredo": 5},
                        "minibatch": {"n_init": 3, "init_size_factor": 3, "reassignment_ratio": 0.01},
                        "birch": {"threshold": 0.1}, "spectral": {"n_neighbors": 10}}


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
