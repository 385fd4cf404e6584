"""Decode image files once into one uint8 array, and cache that array on disk.

The size asked for (`ImageSize`) is S (a square S x S), (H, W), or `Fit`: the pile's own shape, that is
the median source height and width, scaled down so that the longer side is at most `Fit.max_side` and each
side a multiple of `Fit.multiple` (the aspect ratio kept; what detection reads tall or wide images at).
The documented form of every image: resized (bilinear, antialiased, aspect ratio not kept) to that shape,
8 bits per channel (16-bit sources are scaled by 255/65535), one channel when every source of the
set is grayscale (an RGB file whose channels differ by less than 2 grey levels on average counts as
grayscale, as NEU's JPEGs do), three channels otherwise (grayscale images are then repeated).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import SteelnbWarning
from ..progress import progress
from .errors import DataError

CACHE_VERSION = 3  # 2: the key holds each file's inode and ctime; 3: entries hold the source modes
DEFAULT_CACHE_GB = 4
GRAY_TOLERANCE = 2.0  # mean |channel difference| below which an RGB file counts as grayscale
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
Decoded = tuple[np.ndarray, list[int], list[tuple[str, str]], dict]  # images, kept, skipped, sources


class UnreadableImage(Exception):
    """A file that is not a readable image; the message says why."""


@dataclass(frozen=True)
class Fit:
    """Decode at the pile's median source shape, the longer side at most `max_side`, sides multiples of `multiple`."""

    max_side: int = 1024
    multiple: int = 32


ImageSize = int | tuple[int, int] | Fit


def _header_shape(path: Path) -> tuple[int, int] | None:
    """(H, W) from the file's header without decoding it; None when it is not a readable image."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def resolve_shape(size: ImageSize, paths: list[Path]) -> tuple[int, int]:
    """The (H, W) that `size` means for the files `paths` (see the module docstring)."""
    if isinstance(size, Fit):
        shapes = [s for s in map(_header_shape, paths) if s is not None]
        height, width = np.median(np.array(shapes or [(size.max_side, size.max_side)], np.float64), axis=0)
        factor = min(1.0, size.max_side / max(height, width))
        longest = max(size.multiple, size.max_side // size.multiple * size.multiple)  # rounding must not pass it
        return tuple(min(longest, max(size.multiple, round(side * factor / size.multiple) * size.multiple))
                     for side in (height, width))
    if isinstance(size, tuple):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def default_cache_dir() -> Path | None:
    """`$STEELNB_CACHE`, or ~/.cache/steelnb; `STEELNB_CACHE=off` disables the cache."""
    env = os.environ.get("STEELNB_CACHE")
    if env == "off":
        return None
    return Path(env) if env else Path.home() / ".cache" / "steelnb"


def _to_uint8(image: Image.Image) -> np.ndarray:
    """Pixels as uint8 (H, W) or (H, W, 3), whatever the file's mode and bit depth."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        return np.clip(array * (255.0 / 65535.0), 0, 255).round().astype(np.uint8)
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        return np.clip(array if array.max() > 1.0 else array * 255.0, 0, 255).round().astype(np.uint8)
    if image.mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


