"""`TrainConfig`: everything one run of the joint method depends on, checked on creation, saved as config.json."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Annotated

import timm

from .. import validation
from ..validation import Above, AtLeast, ConfigError, Matches, NonEmpty, OneOf
from .cluster import METHODS
from .heads import HEADS
from .optim import OPTIMIZERS

DEVICES = Matches(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, mps, cuda or cuda:N")


def timm_model(name: str) -> str | None:
    """A rule (see steelnb.validation): `name` must be a model timm can create."""
    return None if timm.is_model(name) else "must be a timm model name (see timm.list_models())"


Positive = Annotated[int, AtLeast(1)]
MaybePositive = Annotated[int | None, AtLeast(1)]


@dataclass
class TrainConfig:
    """Everything one run depends on; saved as config.json beside its results.

    Every field is checked on creation against its annotation (type, and the range or choices in
    `Annotated`, see `steelnb.validation`); `from_dict` names the source of a bad value.
    """

    dataset: Annotated[str, NonEmpty] = "synthetic"
    data_root: str | None = None
    image_size: MaybePositive = None  # decode size S; None: the data set's own (NEU 200, DAGM 256, synthetic 128)
    max_per_class: MaybePositive = None  # cap images per class (tiny subsets for CI)
    labels: Annotated[str, OneOf(("classes", "defect"))] = "classes"  # score against classes or defect / defect-free
    backbone: Annotated[str, timm_model] = "resnet18"
    weights: Annotated[str, NonEmpty] = "random"  # random | timm | offline | path to a state dict
    n_clusters: Annotated[int, AtLeast(2)] = 7  # K of the pseudo-labels while training (may exceed the classes)
    eval_clusters: Annotated[int | None, AtLeast(2)] = None  # K of the answer; None: number of classes, else n_clusters
    clusterer: Annotated[str, OneOf(METHODS)] = "minibatch"
    cluster_batch_size: Positive = 256  # Mini-Batch K-Means batch (paper 256; init_size 3x, reassignment_ratio 0.01)
    pca_dim: MaybePositive = 128
    whiten: bool = False  # PCA-whitening (DeepCluster's) hurt k-means on NEU: see cluster.Preprocessor
    n_global: Positive = 2
    global_size: Positive = 112
    eval_size: MaybePositive = None  # input size for feature extraction (None: global_size)
    n_local: Annotated[int, AtLeast(0)] = 4
    local_size: Positive = 48
    head: Annotated[str, OneOf(HEADS)] = "linear"  # linear (the paper's) | cosine (eq. 11) | centroid (see make_head)
    temperature: Annotated[float, Above(0)] = 0.1
    epochs: Positive = 10
    batch_size: Positive = 32
    steps_per_epoch: MaybePositive = None  # None: one pass over the data set
    extractor_every: Positive = 10
    optimizer: Annotated[str, OneOf(tuple(OPTIMIZERS))] = "radam"
    lr: Annotated[float, Above(0)] = 1e-3
    head_lr: Annotated[float, Above(0)] = 1e-2
    weight_decay: Annotated[float, AtLeast(0)] = 1e-4
    warmup_epochs: Annotated[float, AtLeast(0)] = 1.0
    seed: Annotated[int, AtLeast(0)] = 0
    device: Annotated[str, DEVICES] = "auto"
    out_dir: Annotated[str, NonEmpty] = "runs/latest"
    dataset_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validation.check(self)

    @property
    def feature_size(self) -> int:
        """Input size of the features clustered and scored: `eval_size`, else `global_size`."""
        return self.eval_size or self.global_size

    @classmethod
    def from_dict(cls, values: dict, sources: dict[str, str] | None = None, source: str = "config") -> TrainConfig:
        """A config from `values`; an error names the field and where its value came from: `sources[field]`,
        else `source` (e.g. the --config file)."""
        sources = sources or {}
        if not isinstance(values, dict):
            kind = type(values).__name__
            raise ConfigError(f"{source}: a config must be a JSON object of TrainConfig fields, got {kind}")
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            where = sorted({sources.get(k, source) for k in unknown})
            raise ConfigError(f"{', '.join(where)}: unknown config keys {sorted(unknown)}")
        try:
            return cls(**values)
        except ConfigError as error:
            raise validation.with_source(error, sources, source) from None
