"""Run profiles as data: `ci` (seconds, tiny subsets), `cpu` (2 laptop cores), `paper` (a GPU, the paper's settings).

`train` holds the TrainConfig overrides of one full run (`steelnb train --profile NAME`); `sweep` holds
further overrides for the many short runs of an ablation or stability notebook; `detect` the DetectConfig
overrides of detection (notebook 08, `steelnb detect --profile NAME`, and the detection stage of `steelnb inspect
--profile NAME` and of the notebooks' detect-then-group rows); the rest sizes the experiments. Timings of the `cpu`
profile are in the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .backbones import OFFLINE, OFFLINE_BACKBONES, PAPER_BACKBONES


@dataclass(frozen=True)
class Profile:
    """Settings of one profile; see the module docstring."""

    name: str
    train: dict = field(default_factory=dict)
    sweep: dict = field(default_factory=dict)
    detect: dict = field(default_factory=dict)
    detect_cap: int | None = None  # cap images per class of a detection pile (None: the whole pile)
    max_per_class: int | None = None  # cap images per class in experiment data sets (None: all)
    backbones: tuple[str, ...] = PAPER_BACKBONES  # rows of the backbone tables
    ablation_backbone: str = "resnet34"  # the paper's backbone for the clusterer / batch / optimiser ablations
    repeats: int = 10  # repetitions of a stability experiment
    seeds: tuple[int, ...] = tuple(range(10))  # seeds of repeated runs (NEU test runs, DAGM)

    def weights_for(self, backbone: str) -> str:
        """The profile's initialisation for `backbone`: "offline" exists only for EfficientNet-Lite0/1/2, so
        other backbones start random; "timm" and weight files apply to all."""
        weights = self.train.get("weights", "random")
        return "random" if weights == OFFLINE and backbone not in OFFLINE_BACKBONES else weights

    def sweep_config(self) -> dict:
        """TrainConfig overrides for one short run of a sweep."""
        return {**self.train, **self.sweep}


PROFILES = {
    "ci": Profile(
        "ci",
        train=dict(image_size=64, global_size=56, n_global=2, local_size=32, n_local=2, epochs=2, batch_size=16,
                   backbone="resnet18", pca_dim=32, extractor_every=2, clusterer="kmeans", max_per_class=12,
                   device="cpu"),
        sweep=dict(epochs=1, steps_per_epoch=2),
        detect=dict(max_side=64, backbone="resnet18", weights="random", bank_images=8, references=4, overlays=2,
                    device="cpu"),
        detect_cap=8,
        max_per_class=8, backbones=("resnet18",), ablation_backbone="resnet18", repeats=2, seeds=(0, 1),
    ),
    "cpu": Profile(
        "cpu",
        # The variant measured best on NEU (results/gpu): centroid head, 30 training clusters; AdamW, as
        # RAdam's un-adapted first steps hurt runs this short (results/cpu/03_optimizers).
        train=dict(image_size=200, eval_size=224, global_size=160, n_global=2, local_size=64, n_local=4,
                   epochs=3, batch_size=32, backbone="efficientnet_lite0", weights="offline", head="centroid",
                   n_clusters=30, pca_dim=64, extractor_every=2, optimizer="adamw", lr=3e-4, head_lr=1e-2,
                   clusterer="kmeans"),
        sweep=dict(image_size=112, eval_size=112, global_size=96, local_size=48, n_local=2, epochs=3,
                   n_clusters=12),
        max_per_class=60, backbones=("efficientnet_lite0", "resnet18", "convnextv2_atto"),
        ablation_backbone="efficientnet_lite0", repeats=3, seeds=(0,),
    ),
    "paper": Profile(
        "paper",
        train=dict(image_size=224, global_size=200, n_global=2, local_size=96, n_local=6, epochs=100, batch_size=64,
                   backbone="convnextv2_tiny", weights="timm", pca_dim=256, extractor_every=10,
                   clusterer="minibatch", optimizer="radam"),
        sweep=dict(epochs=30),
    ),
}


def get_profile(name: str) -> Profile:
    """The profile `name` (ci, cpu, paper).

    >>> profile = get_profile("ci")
    >>> profile.train["epochs"], profile.sweep_config()["epochs"], profile.weights_for("resnet18")
    (2, 1, 'random')
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
