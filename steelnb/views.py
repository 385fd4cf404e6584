"""Tensor views of uint8 image batches (B, C, S, S), C = 1 or 3: the eval view and SwAV-style multi-crop.

Everything runs batched on the images' device. `MultiCrop` draws per-sample random parameters from a
`torch.Generator` (on the generator's device, the CPU when none is given), so one seed gives the same
views on the CPU and on CUDA. Grayscale input stays one channel until normalisation broadcasts it to three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def to_model_input(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...], size: int | None = None) -> Tensor:
    """Float32 (B, 3, size, size) network input of uint8 `images`: 0..1, resized (bilinear, antialiased), normalised.

    With `size` None the images keep their (H, W), square or not.
    """
    x = _unit(images, square=size is not None)
    if size is not None and size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return _normalise(x, mean, std)


@dataclass
class MultiCrop:
    """SwAV multi-crop of a uint8 batch with per-sample parameters; defaults are the paper's 2 x 200 + 6 x 96.

    Each view: random resized crop with horizontal and vertical flips (one batched `grid_sample` from a mip
    atlas, so downscaling is antialiased), colour jitter (brightness, contrast, saturation, in that order),
    random grayscale, Gaussian blur, normalisation. `ratio` is the crop's aspect-ratio range, `jitter` the
    brightness/contrast/saturation strengths. SwAV blurs every crop with p 0.5; `local_blur_p=0` blurs
    only the global ones.

    >>> import torch
    >>> views = MultiCrop(n_global=2, global_size=32, n_local=1, local_size=16)
    >>> crops = views(torch.zeros(4, 1, 48, 48, dtype=torch.uint8), torch.Generator().manual_seed(0))
    >>> [tuple(c.shape) for c in crops]
    [(4, 3, 32, 32), (4, 3, 32, 32), (4, 3, 16, 16)]
    """

    n_global: int = 2
    global_size: int = 200
    global_scale: tuple[float, float] = (0.14, 1.0)
    n_local: int = 6
    local_size: int = 96
    local_scale: tuple[float, float] = (0.05, 0.14)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    jitter: tuple[float, float, float] = (0.4, 0.4, 0.4)
    grayscale_p: float = 0.2
    global_blur_p: float = 0.5
    local_blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __call__(self, images: Tensor, generator: torch.Generator | None = None, rows: slice | None = None,
                 total: int | None = None) -> list[Tensor]:
        """`n_global` then `n_local` float32 views (B, 3, s, s) of uint8 `images` (B, C, S, S).

        `rows`, `total`: `images` are the rows `rows` of a batch of `total` images (one process's shard of it);
        the draws are made for the whole batch and those of `rows` used, so every image gets the views it gets
        when the batch is cropped whole.
        """
        x = _unit(images)
        total = len(x) if total is None else total
        rows = slice(0, total) if rows is None else rows
        if len(range(total)[rows]) != len(x):
            raise ValueError(f"rows {rows} of a batch of {total} are not the {len(x)} images given")
        specs = self._specs()
        levels = max((_mip_levels(x.shape[-1], size, scale[1]) for size, scale, _ in specs), default=0)
        atlas = _MipAtlas.build(x, levels)
        return [self._view(atlas, size, scale, blur_p, generator, total, rows) for size, scale, blur_p in specs]

    def _specs(self) -> list[tuple[int, tuple[float, float], float]]:
        """(size, scale, blur probability) of every view, global first."""
        glob = (self.global_size, self.global_scale, self.global_blur_p)
        loc = (self.local_size, self.local_scale, self.local_blur_p)
        return [glob] * self.n_global + [loc] * self.n_local

    def _view(
        self, atlas: _MipAtlas, size: int, scale: tuple[float, float], blur_p: float, g: torch.Generator | None,
        n: int, rows: slice,
    ) -> Tensor:
        """One view; its draws (for all `n` images of the batch, those of `rows` kept) are made where `g` lives
        and reach the images' device in one copy."""
        grid = atlas.grid_params(_crop_boxes(n, scale, self.ratio, self.flip_p, g)[rows], size)
        sigma = torch.where(_rand(g, n) < blur_p, _uniform(g, n, *self.blur_sigma), 0.0)[rows]
        draws = torch.cat([grid, self._colour_draws(n, g)[rows], sigma[:, None]], 1).to(atlas.image)
        grid, colour, sigma = draws.split([4, 4, 1], 1)
        x = _colour(atlas.sample(grid, size), colour)
        return _normalise(_blur(x, sigma[:, 0], self.blur_sigma[1]), self.mean, self.std)

    def _colour_draws(self, n: int, g: torch.Generator | None) -> Tensor:
        """(n, 4) brightness, contrast and saturation factors (1 where not jittered) and grayscale flags."""
        jittered = _rand(g, n) < self.jitter_p
        factors = [torch.where(jittered, _uniform(g, n, 1 - j, 1 + j), 1.0) for j in self.jitter]
        return torch.stack([*factors, (_rand(g, n) < self.grayscale_p).double()], 1)


@dataclass
class _MipAtlas:
    """Antialiased downsamplings of a batch by powers of two, packed into one image for a single `grid_sample`.

    Each level is padded by one replicated pixel, so bilinear taps never reach a neighbouring level.
    """

    image: Tensor  # (B, C, H, W)
    rects: Tensor  # (levels, 3) float64: left, top and side in atlas pixels of each level's content
    side: int  # side of level 0, the input

    @classmethod
    def build(cls, x: Tensor, levels: int) -> _MipAtlas:
        s = x.shape[-1]
        if levels == 0:
            return cls(x, torch.tensor([[0.0, 0.0, s]], dtype=torch.float64), s)
        sides = [s >> level for level in range(levels + 1)]
        tiles = [x] + [F.interpolate(x, size=(t, t), mode="bilinear", antialias=True) for t in sides[1:]]
        corners = [(0, 0)] + [(s + 2, sum(t + 2 for t in sides[1:level])) for level in range(1, levels + 1)]
        height = max(s + 2, sum(t + 2 for t in sides[1:]))
        image = x.new_zeros(x.shape[0], x.shape[1], height, s + sides[1] + 4)
        for tile, (left, top) in zip(tiles, corners, strict=True):
            t = tile.shape[-1] + 2
            image[..., top : top + t, left : left + t] = F.pad(tile, (1, 1, 1, 1), mode="replicate")
        rects = torch.tensor([(left + 1, top + 1, t) for (left, top), t in zip(corners, sides, strict=True)])
        return cls(image, rects.to(torch.float64), s)

    def grid_params(self, boxes: Tensor, size: int) -> Tensor:
        """Atlas affine (n, 4) = sx, sy, tx, ty of crops `boxes` (n, 4): signed half-width and half-height
        (negative flips) and centre x, y in the input's [-1, 1] coordinates, each read from the level
        nearest its scale."""
        height, width = self.image.shape[-2:]
        hw, hh, cx, cy = boxes.unbind(1)
        factor = (hw * hh).abs().sqrt() * self.side / size
        level = factor.log2().round().clamp(0, len(self.rects) - 1).long()
        left, top, side = self.rects.to(boxes.device)[level].unbind(1)
        shift_x, shift_y = (side * (cx + 1) + 2 * left) / width - 1, (side * (cy + 1) + 2 * top) / height - 1
        return torch.stack([side * hw / width, side * hh / height, shift_x, shift_y], 1)

    def sample(self, params: Tensor, size: int) -> Tensor:
        """Crops (n, C, size, size) at `grid_params`; the grid is `F.affine_grid`'s for theta [[sx, 0, tx],
        [0, sy, ty]], built by broadcasting (affine_grid's bmm is ~15x slower on the CPU)."""
        base = (torch.arange(size, dtype=params.dtype, device=params.device) * 2 + 1) / size - 1
        gx, gy = (params[:, i, None] * base + params[:, i + 2, None] for i in range(2))
        grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)
        return F.grid_sample(self.image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _mip_levels(side: int, size: int, max_scale: float) -> int:
    """Levels a crop of up to `max_scale` of the area, resized from `side` to `size`, can need."""
    levels = round(math.log2(math.sqrt(max_scale) * side / size))
    return max(0, min(levels, side.bit_length() - 1))


def _crop_boxes(
    n: int, scale: tuple[float, float], ratio: tuple[float, float], flip_p: float, g: torch.Generator | None
) -> Tensor:
    """Random resized crop boxes (n, 4) as `_MipAtlas.grid_params` takes them: torchvision's area and log-ratio
    draws, the first of 10 that fits, else the whole image; flips as negative half-sides."""
    area = _uniform(g, (n, 10), *scale)
    log_ratio = _uniform(g, (n, 10), math.log(ratio[0]), math.log(ratio[1]))
    w, h = (area * log_ratio.exp()).sqrt(), (area / log_ratio.exp()).sqrt()
    fits = (w <= 1) & (h <= 1)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)
    w = torch.where(fits.any(1), w.gather(1, first).squeeze(1), 1.0)
    h = torch.where(fits.any(1), h.gather(1, first).squeeze(1), 1.0)
    cx, cy = (1 - w) * (2 * _rand(g, n) - 1), (1 - h) * (2 * _rand(g, n) - 1)
    fx, fy = (torch.where(_rand(g, n) < flip_p, -1.0, 1.0) for _ in range(2))
    return torch.stack([w * fx, h * fy, cx, cy], 1)


