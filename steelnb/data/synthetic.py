"""Built-in synthetic rolled-steel texture with six defect types: the default data set, no files needed.

Background: streaks along the rolling direction (horizontal), low-frequency illumination and grain
noise, each with per-image strength. Defects, on `defect_rate` of the images (exact count, types in
equal shares), sized relative to the image so that every `image_size` looks alike:

- scratches:       1-3 thin bright lines, long, tilted up to 50 degrees from vertical;
- pitted_surface:  15-40 small round dark pits clustered around one point;
- inclusion:       1-3 dark streaks stretched along the rolling direction;
- patches:         1-3 large dark regions with irregular borders;
- crazing:         a network of fine dark cracks (level lines of a random field) over a large region;
- rolled-in_scale: many dark flakes stretched along the rolling direction, spread over the image.

Everything is drawn from one `numpy.random.default_rng(seed)`: the same arguments give the same pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from .imageset import ImageSet

CLASSES = ("defect-free", "scratches", "pitted_surface", "inclusion", "patches", "crazing", "rolled-in_scale")


def load(image_size: int = 128, n_images: int = 600, defect_rate: float = 0.2, seed: int = 0) -> ImageSet:
    """`n_images` grayscale images (N, 1, S, S); round(n_images * defect_rate) of them defective."""
    _check(image_size, n_images, defect_rate)
    rng = np.random.default_rng(seed)
    labels = _draw_labels(rng, n_images, defect_rate)
    images = _background(rng, n_images, image_size)
    for label, draw in enumerate(_DEFECTS, start=1):
        chosen = np.flatnonzero(labels == label)
        if len(chosen):
            severity = rng.uniform(0.6, 1.0, (len(chosen), 1, 1)).astype(np.float32)
            images[chosen] += severity * draw(rng, len(chosen), image_size)
    pixels = np.clip(np.rint(images), 0, 255).astype(np.uint8)[:, None]
    return ImageSet(
        name="synthetic",
        images=pixels,
        labels=labels,
        defective=(labels > 0).astype(np.int8),
        class_names=CLASSES,
        paths=tuple(f"synthetic/{i:06d}" for i in range(n_images)),
        meta={"image_size": image_size, "defect_rate": defect_rate, "seed": seed, "source_sizes": {}},
    )


def _check(image_size: int, n_images: int, defect_rate: float) -> None:
    def integer(value) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)

    if not integer(n_images) or n_images < 1:
        raise ValueError(f"synthetic: n_images must be an integer >= 1, got {n_images!r}")
    if not 0.0 <= defect_rate <= 1.0:
        raise ValueError(f"synthetic: defect_rate must lie in [0, 1], got {defect_rate!r}")
    if not integer(image_size) or image_size < 32:
        raise ValueError(f"synthetic: image_size must be an integer >= 32, got {image_size!r}")


def _draw_labels(rng: np.random.Generator, n: int, defect_rate: float) -> np.ndarray:
    """Exactly round(n * rate) defective labels, types cycled in equal shares, in random order."""
    n_defective = round(n * defect_rate)
    n_types = len(CLASSES) - 1
    types = 1 + rng.permutation(n_types)[np.arange(n_defective) % n_types]
    labels = np.concatenate([np.zeros(n - n_defective, np.int64), types.astype(np.int64)])
    return rng.permutation(labels)


def _noise(rng: np.random.Generator, n: int, size: int, sigma_y: float, sigma_x: float) -> np.ndarray:
    """`n` Gaussian random fields (float32, zero mean, unit std) smoothed with std (sigma_y, sigma_x) px."""
    white = rng.standard_normal((n, size, size), dtype=np.float32)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    transfer = np.exp(-2 * np.pi**2 * ((sigma_y * fy) ** 2 + (sigma_x * fx) ** 2)).astype(np.float32)
    field = fft.irfft2(fft.rfft2(white) * transfer, s=(size, size))
    field -= field.mean(axis=(1, 2), keepdims=True)
    field /= field.std(axis=(1, 2), keepdims=True) + 1e-6
    return field


def _grid(size: int) -> np.ndarray:
    return np.arange(size, dtype=np.float32)


def _uniform(rng: np.random.Generator, low: float, high: float, shape) -> np.ndarray:
    return rng.uniform(low, high, shape).astype(np.float32)


def _background(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Grey level, rolling streaks, illumination gradient and vignette, and grain: float32 (n, S, S)."""
    streaks = _noise(rng, n, size, sigma_y=0.6, sigma_x=size / 6)
    grain = rng.standard_normal((n, size, size), dtype=np.float32)
    y, x = (_grid(size) / size - 0.5)[:, None], (_grid(size) / size - 0.5)[None, :]
    slope_y, slope_x, bow = (_uniform(rng, -1, 1, (n, 1, 1)) for _ in range(3))
    illumination = 14 * (slope_y * y + slope_x * x) - 20 * bow * (y**2 + x**2)
    level = _uniform(rng, 105, 145, (n, 1, 1))
    return level + _uniform(rng, 4, 9, (n, 1, 1)) * streaks + _uniform(rng, 2, 4, (n, 1, 1)) * grain + illumination


