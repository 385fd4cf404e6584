"""Where the defect is, to look at: the image beside its anomaly map laid over it, the peak ringed.

The map is upsampled (bilinear) to the image, scaled from `low` (transparent) to `high` (full colour, `inferno`
colour map) with one scale for the whole pile, so that overlays compare across images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw

from ..runfolder import atomic_path

MAX_SIDE = 768  # overlays larger than this (pixels a side) are shrunk


def overlay(image: np.ndarray, amap: np.ndarray, low: float, high: float, peak: tuple[float, float]) -> Image.Image:
    """RGB picture: `image` (uint8 (C, H, W)) left, the same with `amap` (h, w) laid over it right."""
    height, width = image.shape[-2:]
    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image
    rgb = rgb.transpose(1, 2, 0).astype(np.float32) / 255
    scaled = F.interpolate(torch.as_tensor(amap, dtype=torch.float32)[None, None], (height, width),
                           mode="bilinear", align_corners=False)[0, 0].numpy()
    level = np.clip((scaled - low) / max(high - low, 1e-12), 0, 1)[..., None]
    coloured = colormaps["inferno"](level[..., 0])[..., :3]
    blended = rgb * (1 - 0.6 * level) + coloured * 0.6 * level
    both = np.concatenate([rgb, np.ones((height, 4, 3)), blended], axis=1)
    picture = Image.fromarray(np.round(both * 255).astype(np.uint8))
    y, x = peak[0] * height, width + 4 + peak[1] * width
    radius = max(6, round(0.04 * max(height, width)))
    ImageDraw.Draw(picture).ellipse((x - radius, y - radius, x + radius, y + radius), outline=(0, 255, 255), width=2)
    if max(picture.size) > MAX_SIDE:
        picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return picture


def save_overlay(path: Path, image: np.ndarray, amap: np.ndarray, low: float, high: float,
                 peak: tuple[float, float]) -> None:
    """Write `overlay(...)` to the PNG `path`, whole or not at all."""
    with atomic_path(path) as partial:
        overlay(image, amap, low, high, peak).save(partial, format="PNG")
