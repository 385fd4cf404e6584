"""Built-in synthetic rolled-steel texture with six defect types: the default data set, no files needed.

Background, as it varies along a real line: streaks along the rolling direction (horizontal) whose length,
sharpness and strength change from image to image, low-frequency mottling, an illumination gradient and
vignette, and grain, each with per-image strength and the grey level itself drawn per image. Defects, on
`defect_rate` of the images (exact count, types in equal shares), are SMALL and local: each sits in a region of
about 5-12 % of the image side around a random centre, sized relative to the image so that every `image_size`
looks alike:

- scratches:       1-2 thin bright lines, 8-20 % of the side long, tilted up to 50 degrees from vertical;
- pitted_surface:  6-15 small round dark pits clustered around one point;
- inclusion:       1-2 short dark streaks stretched along the rolling direction;
- patches:         one dark region with an irregular border;
- crazing:         a network of fine dark cracks (level lines of a random field) over a small region;
- rolled-in_scale: dark flakes stretched along the rolling direction, in a small region.

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
    """Grey level, streaks of per-image length and sharpness, mottling, illumination, grain: float32 (n, S, S)."""
    streak_length = _uniform(rng, size / 12, size / 3, n)
    streak_width = _uniform(rng, 0.4, 1.2, n)
    streaks = np.stack([_noise(rng, 1, size, float(w), float(length))[0]
                        for w, length in zip(streak_width, streak_length, strict=True)])
    mottling = _noise(rng, n, size, size / 8, size / 8)
    grain = rng.standard_normal((n, size, size), dtype=np.float32)
    y, x = (_grid(size) / size - 0.5)[:, None], (_grid(size) / size - 0.5)[None, :]
    slope_y, slope_x, bow = (_uniform(rng, -1, 1, (n, 1, 1)) for _ in range(3))
    illumination = 14 * (slope_y * y + slope_x * x) - 20 * bow * (y**2 + x**2)
    level = _uniform(rng, 95, 155, (n, 1, 1))
    return (level + _uniform(rng, 3, 10, (n, 1, 1)) * streaks + _uniform(rng, 0, 6, (n, 1, 1)) * mottling
            + _uniform(rng, 2, 5, (n, 1, 1)) * grain + illumination)


def _centre(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each defect's centre (cy, cx) and region radius in pixels, arrays (n, 1, 1): radius 5-12 % of the side."""
    cy, cx = (_uniform(rng, 0.15, 0.85, (n, 1, 1)) * size for _ in range(2))
    return cy, cx, _uniform(rng, 0.05, 0.12, (n, 1, 1)) * size


def _region(cy: np.ndarray, cx: np.ndarray, radius: np.ndarray, size: int) -> np.ndarray:
    """A soft disc (n, S, S) of `radius` around (cy, cx): 1 inside, fading to 0 over a fifth of the radius."""
    y, x = _grid(size)[None, :, None], _grid(size)[None, None, :]
    distance = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    return np.clip((radius - distance) / (0.2 * radius) + 0.5, 0, 1)


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
    k = 2
    present = _present(rng, n, k, 1)
    cy, cx, radius = _centre(rng, n, size)
    angle = _uniform(rng, -0.9, 0.9, (n, k, 1, 1))  # radians from vertical
    length = _uniform(rng, 0.08, 0.2, (n, k, 1, 1)) * size
    jitter = _uniform(rng, -0.5, 0.5, (n, k, 2, 1, 1)) * radius[:, None, None]
    dy, dx = np.cos(angle), np.sin(angle)
    y = _grid(size)[:, None] - (cy[:, None] + jitter[:, :, 0])
    x = _grid(size)[None, :] - (cx[:, None] + jitter[:, :, 1])
    along = y * dy + x * dx
    across = np.abs(x * dy - y * dx)
    overshoot = np.maximum(np.abs(along) - length / 2, 0)
    width = max(0.7, size / 160) * _uniform(rng, 0.8, 1.6, (n, k, 1, 1))
    line = np.exp(-0.5 * (across**2 + overshoot**2) / width**2)
    amp = _uniform(rng, 40, 70, (n, k, 1, 1)) * present[..., None, None]
    return (line * amp).max(axis=1)


def _pits(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    k = 15
    present = _present(rng, n, k, 6)
    cy, cx, radius = _centre(rng, n, size)
    centre = np.concatenate([cy, cx], axis=1)  # (n, 2, 1)
    points = centre + 0.4 * radius * rng.standard_normal((n, 2, k), dtype=np.float32)
    py, px = np.clip(points, 0, size - 1).transpose(1, 0, 2)
    pit = np.maximum(0.7, size / 128 * _uniform(rng, 0.7, 1.4, (n, k)))
    return _blobs(py, px, pit, pit, -_uniform(rng, 50, 90, (n, k)) * present, size)


def _inclusions(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    k = 2
    present = _present(rng, n, k, 1)
    cy, cx, radius = _centre(rng, n, size)
    offset = _uniform(rng, -0.5, 0.5, (n, 2, k)) * radius
    sy = np.maximum(0.8, size / 128 * _uniform(rng, 1.0, 2.0, (n, k)))
    sx = _uniform(rng, 0.03, 0.07, (n, k)) * size
    return _blobs(cy[:, :, 0] + offset[:, 0], cx[:, :, 0] + offset[:, 1], sy, sx,
                  -_uniform(rng, 50, 80, (n, k)) * present, size)


def _patches(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    cy, cx, radius = _centre(rng, n, size)
    border = 1 + 0.25 * _noise(rng, n, size, size / 60, size / 60)
    shape = _region(cy, cx, 0.7 * radius * border, size)
    return -_uniform(rng, 35, 60, (n, 1, 1)) * shape


def _crazing(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    cracks = np.exp(-0.5 * (_noise(rng, n, size, max(1.5, size / 48), max(2.0, size / 32)) / 0.09) ** 2)
    return -_uniform(rng, 40, 60, (n, 1, 1)) * cracks * _region(*_centre(rng, n, size), size)


def _scale(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    flakes = _soft_mask(_noise(rng, n, size, max(1.0, size / 100), size / 40), 1.0, 6.0)
    return -_uniform(rng, 40, 65, (n, 1, 1)) * flakes * _region(*_centre(rng, n, size), size)


_DEFECTS = (_scratches, _pits, _inclusions, _patches, _crazing, _scale)  # in the order of CLASSES[1:]
