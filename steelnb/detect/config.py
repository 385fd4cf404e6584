"""`DetectConfig`: everything one detection run depends on, checked on creation and saved as config.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .. import validation
from ..validation import Above, AtLeast, AtMost, Below, Matches, NonEmpty, OneOf
from .position import CELLS

METHODS = ("bank", "self", "mutual", "fused")
RULES = ("mad", "gmm", "gap", "null")
STRIDES = Matches(r"(4|8|16|32)(,(4|8|16|32))*", "strides out of 4, 8, 16, 32 joined by commas, e.g. 8,16")
Share = Annotated[float, Above(0), AtMost(1)]  # a share in (0, 1]


@dataclass
class DetectConfig:
    """Settings of `steelnb detect` (the flags of the same names; see docs/ARCHITECTURE.md for the method).

    Every field is checked on creation against its annotation (see `steelnb.validation`).

    >>> DetectConfig(method="bank", strides="8,16").stride_list
    (8, 16)
    """

    dataset: Annotated[str, NonEmpty] = "synthetic"  # a named set (ksdd, dagm, ...) or an image folder
    data_root: str | None = None
    normal_class: str | None = None  # the defect-free sub-folder of a labelled folder (labels score only)
    max_side: Annotated[int, AtLeast(32)] = 512  # images read at their own aspect, the longer side at most this
    backbone: Annotated[str, NonEmpty] = "efficientnet_lite2"
    weights: Annotated[str, NonEmpty] = "offline"  # random | timm | offline | path to a state dict
    strides: Annotated[str, STRIDES] = "16"  # feature levels, by stride; the finest is the map's grid
    balance_levels: bool = False  # each level scaled to a unit mean patch norm over a sample of the pile
    tile: Annotated[int, AtLeast(64)] = 1024  # images larger than this (pixels a side) are cut into tiles
    method: Annotated[str, OneOf(METHODS)] = "self"  # self: own image | bank | mutual (MuSc) | fused: self + mutual
    cells: Annotated[str, OneOf(CELLS)] = "none"  # each grid cell against the pile at that cell (position.py)
    bank_images: Annotated[int, AtLeast(2)] = 256  # bank: reference images drawn from the pile (two halves)
    bank_share: Share = 0.03  # bank: share of each reference image's patches kept
    denoise: Annotated[float, AtLeast(0), Below(1)] = 0.0  # bank: share of bank patches dropped as outliers (SoftPatch)
    self_radius: Annotated[int, AtLeast(1)] = 6  # self: cells around a patch that it may not match
    references: Annotated[int, AtLeast(1)] = 24  # mutual: other images each image is scored against
    mutual_band: Share = 0.3  # mutual: mean of the lowest share of per-image distances
    window: Annotated[float, AtLeast(0), AtMost(1)] = 0.0  # mutual: match within this share of the grid (0: anywhere)
    sigma: Annotated[float, AtLeast(0)] = 0.0  # Gaussian smoothing of the map, in cells
    top_share: Share = 0.01  # image score: mean of the top share of its map's cells
    rule: Annotated[str, OneOf(RULES)] = "mad"  # the label-free decision (see decision.py)
    cutoff: Annotated[float, Above(0)] = 3.0  # mad: robust z of the log score above which = defective
    target_mdr: Annotated[float, AtLeast(0), AtMost(1)] = 0.05  # with labels: the calibrated MDR target
    calibration_share: Annotated[float, Above(0), Below(1)] = 0.2  # with labels: share of the pile that calibrates it
    overlays: Annotated[int, AtLeast(0)] = 16  # PNG overlays of the top-ranked images
    all_overlays: bool = False  # an overlay for every image
    batch_size: Annotated[int, AtLeast(1)] = 8
    seed: Annotated[int, AtLeast(0)] = 0
    device: Annotated[str, Matches(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, mps, cuda or cuda:N")] = "auto"
    out_dir: Annotated[str, NonEmpty] = "runs/detect"

    def __post_init__(self) -> None:
        validation.check(self)
        if self.tile % max(self.stride_list):
            raise validation.ConfigError(f"--tile {self.tile} must be a multiple of the coarsest stride, "
                                         f"{max(self.stride_list)} (--strides {self.strides})", "tile")

    @property
    def stride_list(self) -> tuple[int, ...]:
        return tuple(sorted({int(s) for s in self.strides.split(",")}))

    @classmethod
    def from_dict(cls, values: dict, sources: dict[str, str] | None = None, source: str = "config") -> DetectConfig:
        """A config from `values`; an error names the field and the source of its value."""
        return validation.from_dict(cls, values, sources, source)
