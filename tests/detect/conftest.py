"""Piles for the detection tests: a stationary texture with a square planted at a known place, identical
images, and the pixels themselves as patch features (for scorers whose arithmetic is under test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from steelnb.data import UNKNOWN, ImageSet
from tests.conftest import single_thread

# What the detection tests run with: a small real backbone with random weights, on the CPU, at the feature levels
# and smoothing the tests were measured with (not DetectConfig's defaults, which follow the benchmarks).
FAST = {"backbone": "resnet18", "weights": "random", "device": "cpu", "strides": "8,16", "sigma": 1.0}
FAST_FLAGS = ["--backbone", "resnet18", "--weights", "random", "--device", "cpu", "--strides", "8,16", "--sigma", "1",
              "--max-side", "64"]  # the same, as flags


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    with single_thread():
        yield


def texture(n: int, size: int | tuple[int, int] = 64, seed: int = 0) -> np.ndarray:
    """uint8 (n, H, W) of one stationary texture: smoothed Gaussian noise, a new draw in every image."""
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    smooth = np.stack([gaussian_filter(x, 1.5, mode="wrap") for x in rng.normal(0, 1, (n, height, width))])
    return np.clip(128 + 30 * smooth / smooth.std(), 0, 255).astype(np.uint8)


def plant(images: np.ndarray, index: int, top: int, left: int, side: int, value: int) -> np.ndarray:
    """`images` with a `side`-pixel square of grey level `value` at (top, left) of image `index`."""
    images = images.copy()
    images[index, top:top + side, left:left + side] = value
    return images


def pile(images: np.ndarray, defective: np.ndarray | None = None, name: str = "pile") -> ImageSet:
    """An ImageSet of uint8 (N, H, W) images, unlabelled unless `defective` flags are given."""
    n = len(images)
    flags = np.full(n, UNKNOWN, np.int8) if defective is None else np.asarray(defective, np.int8)
    return ImageSet(name, np.ascontiguousarray(images[:, None]), np.full(n, UNKNOWN), flags, (),
                    tuple(f"{i:02d}.png" for i in range(n)))


def pixels_as_features(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, C, H, W) -> (B, H, W, C) float: each pixel its own patch, its grey levels its feature."""
    return torch.as_tensor(np.asarray(images), dtype=torch.float32).permute(0, 2, 3, 1)


def save_pngs(folder: Path, images: np.ndarray, names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / (names[i] if names else f"{i:02d}.png"))
    return folder
