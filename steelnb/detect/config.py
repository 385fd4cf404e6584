"""`DetectConfig`: everything one detection run depends on, checked on creation and saved as config.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .. import validation
from ..validation import Above, AtLeast, AtMost, Below, Help, Matches, NonEmpty, OneOf
from .decision import CUTOFF
from .position import CELLS

METHODS = ("bank", "self", "mutual", "fused")
RULES = ("mad", "gmm", "gap", "null", "auto", "top")
STRIDES = Matches(r"(4|8|16|32)(,(4|8|16|32))*", "strides out of 4, 8, 16, 32 joined by commas, e.g. 8,16")
Share = Annotated[float, Above(0), AtMost(1)]  # a share in (0, 1]


@dataclass
class DetectConfig:
    """Settings of `steelnb detect` (the flags of the same names; see docs/ARCHITECTURE.md for the method).

    Every field is checked on creation against its annotation (see `steelnb.validation`).

    >>> DetectConfig(method="bank", strides="8,16").stride_list
    (8, 16)
    """

    dataset: Annotated[str, NonEmpty, Help("the pile: a named set (synthetic, ksdd, dagm, neu, severstal) or an "
                                            "image folder")] = "synthetic"
    data_root: Annotated[str | None, Help("folder holding the named sets; none: $STEELNB_DATA")] = None
    normal_class: Annotated[str | None, Help("the defect-free sub-folder of a labelled folder (labels score the "
                                             "answer only)")] = None
    max_side: Annotated[int, AtLeast(32), Help("images read at their own aspect, the longer side at most this, in "
                                               "pixels")] = 512
    backbone: Annotated[str, NonEmpty, Help("timm model that gives the patch features")] = "efficientnet_lite2"
    weights: Annotated[str, NonEmpty, Help("random | timm | offline | path to a state dict")] = "offline"
    strides: Annotated[str, STRIDES, Help("feature levels, by stride in pixels; the finest is the map's grid")] = "16"
    balance_levels: Annotated[bool, Help("each feature level scaled to a unit mean patch norm over a sample of the "
                                         "pile")] = False
    whiten: Annotated[float, AtLeast(0), AtMost(1), Help("self: the patch features whitened in the pile's own units, "
                                                         "the principal directions holding this share of their "
                                                         "variance, fitted on patches of every image (0: as they "
                                                         "come; 0.95 for a strongly textured pile such as DAGM)")] = 0.0
    whiten_shrink: Annotated[float, AtLeast(0), AtMost(1), Help("self: each kept direction's variance shrunk towards "
                                                                "their mean by this share before it divides")] = 0.0
    tile: Annotated[int, AtLeast(64), Help("images larger than this are cut into tiles, in pixels a side")] = 1024
    method: Annotated[str, OneOf(METHODS), Help("scorer: self: each image against itself | bank: the pile's memory "
                                                "bank | mutual: other images (MuSc) | fused: self and mutual "
                                                "joined")] = "self"
    cells: Annotated[str, OneOf(CELLS), Help("each grid cell against the pile at that cell (position.py): auto: "
                                             "zmax where the pile is aligned | zmax | none")] = "auto"
    bank_images: Annotated[int, AtLeast(2), Help("bank: reference images drawn from the pile (two halves)")] = 256
    bank_share: Annotated[Share, Help("bank: share of each reference image's patches kept")] = 0.03
    denoise: Annotated[float, AtLeast(0), Below(1), Help("bank: share of bank patches dropped as outliers "
                                                         "(SoftPatch)")] = 0.0
    self_radius: Annotated[int, AtLeast(0), Help("self: cells around a patch that it may not match (0: chosen "
                                                 "from the pile among 1, 2 and 6 by how far its top ranks above "
                                                 "its bulk, run.py; --method self only)")] = 2
    rescore: Annotated[float, AtLeast(0), Below(1), Help("self: a second pass in which the patches of this share "
                                                         "of the pile that the first ranks most normal join every "
                                                         "image's references (0: one pass)")] = 0.7
    rescore_patches: Annotated[int, AtLeast(2), Help("self: patches sampled from those images into the second "
                                                     "pass's bank")] = 40_000
    rescore_rounds: Annotated[int, AtLeast(1), Help("self: second passes, each taking its clean images from the "
                                                    "one before")] = 2
    discriminator: Annotated[float, AtLeast(0), Help("self: the weight, against the scorer's 1, of the maps of a "
                                                     "patch discriminator trained on the images that the last pass "
                                                     "ranks most normal, 50-70 % of the pile as it estimates its "
                                                     "defective share (discriminator.py; 0: off, about 0.05 s an "
                                                     "image cheaper at 512 px)")] = 0.5
    discriminator_noise: Annotated[float, Above(0), Help("self: the discriminator's Gaussian noise, in units of the "
                                                         "clean patches' spread per feature channel")] = 1.0
    references: Annotated[int, AtLeast(1), Help("mutual: other images each image is scored against")] = 24
    mutual_band: Annotated[Share, Help("mutual: mean of the lowest share of per-image distances")] = 0.3
    window: Annotated[float, AtLeast(0), AtMost(1), Help("mutual: a patch meets reference patches within this share "
                                                         "of the grid's height and width (0: anywhere)")] = 0.0
    sigma: Annotated[float, AtLeast(0), Help("Gaussian smoothing of the map, in cells")] = 1.0
    top_share: Annotated[float, AtLeast(0), AtMost(1), Help("image score: mean of the top share of its map's "
                                                            "cells (0: chosen from the pile among 0.25-8 %, "
                                                            "scoring.py)")] = 0.0
    peers: Annotated[int, AtLeast(0), Help("image score against those of the K images that look most like it (by "
                                           "their mean patch feature): divided by a power of their median, "
                                           "times the same power of the pile's median (peers.py; 0: off; "
                                           "a pile of fewer than 20 or than K + 1 images keeps its "
                                           "scores)")] = 40
    peer_weight: Annotated[float, AtLeast(0), AtMost(1), Help("peers: that power (1: the score over its peers' "
                                                              "median)")] = 0.25
    rule: Annotated[str, OneOf(RULES), Help("the label-free decision (decision.py): mad robust z, gmm two-Gaussian "
                                            "mixture, gap widest gap, null empirical null, top the "
                                            "CUTOFF highest, auto null where the null finds a third or more of "
                                            "a pile of 100 or more defective, else mad")] = "auto"
    cutoff: Annotated[float, Above(0), Help("the rule's cutoff; mad: robust z of the log score above which = "
                                            "defective; null: the fewest null spreads above its "
                                            "centre; auto: that of the rule it picks; top: the "
                                            "number of images flagged")] = CUTOFF
    target_mdr: Annotated[float, AtLeast(0), AtMost(1), Help("with labels: the miss rate the calibrated decision "
                                                             "aims at, a share")] = 0.05
    calibration_share: Annotated[float, Above(0), Below(1), Help("with labels: share of the pile that calibrates "
                                                                 "it")] = 0.2
    overlays: Annotated[int, AtLeast(0), Help("PNG overlays of the top-ranked images, a count")] = 16
    all_overlays: Annotated[bool, Help("an overlay for every image")] = False
    batch_size: Annotated[int, AtLeast(1), Help("images scored at once")] = 8
    seed: Annotated[int, AtLeast(0), Help("seed of every random choice")] = 0
    device: Annotated[str, Matches(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, mps, cuda or cuda:N"),
                      Help("where the model runs")] = "auto"
    out_dir: Annotated[str, NonEmpty, Help("the run folder to write (new or empty)")] = "runs/detect"

    def __post_init__(self) -> None:
        validation.check(self)
        if self.self_radius == 0 and self.method != "self":
            raise validation.ConfigError(f"--self-radius 0 (chosen from the pile) needs --method self, not "
                                         f"{self.method}", "self_radius")
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
