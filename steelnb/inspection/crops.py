"""The defect region of a flagged image: a square crop centred on its anomaly map's peak, resized for the network.

The crop's side is one share of the image's shorter side for every image of a pile, so that the type stage
compares regions of one scale (a defect's size is part of its kind). By default the share comes from the pile's
own anomaly maps (`map_share`): each flagged image's defect region is the connected part of its map around the
peak that lies above half the way from the map's median to its peak; the region's larger side, as a share of the
image's shorter side, is its extent; the crop is `CONTEXT` (2) times the median extent of the flagged images, at
most the whole shorter side, so a typical defect fills the middle half of its crop and the rest is the texture
around it. `TypesConfig.crop_share` (`--crop-share`) fixes the share instead. The peak (`Detection.table`'s
`peak_y`, `peak_x`: fractions of the height and width) is the crop's centre, moved inwards where the square would
leave the image, so every crop lies wholly inside its image.

An image may hold several defects: `anomalous_regions` finds the separate connected parts of its map above the
same level (half the way from the median to the peak), strongest peak first, each cropped around its own peak.
A region besides the strongest counts only where its peak clears detection's threshold (alone it would have
flagged the image), so the texture's weaker bumps do not become defects of their own.

Why from the maps. A fixed share cannot serve both kinds of pile: NEU's close-ups, where the defect is the
texture, are told apart best from most of the image, while the built-in synthetic pile's defects cover 5-12 % of
the side and a crop of 0.75 of it is mostly texture. Measured by `benchmarks/crop_share.py` (results/inspect/
crop_share.md: k-means on untrained offline EfficientNet-Lite0 features of the crops, types ACC, mean of 5 k-means
seeds; peaks and maps from `steelnb detect`'s defaults): synthetic piles of 600 images at 256 px with seeds 1 and
2 (not seed 0, the pile `make run` and the type benchmarks measure): 0.43 / 0.42 at share 0.75, 0.34 / 0.33 at
1.0, 0.71 / 0.62 from the maps (shares 0.50 / 0.38; one extent instead of two: 0.63 / 0.62); NEU (1,800 images at
200 px): 0.935 at 0.75, 0.933 at 1.0, 0.941 from the maps (share 0.67; one extent: 0.866). `CONTEXT` was chosen
between 1 and 2 on the two synthetic piles.

>>> import numpy as np
>>> images = np.zeros((2, 1, 100, 200), np.uint8)
>>> crop_boxes(np.array([0.5, 0.0]), np.array([0.5, 1.0]), 100, 200, side=40).tolist()  # centred; clamped
[[30, 80], [0, 160]]
>>> maps = np.zeros((1, 8, 8), np.float32); maps[0, 2:4, 5] = 1.0  # a region of 2 x 1 cells of 8 x 8
>>> region_extents(maps, 100, 200).tolist(), map_share(maps, 100, 200)  # 2 cells of 12.5 px, of 100 px
([0.25], 0.5)
>>> maps[0, 6, 1] = 0.75  # a second, separate region
>>> anomalous_regions(maps[0], limit=3).tolist()  # (peak_y, peak_x, peak) of each region, strongest first
[[0.3125, 0.6875, 1.0], [0.8125, 0.1875, 0.75]]
>>> defect_crops(images, np.array([0.5, 0.0]), np.array([0.5, 1.0]), share=0.75, size=32).shape
(2, 1, 32, 32)
>>> crop_weights(maps, np.array([0.3125]), np.array([0.6875]), 100, 200, share=0.5, size=5)[0, :, 2].round(1)
array([0. , 0.2, 0.7, 0.8, 0.4], dtype=float32)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

CONTEXT = 2.0  # the crop's side, in typical defect extents (see the module docstring)
LEVEL = 0.5  # a defect region: the cells at least this far from the map's median to its peak


def region_extents(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N,) the larger side of each map's defect region (the connected cells around its peak above half the way
    from its median to its peak), as a share of the shorter side of the `height` x `width` images it maps."""
    maps = np.asarray(maps, np.float64)
    cell_y, cell_x = height / maps.shape[1], width / maps.shape[2]
    extents = np.empty(len(maps))
    for i, cells in enumerate(maps):
        regions, _ = ndimage.label(cells >= region_threshold(cells))
        rows, cols = np.nonzero(regions == regions[np.unravel_index(cells.argmax(), cells.shape)])
        extents[i] = max((np.ptp(rows) + 1) * cell_y, (np.ptp(cols) + 1) * cell_x) / min(height, width)
    return extents


def region_threshold(cells: np.ndarray) -> float:
    """The level above which a map's cells belong to a defect region: half the way from its median to its peak."""
    floor = float(np.median(cells))
    return floor + LEVEL * (float(cells.max()) - floor)


