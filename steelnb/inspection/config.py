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
    profile: Annotated[str, OneOf(tuple(PROFILES))] = "cpu"  # the joint method's settings: ci | cpu | paper
    gallery: Annotated[int, AtLeast(1)] = 12  # crops per type in its gallery

    def __post_init__(self) -> None:
        validation.check(self)
        if self.min_types > self.max_types:
            raise ConfigError(f"min_types ({self.min_types}) must not exceed max_types ({self.max_types})",
                              "min_types")

    @classmethod
    def from_dict(cls, values: dict, sources: dict[str, str] | None = None, source: str = "config") -> TypesConfig:
        """A config from `values`; an error names the field and the source of its value."""
        return validation.from_dict(cls, values, sources, source)
