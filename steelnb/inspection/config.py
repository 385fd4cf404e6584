"""`TypesConfig`: the settings of the type stage of `steelnb inspect`, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .. import validation
from ..profiles import PROFILES
from ..validation import Above, AtLeast, AtMost, ConfigError, Help, OneOf

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

    types: Annotated[int | None, AtLeast(1), Help("number of defect types; none: chosen from the data")] = None
    min_types: Annotated[int, AtLeast(2), Help("the fewest types the choice looks at")] = 2
    max_types: Annotated[int, AtLeast(2), Help("the most types the choice looks at")] = 8
    type_choice: Annotated[str, OneOf(CHOICES), Help("how the number of types is chosen (see choice.py)")] = \
        "silhouette"
    crop_share: Annotated[float | None, Above(0), AtMost(1),
                          Help("crop side, a share of the shorter image side; none: from the flagged images' maps "
                               "(crops.py)")] = None
    profile: Annotated[str, OneOf(tuple(PROFILES)), Help("settings of the detection and of the joint method that "
                                                         "groups the types")] = "cpu"
    gallery: Annotated[int, AtLeast(1), Help("crops per type in its gallery, a count")] = 12

    def __post_init__(self) -> None:
        validation.check(self)
        if self.min_types > self.max_types:
            raise ConfigError(f"min_types ({self.min_types}) must not exceed max_types ({self.max_types})",
                              "min_types")

    @classmethod
    def from_dict(cls, values: dict, sources: dict[str, str] | None = None, source: str = "config") -> TypesConfig:
        """A config from `values`; an error names the field and the source of its value."""
        return validation.from_dict(cls, values, sources, source)