def read_image(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int], str]:
    """One file as uint8 (C, H, W) of `shape` (H, W), C = 1 for a grayscale file and 3 otherwise; its source (H, W)
    and PIL mode ("L", "RGB", "I;16", ...: its channels and bit depth).

    Raises UnreadableImage for an empty, truncated, corrupt or non-image file.
    """
    if path.stat().st_size == 0:
        raise UnreadableImage("empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            image.load()
            pixels, mode = _to_uint8(image), image.mode
    except UnidentifiedImageError as error:
        raise UnreadableImage("not an image file PIL can read") from error
    except Image.DecompressionBombError as error:
        raise UnreadableImage(f"too large to decode safely ({error}); raise PIL.Image.MAX_IMAGE_PIXELS to read it") \
            from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadableImage(f"corrupt or truncated image ({error})") from error
    resized = np.asarray(Image.fromarray(pixels).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
    channels = resized[None] if resized.ndim == 2 else resized.transpose(2, 0, 1)
    return np.ascontiguousarray(channels), pixels.shape[:2], mode


def _is_gray(image: np.ndarray) -> bool:
    """Whether a (C, H, W) image is grayscale: one channel, or three within GRAY_TOLERANCE of each other."""
    if len(image) == 1:
        return True
    first = image[0].astype(np.int16)
    return (np.abs(first - image[1]).mean() + np.abs(first - image[2]).mean()) / 2 < GRAY_TOLERANCE


def _gray(image: np.ndarray) -> np.ndarray:
    """A grayscale (C, H, W) image as (1, H, W): the rounded mean of its channels."""
    return image if len(image) == 1 else np.rint(image.mean(axis=0, keepdims=True)).astype(np.uint8)


def _cache_key(paths: list[Path], shape: tuple[int, int]) -> str:
    """The files' identity as the file system keeps it: path, size, mtime, inode and ctime (in ns).

    Writing a file changes its ctime, and setting its mtime back (`touch -d`, `cp -p`, `os.utime`) changes it
    again, so new content never keeps the key unless it is written twice within one tick of the file
    system's clock. Costs one stat a file (benchmarks/cache_key.py: the cost of hashing the contents instead).
    """
    stats = [p.stat() for p in paths]
    entries = [(str(p), s.st_size, s.st_mtime_ns, s.st_ino, s.st_ctime_ns) for p, s in zip(paths, stats, strict=True)]
    size = shape[0] if shape[0] == shape[1] else list(shape)
    return hashlib.sha1(json.dumps([CACHE_VERSION, size, entries]).encode()).hexdigest()[:20]


def _decode_all(paths: list[Path], shape: tuple[int, int], workers: int) -> Decoded:
    def attempt(path: Path):
        try:
            return read_image(path, shape)
        except (UnreadableImage, OSError) as error:
            return error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(progress(pool.map(attempt, paths), f"decoding {len(paths)} images", len(paths), "image"))
    kept = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    skipped = [(str(paths[i]), str(r)) for i, r in enumerate(results) if isinstance(r, Exception)]
    gray = all(_is_gray(results[i][0]) for i in kept)
    images = np.empty((len(kept), 1 if gray else 3, *shape), np.uint8)
    for row, i in enumerate(kept):  # filled one by one: no float copy of the whole stack
        images[row] = _gray(results[i][0]) if gray else results[i][0]
    sources = {"source_sizes": dict(Counter(f"{results[i][1][1]}x{results[i][1][0]}" for i in kept)),
               "source_modes": dict(Counter(results[i][2] for i in kept))}
    return images, kept, skipped, sources


def load_images(paths: list[Path], size: ImageSize, cache_dir: Path | None = None, workers: int = 4) -> Decoded:
    """Decode `paths` to uint8 (N, C, H, W) of the shape `size` means, reusing the on-disk cache when nothing changed.

    Returns the images, the indices into `paths` that were kept, the (path, reason) of every skipped
    file and what the sources were: {"source_sizes": {"WxH": n}, "source_modes": {PIL mode: n}}. A cache
    folder that cannot be written is warned about once and the images are decoded without it.
    """
    shape = resolve_shape(size, paths)
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    cache_file = cache_dir / f"images-{_cache_key(paths, shape)}.npz" if cache_dir else None
    cached = _read_cache(cache_file) if cache_file is not None else None
    if cached is not None:
        return cached
    decoded = _decode_all(paths, shape, workers)
    if cache_file is not None:
        _write_cache(cache_file, decoded)
    return decoded


def cache_budget() -> int:
    """The cache's size limit in bytes: `$STEELNB_CACHE_MAX_GB` (default 4) gigabytes."""
    text = os.environ.get("STEELNB_CACHE_MAX_GB", str(DEFAULT_CACHE_GB))
    try:
        budget = float(text)
    except ValueError:
        budget = -1.0
    if not budget >= 0:
        raise DataError(f"STEELNB_CACHE_MAX_GB must be a number of gigabytes (>= 0), got {text!r}")
    return int(budget * 1e9)


def _read_cache(cache_file: Path) -> Decoded | None:
    """The decoded set stored in `cache_file`, or None when it is absent or damaged (a damaged one is removed)."""
    try:
        with np.load(cache_file, allow_pickle=False) as cached:
            meta = json.loads(str(cached["meta"]))
            sources = {"source_sizes": meta["source_sizes"], "source_modes": meta["source_modes"]}
            decoded = cached["images"], meta["kept"], [tuple(s) for s in meta["skipped"]], sources
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        with contextlib.suppress(OSError):
            cache_file.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(cache_file)  # the modification time says when an entry was last used (pruning)
    return decoded


def _write_cache(cache_file: Path, decoded: Decoded) -> None:
    """Store `decoded`, then prune the cache to its budget; warn once and go on when the folder is not writable."""
    images, kept, skipped, sources = decoded
    partial = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"kept": kept, "skipped": skipped, **sources})
        np.savez(partial, images=images, meta=np.array(meta))
        os.replace(partial, cache_file)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        warnings.warn(f"decode cache {cache_file.parent} cannot be written ({error.strerror or error}); decoding "
                      "without it. Set STEELNB_CACHE to a writable folder, or to off.", SteelnbWarning, stacklevel=3)
        return
    prune_cache(cache_file.parent, cache_budget(), keep=cache_file)


def prune_cache(cache_dir: Path, budget: int, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used entries until the cache holds at most `budget` bytes (never `keep`), and
    partial files left by a killed process over an hour ago; returns what was deleted."""
    now, deleted = time.time(), []
    entries = []
    for path in cache_dir.glob("images-*.npz"):
        with contextlib.suppress(FileNotFoundError):  # another process may prune at the same time
            entries.append((path.stat(), path))
    for info, path in entries:
        if path.name.endswith(".tmp.npz") and now - info.st_mtime > 3600:
            deleted.append(path)
    entries = sorted((e for e in entries if not e[1].name.endswith(".tmp.npz")), key=lambda e: e[0].st_mtime)
    total = sum(info.st_size for info, _ in entries)
    for info, path in entries:
        if total <= budget:
            break
        if path != keep:
            deleted.append(path)
            total -= info.st_size
    for path in deleted:
        with contextlib.suppress(OSError):
            path.unlink()
    return deleted
