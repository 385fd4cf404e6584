"""`TypesConfig`: the settings of the type stage of `steelnb inspect`, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .. import validation
from ..profiles import PROFILES
from ..validation import Above, AtLeast, AtMost, ConfigError, Help, Matches, OneOf

CHOICES = ("silhouette", "eigengap")  # how the number of types is chosen when --types is not given (choice.py)
POOLINGS = ("mean", "map", "region")  # how a crop's starting features pool the backbone's feature map (grouping.py)
LEVELS = Matches(r"last|(4|8|16|32)(,(4|8|16|32))*",
                 "last, or strides out of 4, 8, 16, 32 joined by commas, e.g. 16,32")  # the grouping's feature maps


@dataclass
class TypesConfig:
    """How the flagged images are grouped into defect types (the flags of the same names).

    Every field is checked on creation against its annotation (see `steelnb.validation`). The joint method's
    settings are the profile's (`steelnb.profiles`, its `train` table); the seed and device are the detection's.

    >>> TypesConfig(types=4).crop_share is None  # the crop's size comes from the anomaly maps
    True
    >>> TypesConfig(top=20).top_count(500), TypesConfig(top_rate=0.1).top_count(500), TypesConfig().top_count(500)
    (20, 50, 0)
    >>> TypesConfig(min_types=5, max_types=3)
    Traceback (most recent call last):
    ...
    steelnb.validation.ConfigError: min_types (5) must not exceed max_types (3)
    """

    types: Annotated[int | None, AtLeast(1), Help("number of defect types; none: chosen from the data")] = None
    min_types: Annotated[int, AtLeast(2), Help("the fewest types the choice looks at")] = 2
    max_types: Annotated[int, AtLeast(2), Help("the most types the choice looks at")] = 8
    type_choice: Annotated[str, OneOf(CHOICES), Help("how the number of types is chosen (see choice.py)")] = \
        "silhouette"
    crop_share: Annotated[float | None, Above(0), AtMost(1),
                          Help("crop side, a share of the shorter image side; none: from the flagged images' maps "
                               "(crops.py)")] = None
    pooling: Annotated[str, OneOf(POOLINGS),
                       Help("the crops' starting features: the backbone's plain mean (mean), its mean weighted by "
                            "the anomaly map over the crop (map), or its mean over the crop's defect region "
                            "(region: where the map is half the way from its median to its peak or above)")] = "region"
    levels: Annotated[str, LEVELS,
                      Help("the feature maps the crops are grouped on, by stride, each pooled as --pooling says and "
                           "joined (the number of types is chosen on the backbone's last features); last: those "
                           "features alone")] = "16,32"
    regions: Annotated[int, AtLeast(1), Help("crops per image at most: one per separate anomalous region, a "
                                             "count")] = 3
    top: Annotated[int | None, AtLeast(1), Help("also group the N highest-ranked images, flagged or not")] = None
    top_rate: Annotated[float | None, Above(0), AtMost(1), Help("also group this share of the ranking's top")] = None
    train_min_crops: Annotated[int, AtLeast(2), Help("train the type stage only on this many crops or more, and only "
                                                     "where it tightens the types (grouping.py)")] = 300
    profile: Annotated[str, OneOf(tuple(PROFILES)), Help("settings of the detection and of the joint method that "
                                                         "groups the types")] = "cpu"
    gallery: Annotated[int, AtLeast(1), Help("crops per type in its gallery, a count")] = 12

    def __post_init__(self) -> None:
        validation.check(self)
        if self.min_types > self.max_types:
            raise ConfigError(f"min_types ({self.min_types}) must not exceed max_types ({self.max_types})",
                              "min_types")

    @property
    def strides(self) -> tuple[int, ...] | None:
        """The grouping's feature levels by stride, finest first, each once; None: the backbone's last features
        alone ("last").

        >>> TypesConfig(levels="32,16,16").strides, TypesConfig(levels="last").strides
        ((16, 32), None)
        """
        return None if self.levels == "last" else tuple(sorted({int(part) for part in self.levels.split(",")}))

    def top_count(self, n_images: int) -> int:
        """How many of the ranking's top images are grouped whatever the decision (`top`, `top_rate`: the larger)."""
        share = 0 if self.top_rate is None else round(self.top_rate * n_images)
        return min(n_images, max(self.top or 0, share))

    @classmethod
    def from_dict(cls, values: dict, sources: dict[str, str] | None = None, source: str = "config") -> TypesConfig:
        """A config from `values`; an error names the field and the source of its value."""
        return validation.from_dict(cls, values, sources, source)
