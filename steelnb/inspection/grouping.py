"""The type stage: the crops of the flagged images -> the paper's joint method, trained briefly on them with the
profile's settings -> the number of types (given, or chosen by `choice.py`) -> each crop's type.

The training never sees a label. Its settings are the profile's `train` table (`steelnb.profiles`: `ci` for
tests, `cpu` for real runs on a laptop) with three changes for a pile of crops: the images are the crops at the
profile's `image_size` (128 px when the profile leaves it); the pseudo-labels number the profile's `n_clusters`
but at most a third of the crops (at least the answer's count), so that each holds about three crops or more;
the answer is the method's own (its last clustering, `assignments.csv`) in the given number of types or, when
none is given, in the number chosen beforehand on the features the training starts from (`choose_at_start`).

>>> import numpy as np
>>> from steelnb.data import ImageSet
>>> crops = ImageSet("crops", np.zeros((1, 1, 32, 32), np.uint8), np.full(1, -1), np.full(1, -1, np.int8), (),
...                  ("a",))
>>> found = group_types(crops, TypesConfig(profile="ci"))
>>> found.k, found.types.tolist(), found.how
(1, [0], 'one flagged image: one type')
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..backbones import create_backbone, extract_features, resolve_device
from ..data import ImageSet
from ..method.cluster import Preprocessor, cluster
from ..method.config import TrainConfig
from ..method.train import train
from ..profiles import get_profile
from .choice import TypeChoice, candidates, choose_types
from .config import TypesConfig

CROP_SIZE = 128  # the crops' size when the profile names no image_size


@dataclass
class Grouping:
    """Each crop's type (0..k-1) and its distance to the type's centre; how k came about; the training's record."""

    types: np.ndarray
    distances: np.ndarray
    k: int
    how: str
    choice: pd.DataFrame | None = None  # the candidates' scores when k was chosen (columns k, score)
    history: pd.DataFrame | None = None  # the training's history.csv
    train_config: TrainConfig | None = None
    run: dict | None = None  # run_info of the training (backbone, weights, device, machine, seconds)

    def record(self) -> dict:
        """What metrics.json says of the type stage."""
        out = {"k": self.k, "how": self.how, "sizes": np.bincount(self.types, minlength=self.k).tolist()}
        if self.run is not None:
            out["run"] = self.run
        return out


def crop_size(profile: str) -> int:
    """The side the crops are resized to: the profile's training `image_size`, else CROP_SIZE."""
    return get_profile(profile).train.get("image_size") or CROP_SIZE


def train_config(config: TypesConfig, n_crops: int, answer: int, seed: int = 0, device: str = "auto",
                 out_dir: str = "runs/types", name: str = "crops") -> TrainConfig:
    """The joint method's settings for `n_crops` crops answered in `answer` types (see the module docstring)."""
    settings = {k: v for k, v in get_profile(config.profile).train.items() if k != "max_per_class"}
    pseudo = settings.get("n_clusters", TrainConfig.n_clusters)
    pseudo = max(answer, 2, min(pseudo, n_crops // 3))
    settings.update(dataset=name, image_size=crop_size(config.profile), n_clusters=min(pseudo, n_crops),
                    eval_clusters=max(answer, 2), seed=seed, out_dir=out_dir)
    if device != "auto" or "device" not in settings:
        settings["device"] = device
    return TrainConfig.from_dict(settings, source=f"profile {config.profile}")


def group_types(crops: ImageSet, config: TypesConfig, seed: int = 0, device: str = "auto") -> Grouping:
    """The type of each crop of `crops` (uint8 (M, C, S, S), M >= 1; labels are not used)."""
    n = len(crops)
    if n == 0:
        raise ValueError("group_types: no crops (nothing was flagged)")
    given = config.types
    if given is not None and given > n:
        how = f"{given} types asked for, but only {n} images were flagged: {n} types"
        given = n
    else:
        how = f"given: {given} type{'s' * (given != 1)}" if given is not None else ""
    if n == 1 or given == 1:
        return Grouping(np.zeros(n, np.int64), np.zeros(n), 1, "one flagged image: one type" if n == 1 else how)
    if given is None and not candidates(n, config.min_types, config.max_types):
        return Grouping(np.zeros(n, np.int64), np.zeros(n), 1,
                        f"{n} flagged images are too few to choose among {config.min_types}..{config.max_types} "
                        "types: one type")
    choice = None
    with tempfile.TemporaryDirectory(prefix="steelnb-types-") as scratch:
        if given is None:
            chosen = choose_at_start(crops, config, train_config(config, n, 2, seed, device, scratch, crops.name))
            given, how, choice = chosen.k, chosen.how, chosen.scores
        settings = train_config(config, n, given, seed, device, scratch, crops.name)
        result = train(settings, crops)
        history = pd.read_csv(Path(scratch) / "history.csv")
        answer = pd.read_csv(Path(scratch) / "assignments.csv")
    return Grouping(answer["cluster"].to_numpy(np.int64), answer["distance"].to_numpy(float), given, how, choice,
                    history, settings, result["run"])


def choose_at_start(crops: ImageSet, config: TypesConfig, settings: TrainConfig) -> TypeChoice:
    """The number of types (`choice.choose_types`) on the features the training starts from: the profile's backbone
    and weights (seeded as the run seeds them), PCA and L2 as the method's first clustering, its clusterer.

    Not on the trained features: the training pulls the crops towards its `n_clusters` pseudo-labels, and on the
    synthetic set (the previous generator's) the silhouette then grew with k to the end of the range (8 chosen
    for 6 types, cpu profile), where on the starting features it found the 6 types.
    """
    torch.manual_seed(settings.seed)
    backbone = create_backbone(settings.backbone, settings.weights)
    features = extract_features(backbone, crops.images, settings.feature_size,
                                device=resolve_device(settings.device), desc="types: starting features")
    reduce = Preprocessor.fit(features, settings.pca_dim, whiten=settings.whiten, seed=settings.seed)
    points = reduce.transform(features)

    def clusterer(values: np.ndarray, k: int) -> np.ndarray:
        return cluster(values, k, settings.clusterer, settings.seed, settings.cluster_batch_size,
                       settings.clusterer_options[settings.clusterer]).labels

    return choose_types(points, config.min_types, config.max_types, config.type_choice, clusterer,
                        "the crops' features before training")


def settings_record(grouping: Grouping) -> dict | None:
    """The training's TrainConfig as config.json records it (None when nothing was trained)."""
    return None if grouping.train_config is None else asdict(grouping.train_config)
