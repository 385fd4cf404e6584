"""The TrainConfig of an experiment's runs."""

import pytest

from steelnb.study import configs, datasets


def test_sweep_config_uses_the_ablation_backbone_and_k_of_the_data(no_real_data):
    with pytest.warns(UserWarning):
        data = datasets.capped_set("neu", image_size=32, max_per_class=2).data
    config = configs.sweep_config("ci", data, clusterer="birch")
    assert config.backbone == "resnet18" and config.n_clusters == 7 and config.clusterer == "birch"
    assert config.epochs == 1 and config.steps_per_epoch == 2  # the ci profile's sweep settings
    assert configs.sweep_config("cpu", data).weights == "offline"  # the cpu ablation backbone is Lite0
    with pytest.warns(UserWarning, match="offline weights exist only for efficientnet_lite0"):
        assert configs.sweep_config("cpu", data, backbone="resnet18").weights == "random"


def test_study_config_scores_against_the_study_labels(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    five = datasets.study_set("5-cluster", None, "ci")
    config = configs.study_config("ci", five, seed=3)
    # pseudo-labels from the ci profile's K (the default 7, at least the 5 classes); the answer in 5
    assert (config.labels, config.n_clusters, config.eval_clusters, config.seed) == ("classes", 7, 5, 3)
    assert config.max_per_class is None  # the study set is already sized
    sweep = configs.study_config("cpu", datasets.study_set("I", None, "ci"), sweep=True, backbone="resnet18")
    assert (sweep.labels, sweep.n_clusters, sweep.eval_clusters, sweep.epochs, sweep.weights) == (
        "defect", 12, 2, 3, "random")  # the cpu sweep over-clusters into 12
