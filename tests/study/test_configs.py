"""The TrainConfig of an experiment's runs."""

import pytest

from steelnb.profiles import get_profile
from steelnb.study import configs, datasets
from steelnb.validation import ConfigError


def test_an_ablation_takes_the_sweep_settings_its_backbone_and_k_of_the_data(no_real_data):
    with pytest.warns(UserWarning):
        study = datasets.capped_set("neu", image_size=32, max_per_class=2)
    config = configs.study_config("ci", study, sweep=True, backbone="resnet18", clusterer="birch")
    assert config.backbone == "resnet18" and config.n_clusters == 7 and config.clusterer == "birch"
    assert config.epochs == 1 and config.steps_per_epoch == 2  # the ci profile's sweep settings
    assert (config.dataset, config.labels, config.max_per_class) == ("synthetic", "classes", None)
    assert config.eval_clusters == study.data.n_classes == 7  # the synthetic stand-in: defect-free + 6 types
    lite0 = configs.study_config("cpu", study, sweep=True, backbone="efficientnet_lite0")
    assert lite0.weights == "offline" and lite0.n_clusters == 12  # the cpu ablation backbone, its sweep K


def test_study_config_scores_against_the_study_labels(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    five = datasets.study_set("5-cluster", None, "ci")
    config = configs.study_config("ci", five, seed=3)
    # pseudo-labels from the ci profile's K (the default 7, at least the 5 classes); the answer in 5
    assert (config.labels, config.n_clusters, config.eval_clusters, config.seed) == ("classes", 7, 5, 3)
    assert config.max_per_class is None  # the study set is already sized
    with pytest.warns(UserWarning, match="offline weights exist only for EfficientNet-Lite0/1/2; resnet18 starts"):
        sweep = configs.study_config("cpu", datasets.study_set("I", None, "ci"), sweep=True, backbone="resnet18")
    assert (sweep.labels, sweep.n_clusters, sweep.eval_clusters, sweep.epochs, sweep.weights) == (
        "defect", 12, 2, 3, "random")  # the cpu sweep over-clusters into 12


def test_pipeline_configs_take_the_profiles_detect_sizes_and_its_training_for_the_types():
    detect, types = configs.pipeline_configs("ci", "synthetic", seed=5, types=3, cutoff=0.3)
    assert (detect.dataset, detect.seed, detect.cutoff) == ("synthetic", 5, 0.3)  # overrides reach detection
    assert detect.max_side == get_profile("ci").detect["max_side"]
    assert (types.types, types.profile) == (3, "ci")
    _, chosen = configs.pipeline_configs("cpu", "ksdd")
    assert chosen.types is None and chosen.profile == "cpu"  # None: the number of types is chosen from the data
    with pytest.raises(ConfigError, match="profile cpu"):
        configs.pipeline_configs("cpu", "ksdd", max_side=0)
