"""The defect region of a flagged image: a square crop centred on its anomaly map's peak, resized for the network.

The crop's side is a fixed share of the image's shorter side (`TypesConfig.crop_share`, `--crop-share`, default
0.75), the same for every image of a pile, so that the type stage compares regions of one scale: a defect's size
is part of its kind. The peak (`Detection.table`'s `peak_y`, `peak_x`: fractions of the height and width) is the
crop's centre, moved inwards where the square would leave the image, so every crop lies wholly inside its image.

Why 0.75. On a strip (Severstal's 1600 x 256) it is a 192 px square of the 1600 px length: local. On a square
image it keeps most of the image, and there it has to: NEU's images are close-ups in which the defect is the
texture, and their types are told apart less well the tighter the crop. Measured with k-means on ImageNet
EfficientNet-Lite0 features of the crops (224 px, PCA 64 + L2, no training; 100 NEU images per class read at
192 px, peaks from `steelnb detect`'s defaults of the time): ACC 0.888 at share 0.375, 0.900 at 0.4, 0.918 at
0.5, 0.928 at 0.6, 0.942 at 0.75, 0.952 at 1.0, 0.953 on the whole images; on the synthetic set of the previous
generator (the flagged images of 300 at 256 px; not measured again since its defects became small and local):
0.889 at 0.4, 0.981 at 0.6, 1.00 on whole images. A pile of small defects on large square images may be
grouped better with a smaller share: `--crop-share`.

>>> import numpy as np
>>> images = np.zeros((2, 1, 100, 200), np.uint8)
>>> crop_boxes(np.array([0.5, 0.0]), np.array([0.5, 1.0]), 100, 200, side=40).tolist()  # centred; clamped
[[30, 80], [0, 160]]
>>> defect_crops(images, np.array([0.5, 0.0]), np.array([0.5, 1.0]), share=0.75, size=32).shape
(2, 1, 32, 32)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


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
