"""The type stage: the crops of the flagged images -> the number of types (given, or chosen by `choice.py`) ->
each crop's type, from the crops' starting features or, where the pile is large enough and training pays, from
the paper's joint method trained briefly on them.

The answer starts from the crops' features before any training (the profile's backbone and weights, its maps at
the strides `--levels` names, the method's PCA and L2, its clusterer: `starting_points`), clustered into the given
number of types or the one chosen on the backbone's last features. Then:

- fewer crops than `TypesConfig.train_min_crops` (300): that is the answer; nothing is trained. On the synthetic
  pile of `make run` (115 crops) a brief training lost what the starting features held (types ACC 0.751 ->
  0.339, results/inspect/README.md), while on NEU's 1,800 crops it added to them (0.941 -> 0.969); 300 lies
  between, and a pile of 300 crops in up to 8 types leaves each type about 40 crops to learn from.
- otherwise the joint method trains on the crops (no label) and `training_decision` keeps its answer only when the
  trained features' clustering is tighter than the starting features' at the same k (larger mean silhouette,
  each on its own L2-normalised points: the starting features' levels, the trained extractor's last features): a
  label-free check that the training sharpened the types rather than scattering them. metrics.json's
  `type_stage.training` says which answered and why, with both silhouettes.

The starting features pool the backbone's feature map over each crop's defect region (`TypesConfig.pooling`
"region", the default: the part of the crop where its image's anomaly map lies at least half the way from its
median to its peak, `crops.crop_weights`), not over the whole crop, so that the texture around a defect does not
decide its type. On the synthetic piles of seeds 1 / 2 (600 images at 256 px, 6 types given, cpu profile) the
types among the flagged reach ACC 0.922 / 0.807 so, against 0.748 / 0.632 with the plain mean ("mean") and
0.835 / 0.798 weighted by the map ("map"); results/inspect/README.md. On NEU the trained answer keeps the types
(0.968 at seed 0, one thread), though a brief training's path is fragile: the same run on two threads gave 0.862.

The training's settings are the profile's `train` table (`steelnb.profiles`: `ci` for tests, `cpu` for real
runs on a laptop) with three changes for a pile of crops: the images are the crops at the profile's `image_size`
(128 px when the profile leaves it); the pseudo-labels number the profile's `n_clusters` but at most a third of
the crops (at least the answer's count), so that each holds about three crops or more; the trained answer is the
method's own (its last clustering and the points it clustered, as the `Trainer` keeps them).

>>> import numpy as np
>>> from steelnb.data import ImageSet
>>> crops = ImageSet("crops", np.zeros((1, 1, 32, 32), np.uint8), np.full(1, -1), np.full(1, -1, np.int8), (),
...                  ("a",))
>>> found = group_types(crops, TypesConfig(profile="ci"))
>>> found.k, found.types.tolist(), found.how
(1, [0], 'one crop: one type')
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import silhouette_score

from ..backbones import create_backbone, extract_features, extract_levels, resolve_device
from ..data import ImageSet
from ..method.cluster import Clustering, Preprocessor, cluster
from ..method.config import TrainConfig
from ..method.train import Trainer
from ..patches import feature_levels
from ..profiles import get_profile
from .choice import candidates, choose_types
from .config import TypesConfig

CROP_SIZE = 128  # the crops' size when the profile names no image_size
STARTING, TRAINED = "starting features", "trained features"


@dataclass
class Grouping:
    """Each crop's type (0..k-1) and its distance to the type's centre; how k came about; which features answered
    (`training`); the starting features' answer (`starting`); the training's answer and record where one ran."""

    types: np.ndarray
    distances: np.ndarray
    k: int
    how: str
    choice: pd.DataFrame | None = None  # the candidates' scores when k was chosen (columns k, score)
    history: pd.DataFrame | None = None  # the training's history.csv
    train_config: TrainConfig | None = None
    run: dict | None = None  # run_info of the training (backbone, weights, device, machine, seconds); untrained:
    #                          the starting features' backbone and weights, `trained` False
    training: dict | None = None  # used, why, the two silhouettes (see `training_decision`)
    starting: np.ndarray | None = None  # each crop's type on the starting features
    trained: np.ndarray | None = None  # each crop's type on the trained features, where a training ran (kept or
    #                                    not: benchmarks/inspect_types.py scores both answers)

    def record(self) -> dict:
        """What metrics.json says of the type stage."""
        out = {"k": self.k, "how": self.how, "sizes": np.bincount(self.types, minlength=self.k).tolist()}
        if self.training is not None:
            out["training"] = self.training
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


def group_types(crops: ImageSet, config: TypesConfig, seed: int = 0, device: str = "auto",
                weights: np.ndarray | None = None) -> Grouping:
    """The type of each crop of `crops` (uint8 (M, C, S, S), M >= 1; labels are not used); `weights` (M, h, w):
    how anomalous each part of each crop is (`crops.crop_weights`), needed unless `config.pooling` is "mean"."""
    n = len(crops)
    if n == 0:
        raise ValueError("group_types: no crops (nothing was flagged)")
    given = config.types
    if given is not None and given > n:
        how = f"{given} types asked for, but only {n} crop{'s' * (n != 1)} to group: {n} types"
        given = n
    else:
        how = f"given: {given} type{'s' * (given != 1)}" if given is not None else ""
    if n == 1 or given == 1:
        return Grouping(np.zeros(n, np.int64), np.zeros(n), 1, "one crop: one type" if n == 1 else how)
    if given is None and not candidates(n, config.min_types, config.max_types):
        return Grouping(np.zeros(n, np.int64), np.zeros(n), 1,
                        f"{n} crops are too few to choose among {config.min_types}..{config.max_types} types: "
                        "one type")
    choice = None
    with tempfile.TemporaryDirectory(prefix="steelnb-types-") as scratch:
        settings = train_config(config, n, given or 2, seed, device, scratch, crops.name)
        start_points = starting_points(crops, settings, weights, config.pooling, config.strides)
        points, features = start_points.grouped, start_points.record
        if given is None:
            chosen = choose_types(start_points.last, config.min_types, config.max_types, config.type_choice,
                                  lambda values, k: clustering(values, k, settings).labels,
                                  "the crops' last starting features")
            given, how, choice = chosen.k, chosen.how, chosen.scores
        start = clustering(points, given, settings)
        if n < config.train_min_crops:
            training = {"used": STARTING, "why": f"{n} crops, fewer than {config.train_min_crops} "
                        "(--train-min-crops): too few to train on", "crops": n,
                        "silhouette_starting": _silhouette(points, start.labels), "silhouette_trained": None}
            return Grouping(start.labels, start.distances.astype(float), given, how, choice, run=features,
                            training=training, starting=start.labels)
        settings = train_config(config, n, given, seed, device, scratch, crops.name)
        trainer = Trainer(settings, crops)
        result = trainer.run()
        history = pd.read_csv(Path(scratch) / "history.csv")
    answer, trained = trainer.final, trainer.final_points
    labels = answer.labels.astype(np.int64)
    training = {**training_decision(points, start.labels, trained, labels), "crops": n}
    if training["used"] == TRAINED:
        types, distances = labels, answer.distances.astype(float)
    else:
        types, distances = start.labels, start.distances.astype(float)
    return Grouping(types, distances, given, how, choice, history, settings, result["run"], training, start.labels,
                    labels)


def training_decision(starting: np.ndarray, starting_labels: np.ndarray, trained: np.ndarray,
                      trained_labels: np.ndarray) -> dict:
    """Which answer to keep: the trained features' clustering only when its mean silhouette (on its own points)
    is larger than the starting features' clustering's at the same k; {used, why, both silhouettes}.

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 20)
    >>> loose = rng.normal(size=(40, 4)) + labels[:, None]  # two groups that overlap
    >>> tight = rng.normal(size=(40, 4)) * 0.1 + 3 * labels[:, None]  # the same two, well apart
    >>> training_decision(loose, labels, tight, labels)["used"], training_decision(tight, labels, loose, labels)["used"]
    ('trained features', 'starting features')
    """
    before, after = _silhouette(starting, starting_labels), _silhouette(trained, trained_labels)
    helps = bool(after > before)  # NaN (one cluster) never helps
    verb = "raised" if helps else "did not raise"
    why = f"training {verb} the mean silhouette at the same k ({before:.4f} -> {after:.4f})"
    return {"used": TRAINED if helps else STARTING, "why": why, "silhouette_starting": before,
            "silhouette_trained": after}


def _silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of `labels` on `points` (NaN for one cluster, or one a point), rounded for metrics.json."""
    if not 2 <= len(np.unique(labels)) < len(points):
        return float("nan")
    return round(float(silhouette_score(points, labels)), 4)


