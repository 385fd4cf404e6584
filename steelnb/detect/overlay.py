"""Where the defect is, to look at: the image beside its anomaly map laid over it, the peak ringed.

The map is upsampled (bilinear) to the image, scaled from `low` (transparent) to `high` (full colour, `inferno`
colour map) with one scale for the whole pile, so that overlays compare across images. `write_overlays` draws
those of a run's chosen images into its overlays/ folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw

from ..progress import progress
from ..runfolder import atomic_path
from .record import OVERLAYS
from .scoring import smooth

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


def _overlay_name(rank: int, path: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:60]
    return f"{OVERLAYS}/{rank:05d}_{stem}.png"


def write_overlays(table: pd.DataFrame, rows: pd.Index, maps: np.ndarray, images: np.ndarray, sigma: float,
                   out: Path) -> None:
    """An overlay PNG in `out`/overlays/ for each of `rows` of `table` (its `overlay` column set to the file), on
    one colour scale for the pile: from the median map cell to the 99th percentile of the image scores."""
    if not len(rows):
        return
    smoothed = smooth(torch.from_numpy(maps).float(), sigma)
    low = float(np.median(smoothed.numpy()))
    high = float(np.quantile(table["score"], 0.99)) if len(table) > 1 else float(smoothed.max())
    (out / OVERLAYS).mkdir(exist_ok=True)
    for i in progress(rows, f"overlays of {len(rows)} images", unit="image"):
        name = _overlay_name(int(table.at[i, "rank"]), table.at[i, "path"])
        save_overlay(out / name, images[i], smoothed[i].numpy(), low, high,
                     (table.at[i, "peak_y"], table.at[i, "peak_x"]))
        table.at[i, "overlay"] = name
