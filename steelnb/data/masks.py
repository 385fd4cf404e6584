"""Where the defects are, for the sets that say so: KSDD's outlines and DAGM's weak-label ellipses.

`defect_masks(data, shape)` draws them as boolean (N, H, W) masks (all False for an image without one), or
returns None when the set records no defect regions at all; detection scores its anomaly maps' peaks with them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .imageset import ImageSet


def defect_masks(data: ImageSet, shape: tuple[int, int] | None = None) -> np.ndarray | None:
    """Boolean (N, H, W) defect masks at `shape` (default: the images'), or None when `data` records none."""
    polygons, mask_files = data.meta.get("polygons"), data.meta.get("masks")
    if not polygons and not mask_files:
        return None
    height, width = shape or data.images.shape[-2:]
    masks = np.zeros((len(data), height, width), bool)
    for i, path in enumerate(data.paths):
        if polygons and path in polygons:
            canvas = Image.new("1", (width, height))
            for outline in polygons[path]:
                ImageDraw.Draw(canvas).polygon([(x * width, y * height) for x, y in outline], fill=1)
            masks[i] = np.asarray(canvas)
        elif mask_files and path in mask_files:
            with Image.open(Path(data.meta["root"]) / mask_files[path]) as mask:
                masks[i] = np.asarray(mask.convert("L").resize((width, height), Image.Resampling.NEAREST)) > 0
    return masks