def clustering(points: np.ndarray, k: int, settings: TrainConfig) -> Clustering:
    """`points` into `k` clusters with the method's clusterer and options, as its runs cluster."""
    return cluster(points, k, settings.clusterer, settings.seed, settings.cluster_batch_size,
                   settings.clusterer_options[settings.clusterer])


@dataclass
class StartingPoints:
    """The crops' points before any training: `grouped`, what is clustered into types (the levels joined);
    `last`, the backbone's last features, what the number of types is chosen on; `record`, what they are."""

    grouped: np.ndarray
    last: np.ndarray
    record: dict


def starting_points(crops: ImageSet, settings: TrainConfig, weights: np.ndarray | None = None,
                    pooling: str = "mean", strides: tuple[int, ...] | None = None) -> StartingPoints:
    """The crops' features before any training: the profile's backbone and weights (seeded as the run seeds them),
    pooled as `pooling` says (`TypesConfig.pooling`: "mean" the backbone's own pooling of its last map and the
    plain mean of each level; "map" and "region" weight the feature map by `weights`, each crop's anomaly over its
    area or its defect region (`crops.crop_weights`), so that the defect counts more than the texture around it),
    reduced by PCA and L2 as the method's first clustering reduces them; the grouping's from the maps at `strides`
    (`TypesConfig.levels`), each scaled to a unit mean norm over the crops and joined, or from the last features
    where `strides` is None.

    Why the levels: the last map of a 224 px crop is 7 x 7 cells, so a small defect's region shares its cells with
    the texture around it, and its features (after the classifier's head) describe ImageNet's objects; the maps at
    strides 16 and 32 (before the head) pool the region on a finer grid. On the synthetic piles of seeds 1 / 2 the
    types among the flagged rose from 0.850 / 0.836 (types chosen) to 0.908 / 0.836, and from 0.883 / 0.802 to
    0.908 / 0.853 with 6 given; NEU's starting answer from 0.881 to 0.944 (results/inspect/README.md). The number
    of types is still chosen on the last features: on the levels the silhouette chose 5 of 6 types on seeds 0 and
    2 (scratch), on the last features 7 and 5.
    It is not chosen on trained features: the training pulls the crops towards its `n_clusters` pseudo-labels, and
    on the synthetic set (the previous generator's) the silhouette then grew with k to the end of the range.
    """
    if pooling != "mean" and weights is None:
        raise ValueError(f"pooling {pooling!r} needs each crop's anomaly weights (crops.crop_weights)")
    torch.manual_seed(settings.seed)
    backbone = create_backbone(settings.backbone, settings.weights)
    device = resolve_device(settings.device)
    record = {"backbone": backbone.name, "weights": backbone.weights, "trained": False, "pooling": pooling,
              "levels": "last" if strides is None else ",".join(map(str, strides))}
    desc = "types: starting features"
    if strides is None:
        last = _reduced(extract_features(backbone, crops.images, settings.feature_size, device=device, desc=desc,
                                         weights=None if pooling == "mean" else weights), settings)
        return StartingPoints(last, last, record)
    parts = extract_levels(backbone, crops.images, feature_levels(backbone.model, strides),
                           None if pooling == "mean" else weights, settings.feature_size, device=device, desc=desc)
    joined = np.concatenate([part / max(float(np.linalg.norm(part, axis=1).mean()), 1e-12) for part in parts[1:]], 1)
    return StartingPoints(_reduced(joined, settings), _reduced(parts[0], settings), record)


def _reduced(features: np.ndarray, settings: TrainConfig) -> np.ndarray:
    """`features` reduced by PCA and L2 as the method's first clustering reduces them."""
    return Preprocessor.fit(features, settings.pca_dim, whiten=settings.whiten, seed=settings.seed).transform(features)


def settings_record(grouping: Grouping) -> dict | None:
    """The training's TrainConfig as config.json records it (None when nothing was trained)."""
    return None if grouping.train_config is None else asdict(grouping.train_config)
