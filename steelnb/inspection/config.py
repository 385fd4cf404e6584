"""`TypesConfig`: the settings of the type stage of `steelnb inspect`, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .. import validation
from ..profiles import PROFILES
from ..validation import Above, AtLeast, AtMost, ConfigError, OneOf

CHOICES = ("silhouette", "eigengap")  # how the number of types is chosen when --types is not given (choice.py)


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

    types: Annotated[int | None, AtLeast(1)] = None  # number of defect types; None: chosen from the data
    min_types: Annotated[int, AtLeast(2)] = 2  # the range the choice looks over
    max_types: Annotated[int, AtLeast(2)] = 8
    type_choice: Annotated[str, OneOf(CHOICES)] = "silhouette"  # silhouette | eigengap (see choice.py)
    crop_share: Annotated[float | None, Above(0), AtMost(1)] = None  # crop side, share of the shorter side; None:
    #                                                                 from the flagged images' maps (crops.py)
    regions: Annotated[int, AtLeast(1)] = 3  # crops per image at most: one per separate anomalous region (crops.py)
    top: Annotated[int | None, AtLeast(1)] = None  # also group the N highest-ranked images, flagged or not
    top_rate: Annotated[float | None, Above(0), AtMost(1)] = None  # also group this share of the ranking's top
    train_min_crops: Annotated[int, AtLeast(2)] = 300  # train the type stage only on this many crops or more
    #                                                    (and only where it tightens the types: grouping.py)
    profile: Annotated[str, OneOf(tuple(PROFILES))] = "cpu"  # the joint method's settings: ci | cpu | paper
    gallery: Annotated[int, AtLeast(1)] = 12  # crops per type in its gallery

    def __post_init__(self) -> None:
        validation.check(self)
        if self.min_types > self.max_types:
            raise ConfigError(f"min_types ({self.min_types}) must not exceed max_types ({self.max_types})",
                              "min_types")

    def top_count(self, n_images: int) -> int:
        """How many of the ranking's top images are grouped whatever the decision (`top`, `top_rate`: the larger)."""
        share = 0 if self.top_rate is None else round(self.top_rate * n_images)
        return min(n_images, max(self.top or 0, share))

    @classmethod
    def from_dict(cls, values: dict, sources: dict[str, str] | None = None, source: str = "config") -> TypesConfig:
        """A config from `values`; an error names the field and the source of its value."""
        return validation.from_dict(cls, values, sources, source)
