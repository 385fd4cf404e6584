"""Figures of one run: galleries, 2-D maps, on tiny arrays."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from steelnb import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_pick_members_takes_the_most_typical_or_a_seeded_draw():
    groups = np.array([0, 0, 0, 1, 1, 2])
    scores = np.array([0.3, 0.1, 0.2, 0.5, 0.4, 0.0])
    picked = plots.pick_members(groups, 2, scores)
    assert picked[0].tolist() == [1, 2] and picked[1].tolist() == [4, 3] and picked[2].tolist() == [5]
    drawn = plots.pick_members(np.zeros(20, int), 5, seed=3)[0]
    assert len(drawn) == 5 and drawn.tolist() == plots.pick_members(np.zeros(20, int), 5, seed=3)[0].tolist()


@pytest.mark.parametrize("channels", [1, 3])
def test_montage_has_one_row_per_cluster(channels):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (11, channels, 16, 16), dtype=np.uint8)
    groups = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    labels = np.array([0, 0, 1, 0, 0, 1, 1, 2, 2, -1, 2])
    figure = plots.montage(images, groups, labels, ("a", "b", "c"), per_group=3, title="t")
    axes = np.array(figure.axes).reshape(3, 3)
    assert "cluster 0" in axes[0, 0].get_ylabel() and "n=5" in axes[0, 0].get_ylabel()
    assert "a 80%" in axes[0, 0].get_ylabel()  # majority label and its share
    assert len(axes[1, 2].images) == 0  # cluster 1 has two images: the third tile stays empty
    assert len(axes[2, 0].images) == 1


def test_montage_without_labels_and_bad_input():
    images = np.zeros((4, 1, 8, 8), np.uint8)
    figure = plots.montage(images, np.array([1, 1, 5, 5]), group_name="group")
    assert "group 5" in figure.axes[2].get_ylabel()
    with pytest.raises(ValueError, match="one group each"):
        plots.montage(images, np.array([0, 1]))


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embed_2d_gives_two_coordinates_per_point(method):
    features = np.random.default_rng(0).normal(size=(12, 5))
    coords = plots.embed_2d(features, method)
    assert coords.shape == (12, 2) and np.isfinite(coords).all()
    assert np.allclose(coords, plots.embed_2d(features, method))  # seeded


def test_embed_2d_rejects_unknown_method_and_too_few_points():
    with pytest.raises(ValueError, match="unknown method"):
        plots.embed_2d(np.zeros((4, 3)), "umap")
    with pytest.raises(ValueError, match="N >= 2"):
        plots.embed_2d(np.zeros((1, 3)))
    assert plots.embed_2d(np.random.default_rng(0).normal(size=(5, 1))).shape == (5, 2)  # 1-D features padded


def test_feature_map_has_one_panel_per_colouring():
    coords = np.random.default_rng(0).normal(size=(6, 2))
    figure = plots.feature_map(coords, {"cluster": (np.array([0, 0, 1, 1, 2, 2]), None),
                                        "label": (np.array([0, 1, 0, 1, -1, 1]), ("x", "y"))}, title="map")
    assert len(figure.axes) == 2
    legend = [t.get_text() for t in figure.axes[1].get_legend().get_texts()]
    assert legend == ["?", "x", "y"]
    with pytest.raises(ValueError, match="3 values for 6 points"):
        plots.feature_map(coords, {"cluster": (np.zeros(3, int), None)})