def _blobs(cy, cx, sy, sx, amp, size: int) -> np.ndarray:
    """Sum of axis-aligned Gaussian blobs; arguments (n, K) in pixels, result (n, S, S)."""
    g = _grid(size)[None, None]
    gy = np.exp(-0.5 * ((g - cy[..., None]) / sy[..., None]) ** 2) * amp[..., None]
    gx = np.exp(-0.5 * ((g - cx[..., None]) / sx[..., None]) ** 2)
    return np.einsum("nky,nkx->nyx", gy, gx, dtype=np.float32)


def _present(rng: np.random.Generator, n: int, k: int, at_least: int) -> np.ndarray:
    """(n, k) 0/1 weights switching on the first m of k candidate marks, m drawn in [at_least, k]."""
    return (np.arange(k)[None] < rng.integers(at_least, k + 1, (n, 1))).astype(np.float32)


def _soft_mask(field: np.ndarray, threshold, sharpness: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-sharpness * (field - threshold)))


def _scratches(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    k = 3
    present = _present(rng, n, k, 1)
    angle = _uniform(rng, -0.9, 0.9, (n, k, 1, 1))  # radians from vertical
    length = _uniform(rng, 0.35, 0.9, (n, k, 1, 1)) * size
    cy, cx = (_uniform(rng, 0.25, 0.75, (n, k, 1, 1)) * size for _ in range(2))
    dy, dx = np.cos(angle), np.sin(angle)
    y, x = _grid(size)[:, None] - cy, _grid(size)[None, :] - cx
    along = y * dy + x * dx
    across = np.abs(x * dy - y * dx)
    overshoot = np.maximum(np.abs(along) - length / 2, 0)
    width = max(0.7, size / 160) * _uniform(rng, 0.8, 1.6, (n, k, 1, 1))
    line = np.exp(-0.5 * (across**2 + overshoot**2) / width**2)
    amp = _uniform(rng, 45, 80, (n, k, 1, 1)) * present[..., None, None]
    return (line * amp).max(axis=1)


def _pits(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    k = 40
    present = _present(rng, n, k, 15)
    centre = _uniform(rng, 0.25, 0.75, (n, 2, 1)) * size
    spread = _uniform(rng, 0.08, 0.18, (n, 1, 1)) * size
    cy, cx = np.clip(centre + spread * rng.standard_normal((n, 2, k), dtype=np.float32), 0, size - 1).transpose(1, 0, 2)
    radius = np.maximum(0.7, size / 128 * _uniform(rng, 0.7, 1.6, (n, k)))
    return _blobs(cy, cx, radius, radius, -_uniform(rng, 50, 90, (n, k)) * present, size)


def _inclusions(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    k = 3
    present = _present(rng, n, k, 1)
    cy, cx = (_uniform(rng, 0.15, 0.85, (n, k)) * size for _ in range(2))
    sy = np.maximum(0.8, size / 128 * _uniform(rng, 1.0, 2.2, (n, k)))
    sx = _uniform(rng, 0.08, 0.2, (n, k)) * size
    return _blobs(cy, cx, sy, sx, -_uniform(rng, 50, 80, (n, k)) * present, size)


def _patches(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    k = 3
    present = _present(rng, n, k, 1)
    cy, cx = (_uniform(rng, 0.2, 0.8, (n, k)) * size for _ in range(2))
    sy, sx = (_uniform(rng, 0.08, 0.18, (n, k)) * size for _ in range(2))
    shape = _blobs(cy, cx, sy, sx, present, size) * (1 + 0.45 * _noise(rng, n, size, size / 40, size / 40))
    return -_uniform(rng, 35, 60, (n, 1, 1)) * _soft_mask(shape, 0.5, 10.0)


def _crazing(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    cracks = np.exp(-0.5 * (_noise(rng, n, size, max(2.0, size / 28), max(3.0, size / 18)) / 0.09) ** 2)
    region = _soft_mask(_noise(rng, n, size, size / 5, size / 5), -0.6, 4.0)
    return -_uniform(rng, 35, 55, (n, 1, 1)) * cracks * region


def _scale(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    flakes = _soft_mask(_noise(rng, n, size, size / 70, size / 28), 1.4, 6.0)
    return -_uniform(rng, 40, 65, (n, 1, 1)) * flakes


_DEFECTS = (_scratches, _pits, _inclusions, _patches, _crazing, _scale)  # in the order of CLASSES[1:]
