"""`TrainConfig`: everything one run of the joint method depends on, checked on creation, saved as config.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import timm

from .. import validation
from ..validation import Above, AtLeast, AtMost, Help, Matches, NonEmpty, OneOf
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

    dataset: Annotated[str, NonEmpty, Help("a named set (synthetic, neu, dagm, ksdd, severstal) or an image "
                                            "folder")] = "synthetic"
    data_root: Annotated[str | None, Help("folder holding the named sets; none: $STEELNB_DATA")] = None
    image_size: Annotated[MaybePositive, Help("decode size, pixels a side; none: the set's own (NEU 200, DAGM 256, "
                                              "synthetic 128)")] = None
    max_per_class: Annotated[MaybePositive, Help("cap on the images of each class (tiny subsets for CI); none: all"
                                                 )] = None
    labels: Annotated[str, OneOf(("classes", "defect")), Help("score the answer against the classes or against "
                                                              "defect / defect-free")] = "classes"
    backbone: Annotated[str, timm_model, Help("timm model name")] = "resnet18"
    weights: Annotated[str, NonEmpty, Help("random | timm | offline | path to a state dict")] = "random"
    n_clusters: Annotated[int, AtLeast(2), Help("K of the pseudo-labels while training (may exceed the classes)"
                                                )] = 7
    eval_clusters: Annotated[int | None, AtLeast(2), Help("K of the answer; none: the number of classes, else "
                                                          "n_clusters")] = None
    clusterer: Annotated[str, OneOf(METHODS), Help("k-means variant of the pseudo-labels and the answer")] = \
        "minibatch"
    # Options of every clusterer (cluster.CLUSTERERS: kmeans n_init, faiss niter / nredo, ...); missing ones take
    # their defaults, and config.json records them all.
    clusterer_options: dict = field(default_factory=dict)
    cluster_batch_size: Annotated[Positive, Help("Mini-Batch K-Means batch, in features (paper 256)")] = 256
    pca_dim: Annotated[MaybePositive, Help("PCA dimensions before clustering; none: no PCA")] = 128
    whiten: Annotated[bool, Help("PCA-whitening (DeepCluster's; hurt k-means on NEU: see cluster.Preprocessor)"
                                 )] = False
    n_global: Annotated[Positive, Help("global crops per image and step")] = 2
    global_size: Annotated[Positive, Help("side of a global crop, in pixels")] = 112
    eval_size: Annotated[MaybePositive, Help("input side for feature extraction, in pixels; none: global_size"
                                             )] = None
    n_local: Annotated[int, AtLeast(0), Help("local crops per image and step")] = 4
    local_size: Annotated[Positive, Help("side of a local crop, in pixels")] = 48
    head: Annotated[str, OneOf(HEADS), Help("classifier head: linear (the paper's), cosine (eq. 11), centroid (see "
                                            "make_head)")] = "linear"
    temperature: Annotated[float, Above(0), Help("softmax temperature of the head")] = 0.1
    epochs: Annotated[Positive, Help("training epochs")] = 10
    batch_size: Annotated[Positive, Help("images per training step")] = 32
    steps_per_epoch: Annotated[MaybePositive, Help("training steps per epoch; none: one pass over the data set"
                                                   )] = None
    extractor_every: Annotated[Positive, Help("the extractor steps once every this many training steps (the "
                                              "head every step; 1: plain DeepCluster)")] = 10
    optimizer: Annotated[str, OneOf(tuple(OPTIMIZERS)), Help("optimiser of the backbone and head")] = "radam"
    optimizer_options: dict = field(default_factory=dict)  # of the optimisers with options (optim: SGD momentum)
    lr: Annotated[float, Above(0), Help("learning rate of the backbone")] = 1e-3
    head_lr: Annotated[float, Above(0), Help("learning rate of the head")] = 1e-2
    weight_decay: Annotated[float, AtLeast(0), Help("weight decay of the optimiser")] = 1e-4
    warmup_epochs: Annotated[float, AtLeast(0), Help("linear learning-rate warm-up, in epochs")] = 1.0
    warmup_start_factor: Annotated[float, Above(0), AtMost(1), Help("the warm-up starts at this x lr")] = 0.1
    seed: Annotated[int, AtLeast(0), Help("seed of every random choice")] = 0
    device: Annotated[str, DEVICES, Help("where the model runs")] = "auto"
    out_dir: Annotated[str, NonEmpty, Help("the run folder to write (new or empty)")] = "runs/latest"
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