def anomalous_regions(cells: np.ndarray, limit: int, above: float = -np.inf) -> np.ndarray:
    """(R, 3) of one (h, w) map's separate defect regions (connected cells at or above `region_threshold`): each
    one's peak as (y, x) fractions of the map's height and width (cell centres, as detection's peaks) and its
    value, strongest first, at most `limit`. The strongest always counts; another only where its peak exceeds
    `above` (detection's threshold)."""
    cells = np.asarray(cells, np.float64)
    regions, count = ndimage.label(cells >= region_threshold(cells))
    index = np.arange(1, count + 1)
    values = np.asarray(ndimage.maximum(cells, regions, index), np.float64).reshape(-1)
    where = np.asarray(ndimage.maximum_position(cells, regions, index), np.float64).reshape(-1, 2)
    order = np.argsort(-values, kind="stable")
    keep = [i for rank, i in enumerate(order) if rank == 0 or values[i] > above][:limit]
    height, width = cells.shape
    return np.stack([(where[keep, 0] + 0.5) / height, (where[keep, 1] + 0.5) / width, values[keep]], axis=1)


def map_share(maps: np.ndarray, height: int, width: int) -> float:
    """The crop's share of the shorter side for a pile's flagged images: `CONTEXT` times their median defect
    extent (`region_extents`), at most 1."""
    return float(min(1.0, CONTEXT * np.median(region_extents(maps, height, width))))


def crop_side(height: int, width: int, share: float) -> int:
    """The crop's side in pixels: `share` of the shorter side, at least 1."""
    return max(1, round(share * min(height, width)))


def crop_boxes(peak_y: np.ndarray, peak_x: np.ndarray, height: int, width: int, side: int) -> np.ndarray:
    """(N, 2) int (top, left) of `side`-pixel squares centred on the peaks (fractions of height and width),
    moved inwards where they would leave the image."""
    if side > min(height, width):
        raise ValueError(f"a crop of {side} px does not fit an image of {height} x {width}")
    centre_y = np.asarray(peak_y, float) * height
    centre_x = np.asarray(peak_x, float) * width
    top = np.clip(np.floor(centre_y - side / 2 + 0.5), 0, height - side)
    left = np.clip(np.floor(centre_x - side / 2 + 0.5), 0, width - side)
    return np.stack([top, left], axis=1).astype(np.int64)


def defect_crops(images: np.ndarray, peak_y: np.ndarray, peak_x: np.ndarray, share: float,
                 size: int) -> np.ndarray:
    """uint8 (N, C, size, size): the square around each image's peak (`crop_boxes`, side `crop_side`), resized
    (bilinear, antialiased when shrinking) to `size`, the joint method's input size."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    height, width = images.shape[-2:]
    side = crop_side(height, width, share)
    boxes = crop_boxes(peak_y, peak_x, height, width, side)
    out = np.empty((len(images), images.shape[1], size, size), np.uint8)
    for i, (top, left) in enumerate(boxes):
        patch = torch.from_numpy(np.ascontiguousarray(images[i:i + 1, :, top:top + side, left:left + side])).float()
        if side != size:
            patch = F.interpolate(patch, (size, size), mode="bilinear", align_corners=False, antialias=side > size)
        out[i] = patch.round().clamp(0, 255).to(torch.uint8).numpy()[0]
    return out


def crop_weights(maps: np.ndarray, peak_y: np.ndarray, peak_x: np.ndarray, height: int, width: int, share: float,
                 size: int, region: bool = False) -> np.ndarray:
    """float32 (N, size, size) in 0..1: how anomalous each part of each crop is (`TypesConfig.pooling` "map");
    `region`: 1 in the defect region (at least `LEVEL`, as `region_threshold`), else 0 ("region").

    Each (h, w) map of a `height` x `width` image is rescaled so that its median is 0 and its peak 1 (below the
    median: 0), upsampled (bilinear) to the image, cut at the crop's box (`crop_boxes`, as `defect_crops` cuts)
    and resized to `size`: 1 where the defect is strongest, 0 on ordinary texture."""
    maps = torch.from_numpy(np.asarray(maps, np.float32))
    floor = maps.flatten(1).median(dim=1).values[:, None, None]
    peak = maps.flatten(1).amax(dim=1)[:, None, None]
    scaled = ((maps - floor) / (peak - floor).clamp_min(1e-12)).clamp(0, 1)
    side = crop_side(height, width, share)
    boxes = crop_boxes(peak_y, peak_x, height, width, side)
    out = np.empty((len(maps), size, size), np.float32)
    for i, (top, left) in enumerate(boxes):
        full = F.interpolate(scaled[i][None, None], (height, width), mode="bilinear", align_corners=False)
        out[i] = F.interpolate(full[..., top:top + side, left:left + side], (size, size), mode="bilinear",
                               align_corners=False, antialias=side > size)[0, 0].clamp(0, 1).numpy()
    return (out >= LEVEL).astype(np.float32) if region else out
