"""The TrainConfig of each experiment's runs, from a profile: `profile_config` (a profile's full run),
`sweep_config` (a short ablation run on the data of notebooks 01-03), `study_config` (the runs of 04-07)."""

from __future__ import annotations

import warnings
from dataclasses import asdict

from ..data import ImageSet
from ..method.config import TrainConfig
from ..profiles import get_profile
from .datasets import StudySet


def profile_config(profile: str, **overrides) -> TrainConfig:
    """TrainConfig of a profile with `overrides` on top."""
    return TrainConfig.from_dict({**get_profile(profile).train, **overrides})


def sweep_config(profile: str, data: ImageSet, backbone: str | None = None, weights: str | None = None,
                 **overrides) -> TrainConfig:
    """One short ablation run of `profile` on `data`: the profile's sweep settings, its ablation backbone,
    pseudo-labels from the profile's K (at least the number of classes), the answer in as many clusters as
    classes, and `overrides` on top.

    `weights` None takes the profile's, except "offline" (EfficientNet-Lite0 only) for another backbone,
    which falls back to "random" with a warning.
    """
    settings = get_profile(profile)
    backbone = backbone or settings.ablation_backbone
    config = profile_config(profile, **settings.sweep, backbone=backbone)
    if weights is None:
        weights = settings.weights_for(backbone)
        if weights != config.weights:
            warnings.warn(f"profile {profile}: {config.weights} weights exist only for efficientnet_lite0; "
                          f"{backbone} starts from {weights} weights", stacklevel=2)
    values = {"dataset": data.name, "n_clusters": max(config.n_clusters, data.n_classes),
              "eval_clusters": data.n_classes, "weights": weights, "max_per_class": None, **overrides}
    return TrainConfig.from_dict({**asdict(config), **values})


def study_config(profile: str, study: StudySet, seed: int = 0, sweep: bool = False, **overrides) -> TrainConfig:
    """The profile's TrainConfig (its short `sweep` settings with `sweep=True`) for `study`: scored against
    `study.labels`, pseudo-labels from the profile's K (at least the number of classes), the answer in
    as many clusters as classes, `seed`, then `overrides`."""
    settings = get_profile(profile)
    base = settings.sweep_config() if sweep else dict(settings.train)
    base.pop("max_per_class", None)  # the study set is already sized
    if "backbone" in overrides and "weights" not in overrides:
        overrides["weights"] = settings.weights_for(overrides["backbone"])
    n_clusters = max(base.get("n_clusters", TrainConfig.n_clusters), study.n_clusters)
    values = {**base, "dataset": study.data.name, "labels": study.labels, "n_clusters": n_clusters,
              "eval_clusters": study.n_clusters, "seed": seed, **overrides}
    return TrainConfig.from_dict(values)
