"""`TrainConfig`: everything one run of the joint method depends on, checked on creation, saved as config.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import timm

from .. import validation
from ..validation import Above, AtLeast, AtMost, Matches, NonEmpty, OneOf
from .cluster import CLUSTERERS, METHODS
from .heads import HEADS
from .optim import OPTIMIZER_OPTIONS, OPTIMIZERS

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
    `Annotated`, see `steelnb.validation`), the components' options against theirs, which are filled in;
    `from_dict` names the source of a bad value.

    >>> config = TrainConfig(clusterer="faiss", clusterer_options={"faiss": {"niter": 20}})
    >>> config.clusterer_options["faiss"], config.clusterer_options["kmeans"], config.optimizer_options
    ({'niter': 20, 'nredo': 5}, {'n_init': 10}, {'sgd': {'momentum': 0.9}})
    >>> TrainConfig.from_dict({"epochs": 0}, source="my.json")
    Traceback (most recent call last):
    ...
    steelnb.validation.ConfigError: my.json: epochs must be at least 1, got 0
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
    # Options of every clusterer (cluster.CLUSTERERS: kmeans n_init, faiss niter / nredo, ...); missing ones take
    # their defaults, and config.json records them all.
    clusterer_options: dict = field(default_factory=dict)
    cluster_batch_size: Positive = 256  # Mini-Batch K-Means batch (paper 256; its other options: clusterer_options)
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
    optimizer_options: dict = field(default_factory=dict)  # of the optimisers with options (optim: SGD momentum)
    lr: Annotated[float, Above(0)] = 1e-3
    head_lr: Annotated[float, Above(0)] = 1e-2
    weight_decay: Annotated[float, AtLeast(0)] = 1e-4
    warmup_epochs: Annotated[float, AtLeast(0)] = 1.0
    warmup_start_factor: Annotated[float, Above(0), AtMost(1)] = 0.1  # the warm-up starts at this x lr
    seed: Annotated[int, AtLeast(0)] = 0
    device: Annotated[str, DEVICES] = "auto"
    out_dir: Annotated[str, NonEmpty] = "runs/latest"
    dataset_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validation.check(self)
        clusterers = {name: clusterer.options for name, clusterer in CLUSTERERS.items()}
        self.clusterer_options = validation.options_by_name(clusterers, self.clusterer_options, "clusterer_options")
        self.optimizer_options = validation.options_by_name(OPTIMIZER_OPTIONS, self.optimizer_options,
                                                            "optimizer_options")

    @property
    def feature_size(self) -> int:
        """Input size of the features clustered and scored: `eval_size`, else `global_size`."""
        return self.eval_size or self.global_size

    @classmethod
    def from_dict(cls, values: dict, sources: dict[str, str] | None = None, source: str = "config") -> TrainConfig:
        """A config from `values`; an error names the field and where its value came from: `sources[field]`,
        else `source` (e.g. the --config file)."""
        return validation.from_dict(cls, values, sources, source)
