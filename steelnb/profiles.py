"""Run profiles as data: `ci` (seconds, tiny subsets), `cpu` (2 laptop cores), `paper` (a GPU, the paper's settings)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    """Training settings (TrainConfig overrides) and the size of an experiment."""

    name: str
    train: dict = field(default_factory=dict)
    repeats: int = 10  # repetitions of a stability experiment
    seeds: tuple[int, ...] = (0, 1, 2)


PROFILES = {
    "ci": Profile(
        "ci",
        train=dict(image_size=64, global_size=56, n_global=2, local_size=32, n_local=2, epochs=2, batch_size=16,
                   backbone="resnet18", pca_dim=32, extractor_every=2, clusterer="kmeans", max_per_class=12),
        repeats=2, seeds=(0,),
    ),
    "cpu": Profile(
        "cpu",
        train=dict(image_size=128, global_size=112, n_global=2, local_size=48, n_local=4, epochs=8, batch_size=32,
                   backbone="efficientnet_lite0", weights="offline", pca_dim=128, extractor_every=2,
                   clusterer="kmeans"),
        repeats=3, seeds=(0, 1, 2),
    ),
    "paper": Profile(
        "paper",
        train=dict(image_size=224, global_size=200, n_global=2, local_size=96, n_local=6, epochs=100, batch_size=64,
                   backbone="convnextv2_tiny", weights="timm", pca_dim=256, extractor_every=10,
                   clusterer="minibatch", optimizer="radam"),
        repeats=10, seeds=tuple(range(10)),
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
