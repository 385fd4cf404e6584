"""The type stage's choice between the crops' starting features and the trained ones."""

import numpy as np
import pytest

from steelnb.data import UNKNOWN, ImageSet, load_dataset
from steelnb.inspection import TypesConfig, grouping
from steelnb.inspection.grouping import STARTING, TRAINED, group_types, starting_points, train_config, training_decision
from steelnb.validation import ConfigError


def groups(rng, spread, apart, n=30, k=3, dims=8):
    """`k` groups of `n` points: centres `apart` from one another, each point `spread` around its centre."""
    labels = np.repeat(np.arange(k), n)
    points = np.eye(dims)[labels] * apart + rng.normal(scale=spread, size=(n * k, dims))
    return points / np.linalg.norm(points, axis=1, keepdims=True), labels


def test_training_is_kept_where_it_tightens_the_types():
    rng = np.random.default_rng(0)
    start, labels = groups(rng, spread=1.0, apart=1.0)  # the starting features: the types overlap
    trained, _ = groups(rng, spread=0.1, apart=1.0)  # training pulled each type together
    decision = training_decision(start, labels, trained, labels)
    assert decision["used"] == TRAINED
    assert decision["silhouette_trained"] > decision["silhouette_starting"]
    assert decision["why"].startswith("training raised the mean silhouette")


def test_training_is_dropped_where_it_scatters_the_types():
    rng = np.random.default_rng(1)
    start, labels = groups(rng, spread=0.1, apart=1.0)  # the starting features hold the types
    scattered = rng.normal(size=start.shape)  # training lost them: its clusters are arbitrary cuts of a cloud
    cut = (scattered[:, 0] > 0).astype(int) + (scattered[:, 1] > 0)
    decision = training_decision(start, labels, scattered, cut)
    assert decision["used"] == STARTING
    assert decision["silhouette_trained"] < decision["silhouette_starting"]
    assert decision["why"].startswith("training did not raise")


def test_one_trained_cluster_never_wins():
    rng = np.random.default_rng(2)
    start, labels = groups(rng, spread=0.5, apart=1.0)
    assert training_decision(start, labels, start, np.zeros(len(start), int))["used"] == STARTING


def crop_set(n, seed=0):
    images = load_dataset("synthetic", image_size=64, n_images=n, defect_rate=1.0, seed=seed).images
    return ImageSet("crops", images, np.full(n, UNKNOWN), np.full(n, UNKNOWN, np.int8), (),
                    tuple(f"c{i}" for i in range(n)))


def test_a_small_pile_answers_from_its_starting_features_without_training():
    found = group_types(crop_set(12), TypesConfig(types=3, profile="ci", train_min_crops=13, pooling="mean"))
    assert found.history is None and found.train_config is None and found.run["trained"] is False
    assert found.training["used"] == STARTING and found.training["silhouette_trained"] is None
    assert found.training["why"] == "12 crops, fewer than 13 (--train-min-crops): too few to train on"
    assert np.isfinite(found.training["silhouette_starting"])
    assert found.types.tolist() == found.starting.tolist() and sorted(set(found.types)) == [0, 1, 2]


@pytest.mark.parametrize("used", [TRAINED, STARTING])
def test_a_large_enough_pile_trains_and_keeps_the_answer_the_signal_picks(monkeypatch, used):
    from steelnb.inspection import grouping

    seen = {}

    def decide(start, start_labels, trained, trained_labels):
        seen["trained"] = trained_labels
        return {**training_decision(start, start_labels, trained, trained_labels), "used": used}

    monkeypatch.setattr(grouping, "training_decision", decide)
    found = group_types(crop_set(12, seed=1), TypesConfig(types=3, profile="ci", train_min_crops=12, pooling="mean"))
    assert found.history is not None and found.train_config.eval_clusters == 3 and found.training["crops"] == 12
    assert {"silhouette_starting", "silhouette_trained", "why"} <= set(found.training)
    expected = seen["trained"] if used == TRAINED else found.starting
    assert found.types.tolist() == expected.tolist()


def test_map_pooling_needs_the_crops_anomaly_weights():
    with pytest.raises(ValueError, match="pooling 'map' needs each crop's anomaly weights"):
        group_types(crop_set(6), TypesConfig(types=2, profile="ci", pooling="map"))


@pytest.mark.parametrize("pooling", ["map", "region"])
def test_map_pooling_groups_and_records_how_it_pooled(pooling):
    crops = crop_set(8)
    weights = np.zeros((8, 4, 4), np.float32)
    weights[:, 1:3, 1:3] = 1.0
    found = group_types(crops, TypesConfig(types=2, profile="ci", pooling=pooling, train_min_crops=9), weights=weights)
    assert found.run["pooling"] == pooling and sorted(set(found.types)) == [0, 1]


def test_the_types_are_grouped_on_the_levels_and_counted_on_the_last_features():
    crops = crop_set(12, seed=2)
    settings = train_config(TypesConfig(profile="ci"), len(crops), 2)
    joined = starting_points(crops, settings, strides=(16, 32))
    last = starting_points(crops, settings)
    assert joined.record["levels"] == "16,32" and last.record["levels"] == "last"
    np.testing.assert_allclose(joined.last, last.grouped, atol=1e-5)  # one forward pass gives the last features too
    assert not np.allclose(joined.grouped, joined.last, atol=1e-3)  # the levels are not the last features


def test_levels_name_strides():
    assert TypesConfig().strides == (16, 32) and TypesConfig(levels="last").strides is None
    with pytest.raises(ConfigError, match="levels"):
        TypesConfig(levels="12")


def test_the_number_is_chosen_on_the_last_features_and_the_types_grouped_on_the_levels(monkeypatch):
    seen = {"clustered": []}
    real_choose, real_clustering = grouping.choose_types, grouping.clustering

    def choose(points, *args, **kwargs):
        seen["chosen_on"] = points
        return real_choose(points, *args, **kwargs)

    def clustering(points, k, settings):
        seen["clustered"].append(points)
        return real_clustering(points, k, settings)

    monkeypatch.setattr(grouping, "choose_types", choose)
    monkeypatch.setattr(grouping, "clustering", clustering)
    crops = crop_set(12, seed=2)
    group_types(crops, TypesConfig(profile="ci", pooling="mean", max_types=4, train_min_crops=13))
    start = starting_points(crops, train_config(TypesConfig(profile="ci"), len(crops), 2), strides=(16, 32))
    np.testing.assert_allclose(seen["chosen_on"], start.last, atol=1e-5)
    np.testing.assert_allclose(seen["clustered"][-1], start.grouped, atol=1e-5)  # the answer's clustering
