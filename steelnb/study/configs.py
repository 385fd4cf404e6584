"""The configs of each experiment's runs, from a profile: `profile_config` (a profile's full run on any data),
`study_config` (the runs of an experiment on its StudySet, full or short `sweep` settings), `pipeline_configs`
(detect, then group: the DetectConfig and TypesConfig of the notebooks' `steelnb inspect` rows)."""

from __future__ import annotations

import warnings

from ..detect import DetectConfig
from ..inspection import TypesConfig
from ..method.config import TrainConfig
from ..profiles import get_profile
from .datasets import StudySet


def profile_config(profile: str, **overrides) -> TrainConfig:
    """TrainConfig of a profile with `overrides` on top."""
    return TrainConfig.from_dict({**get_profile(profile).train, **overrides})


def study_config(profile: str, study: StudySet, seed: int = 0, sweep: bool = False, **overrides) -> TrainConfig:
    """The TrainConfig of an experiment's runs on `study`: the profile's settings (its short `sweep` settings
    with `sweep=True`, as the ablations and the many runs of a table use), scored against `study.labels`,
    pseudo-labels from the profile's K (at least the number of classes), the answer in as many clusters as
    classes, `seed`, then `overrides`.

    A `backbone` among the overrides starts from the profile's weights for it (`Profile.weights_for`: offline
    weights exist only for EfficientNet-Lite0/1/2; another backbone starts random, with a warning) unless
    `weights` is given too.

    >>> from steelnb.study.datasets import capped_set
    >>> study = capped_set("synthetic", image_size=32, max_per_class=2)
    >>> config = study_config("ci", study, sweep=True, clusterer="birch")
    >>> config.epochs, config.n_clusters, config.eval_clusters, config.clusterer
    (1, 7, 7, 'birch')
    """
    settings = get_profile(profile)
    base = settings.sweep_config() if sweep else dict(settings.train)
    base.pop("max_per_class", None)  # the study set is already sized
    if "backbone" in overrides and "weights" not in overrides:
        overrides["weights"] = settings.weights_for(overrides["backbone"])
        profile_weights = base.get("weights", TrainConfig.weights)
        if overrides["weights"] != profile_weights:
            warnings.warn(f"profile {profile}: {profile_weights} weights exist only for EfficientNet-Lite0/1/2; "
                          f"{overrides['backbone']} starts from {overrides['weights']} weights", stacklevel=2)
    n_clusters = max(base.get("n_clusters", TrainConfig.n_clusters), study.n_clusters)
    values = {**base, "dataset": study.data.name, "labels": study.labels, "n_clusters": n_clusters,
              "eval_clusters": study.n_clusters, "seed": seed, **overrides}
    return TrainConfig.from_dict(values)


def pipeline_configs(profile: str, name: str, seed: int = 0, types: int | None = None,
                     **detect_overrides) -> tuple[DetectConfig, TypesConfig]:
    """Detect, then group, as `steelnb inspect --profile PROFILE` runs it on the pile `name`: detection with the
    profile's `detect` sizes (its method, backbone and weights are detection's defaults) and `seed`, then the
    type stage with the profile's training settings, `types` given or (None) chosen from the data.

    >>> detect, types = pipeline_configs("ci", "synthetic", types=4)
    >>> detect.max_side, detect.device, types.types, types.profile
    (64, 'cpu', 4, 'ci')
    """
    values = {**get_profile(profile).detect, "dataset": name, "seed": seed, **detect_overrides}
    return DetectConfig.from_dict(values, source=f"profile {profile}"), TypesConfig(types=types, profile=profile)