def _colour(x: Tensor, draws: Tensor) -> Tensor:
    """Brightness, contrast, saturation with torchvision's formulas, in that fixed order, then grayscale."""
    b, c, s, gray = (d.view(-1, 1, 1, 1) for d in draws.unbind(1))
    x = (x * b).clamp_(0, 1)
    x = _blend(x, _gray(x.mean((2, 3), keepdim=True)), c)
    if x.shape[1] == 1:  # saturation and grayscale leave one channel as it is
        return x
    luma = _gray(x)
    return torch.where(gray > 0, luma, _blend(x, luma, s))


def _blur(x: Tensor, sigma: Tensor, max_sigma: float) -> Tensor:
    """Gaussian blur of the samples whose sigma is above 0."""
    index = (sigma > 0).nonzero().squeeze(1)
    if not len(index):
        return x
    radius = min(math.ceil(3 * max_sigma), x.shape[-1] - 1)
    return x.index_copy(0, index, _gaussian_blur(x[index], sigma[index], radius))


def _gaussian_blur(x: Tensor, sigma: Tensor, radius: int) -> Tensor:
    """Separable Gaussian blur, sigma per sample, reflect-padded like torchvision: a grouped conv per axis."""
    n, c, h, w = x.shape
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)


def _unit(images: Tensor, square: bool = True) -> Tensor:
    """uint8 (B, C, H, W), C = 1 or 3 (and H = W unless `square` is False), as float32 in 0..1."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (B, 1 or 3, H, W), got {images.dtype} {tuple(images.shape)}")
    if square and images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected square images, got {tuple(images.shape[-2:])}")
    return images.float().div_(255)


def _normalise(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """(x - mean) / std per channel; one-channel x broadcasts to three."""
    inv_std = _channels(tuple(1 / s for s in std), x.device, x.dtype)
    shift = _channels(tuple(-m / s for m, s in zip(mean, std, strict=True)), x.device, x.dtype)
    return torch.addcmul(shift, x, inv_std)


def _gray(x: Tensor) -> Tensor:
    """Luma (B, 1, H, W) of RGB x; one-channel x as it is."""
    if x.shape[1] == 1:
        return x
    return (x * _channels(_GRAY, x.device, x.dtype)).sum(1, keepdim=True)


@lru_cache(maxsize=32)
def _channels(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    """Per-channel constants (1, C, 1, 1), made once per device: a host-to-GPU copy waits for the GPU."""
    return torch.tensor(values, dtype=dtype, device=device).view(1, -1, 1, 1)


def _blend(a: Tensor, b: Tensor, ratio: Tensor) -> Tensor:
    """torchvision's blend, ratio * a + (1 - ratio) * b clipped to 0..1."""
    return torch.lerp(b, a, ratio).clamp_(0, 1)


def _rand(g: torch.Generator | None, shape: int | tuple[int, ...]) -> Tensor:
    """Uniform [0, 1) float64 from `g`, on its device (the CPU without one)."""
    return torch.rand(shape, generator=g, dtype=torch.float64, device=g.device if g is not None else "cpu")


def _uniform(g: torch.Generator | None, shape: int | tuple[int, ...], lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * _rand(g, shape)
