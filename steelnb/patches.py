"""Locally aware patch features of a timm backbone, for images of any size and aspect.

The feature maps at the chosen strides (ResNet layer2 and layer3 for strides 8 and 16, PatchCore's choice; found
by reduction in timm's `feature_info`, so any timm backbone with `forward_intermediates` works) are each averaged
over their 3 x 3 neighbourhood with the zero padding counted (as PatchCore's authors and anomalib do), upsampled
bilinearly to the finest level's grid and concatenated: (B, h, w, D) with h = H / stride. `balance_levels` scales
each level to a unit mean patch norm over a sample of the pile, so that a deep level's larger values do not
outweigh a finer one in every distance (per-level normalisation, as MuSc normalises each layer).

An image larger than `tile` pixels on a side is cut into overlapping tiles (aligned to the coarsest stride); each
grid cell of the stitched map comes from the tile in which it lies farthest from a cut, so the memory a batch
needs stays bounded whatever the image size, and no kept cell sits at a tile's padded edge.

>>> import numpy as np
>>> from steelnb.backbones import create_backbone
>>> extractor = PatchFeatures(create_backbone("resnet18"), strides=(8, 16), tile=64, overlap=32)
>>> extractor(np.zeros((2, 1, 96, 160), np.uint8)).shape
torch.Size([2, 12, 20, 384])
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import Backbone
from .views import to_model_input

STRIDES = (8, 16)  # PatchCore's levels: ResNet layer2 and layer3


def feature_levels(model: nn.Module, strides: tuple[int, ...] = STRIDES) -> list[int]:
    """`forward_intermediates` indices of the deepest feature map at each stride in `strides`."""
    info = getattr(model, "feature_info", None)
    if not info or not hasattr(model, "forward_intermediates"):
        raise ValueError(f"{type(model).__name__} has no timm feature_info / forward_intermediates")
    levels = []
    for stride in strides:
        matching = [i for i, level in enumerate(info) if level["reduction"] == stride]
        if not matching:
            raise ValueError(f"{type(model).__name__} has no feature map at stride {stride}")
        levels.append(matching[-1])
    return levels


def patch_features(model: nn.Module, x: Tensor, levels: list[int], scales: tuple[float, ...] | None = None) -> Tensor:
    """Locally aware patch features (B, H, W, D) on the (H, W) grid of the first level, each level times its scale."""
    maps = model.forward_intermediates(x, indices=levels, intermediates_only=True, stop_early=True)
    maps = [F.avg_pool2d(m, 3, stride=1, padding=1, count_include_pad=True) for m in maps]
    if scales is not None:
        maps = [m * scale for m, scale in zip(maps, scales, strict=True)]
    grid = maps[0].shape[-2:]
    maps = [m if m.shape[-2:] == grid else F.interpolate(m, grid, mode="bilinear", align_corners=False) for m in maps]
    return torch.cat(maps, 1).permute(0, 2, 3, 1)


def tile_spans(length: int, tile: int, overlap: int, align: int) -> list[tuple[int, int, int]]:
    """Tiles covering `length` pixels: (start, keep_from, keep_to) in pixels, all multiples of `align`.

    A tile spans [start, start + tile); the stitched map takes [keep_from, keep_to) from it. The kept parts
    cover [0, length) exactly once, each cut in the middle of an overlap. One tile when `length` <= `tile`.
    """
    if tile % align or overlap % align or length % align:
        raise ValueError(f"tile {tile}, overlap {overlap} and length {length} must be multiples of {align}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got {overlap} for tile {tile}")
    if length <= tile:
        return [(0, 0, length)]
    starts = [*range(0, length - tile, tile - overlap), length - tile]
    cuts = [0, *((a + tile + b) // 2 // align * align for a, b in itertools.pairwise(starts)), length]
    return [(start, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]


class PatchFeatures:
    """uint8 images (B, C, H, W) -> float32 patch features (B, H / s, W / s, D) at the finest stride s, tiled
    when an image exceeds `tile` pixels on a side (H and W must be multiples of the coarsest stride)."""

    def __init__(self, backbone: Backbone, strides: tuple[int, ...] = STRIDES, tile: int = 1024,
                 overlap: int = 128, device: str | torch.device = "cpu") -> None:
        self.backbone = backbone
        self.strides = tuple(strides)
        self.levels = feature_levels(backbone.model, self.strides)
        self.tile, self.overlap = tile, overlap
        self.device = torch.device(device)
        self.backbone.model.to(self.device).eval()
        self.scales: tuple[float, ...] | None = None  # per-level factors (`balance_levels`); None: as they come

    @torch.no_grad()
    def balance_levels(self, images: np.ndarray | Tensor) -> tuple[float, ...]:
        """Scale each level to a unit mean patch norm over `images` (a sample of the pile); the factors."""
        self.scales = None
        x = to_model_input(torch.as_tensor(images).to(self.device), self.backbone.mean, self.backbone.std)
        maps = self.backbone.model.forward_intermediates(x[..., :self.tile, :self.tile], indices=self.levels,
                                                         intermediates_only=True, stop_early=True)
        maps = [F.avg_pool2d(m, 3, stride=1, padding=1, count_include_pad=True) for m in maps]
        self.scales = tuple(1.0 / max(float(m.float().norm(dim=1).mean()), 1e-12) for m in maps)
        return self.scales

    @property
    def stride(self) -> int:
        """The grid's stride: pixels per cell."""
        return min(self.strides)

    @property
    def align(self) -> int:
        """What H, W, the tile and the overlap must be multiples of."""
        return max(self.strides)

    @torch.no_grad()
    def __call__(self, images: np.ndarray | Tensor) -> Tensor:
        x = to_model_input(torch.as_tensor(images).to(self.device), self.backbone.mean, self.backbone.std)
        height, width = x.shape[-2:]
        rows = tile_spans(height, self.tile, self.overlap, self.align)
        cols = tile_spans(width, self.tile, self.overlap, self.align)
        if len(rows) == len(cols) == 1:
            return patch_features(self.backbone.model, x, self.levels, self.scales).float()
        s = self.stride
        out = None
        for top, row_from, row_to in rows:
            for left, col_from, col_to in cols:
                window = x[..., top:top + min(self.tile, height), left:left + min(self.tile, width)]
                part = patch_features(self.backbone.model, window, self.levels, self.scales).float()
                if out is None:
                    out = part.new_empty(len(x), height // s, width // s, part.shape[-1])
                out[:, row_from // s:row_to // s, col_from // s:col_to // s] = \
                    part[:, (row_from - top) // s:(row_to - top) // s, (col_from - left) // s:(col_to - left) // s]
        return out
