"""Decode image files once into one uint8 array, and cache that array on disk.

The size asked for (`ImageSize`) is S (a square S x S), (H, W), or `Fit`: the pile's own shape, that is
the median source height and width, scaled down so that the longer side is at most `Fit.max_side` and each
side a multiple of `Fit.multiple` (the aspect ratio kept; what detection reads tall or wide images at).
The documented form of every image: turned upright as its EXIF orientation says (as image viewers show it), resized
(bilinear, antialiased, aspect ratio not kept) to that shape, 8 bits per channel (16-bit sources are scaled by
255/65535), one channel when every source of the set is grayscale (an RGB file whose channels differ by less than 2
grey levels on average counts as grayscale, as NEU's JPEGs do), three channels otherwise (grayscale images are then
repeated).

The cache (`$STEELNB_CACHE`, default ~/.cache/steelnb; `off` for none) holds one entry per set and size, keyed by
the files' paths and stats: a .npy file whose array `np.load(entry, mmap_mode="r")` opens, followed by the
entry's meta (kept, skipped, sources) as JSON. It is written once, image by image as they are decoded, beside its
name and renamed into place when whole, and the set is then read from it as a memory map: a pile larger than
memory streams through in batches, and the processes of a torchrun job share one copy in the page cache. The
least recently used entries are pruned to `$STEELNB_CACHE_MAX_GB` (default 4) gigabytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import SteelnbWarning
from ..progress import progress
from .errors import DataError

# 2: the key holds each file's inode and ctime; 3: entries hold the source modes; 4: a .npy, mapped; 5: EXIF upright
CACHE_VERSION = 5
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


def header_shape(path: Path) -> tuple[int, int] | None:
    """(H, W) upright (EXIF orientation applied) from the file's header without decoding it; None when it is not
    a readable image."""
    try:
        with Image.open(path) as image:
            turned = _orientation(image) in TURNED
            return (image.width, image.height) if turned else (image.height, image.width)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


TURNED = (5, 6, 7, 8)  # EXIF orientations that swap height and width


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of an open image (1, upright, when it has none or it cannot be read). A PNG's EXIF is
    looked for where its header put it (before the image data, as Pillow and the PNG spec write it): asking Pillow
    for more would decode the whole file just to read its size."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1


def resolve_shape(size: ImageSize, paths: list[Path]) -> tuple[int, int]:
    """The (H, W) that `size` means for the files `paths` (see the module docstring)."""
    if isinstance(size, Fit):
        shapes = [s for s in map(header_shape, paths) if s is not None]
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
            upright = ImageOps.exif_transpose(image) if _orientation(image) != 1 else image
            pixels, mode = _to_uint8(upright), image.mode
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


class _Colour(Exception):
    """A colour image after grayscale ones: the set is stored with three channels, decoded again."""


def _in_order(pool: ThreadPoolExecutor, fn, items: list, window: int) -> Iterator:
    """fn(item) of every item, in order, with at most `window` of them decoded ahead (bounded memory)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _decode_all(paths: list[Path], shape: tuple[int, int], workers: int, file: BinaryIO | None = None) -> Decoded:
    """Decode `paths` one after another into memory or, given `file`, into a cache entry written there (its rows
    streamed to disk as they come, so memory stays bounded whatever the set's size; the images returned are
    then None: open the entry). A set is stored grayscale until a colour image shows up; then it is decoded
    again with three channels (colour sets mostly show it at once)."""
    try:
        return _decode_pass(paths, shape, workers, 1, file)
    except _Colour:
        return _decode_pass(paths, shape, workers, 3, file)


def _decode_pass(paths: list[Path], shape: tuple[int, int], workers: int, channels: int,
                 file: BinaryIO | None) -> Decoded:
    def attempt(path: Path):
        try:
            return read_image(path, shape)
        except (UnreadableImage, OSError) as error:
            return error

    rows = None if file is not None else np.empty((len(paths), channels, *shape), np.uint8)
    if file is not None:
        file.seek(0)
        file.truncate()
        file.write(_npy_header((len(paths), channels, *shape)))  # the final count replaces it at the end
    kept, skipped, sizes, modes = [], [], Counter(), Counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = _in_order(pool, attempt, paths, window=4 * workers + 16)
        for i, result in enumerate(progress(results, f"decoding {len(paths)} images", len(paths), "image")):
            if isinstance(result, Exception):
                skipped.append((str(paths[i]), str(result)))
                continue
            image, (height, width), mode = result
            if channels == 1 and not _is_gray(image):
                raise _Colour
            image = _gray(image) if channels == 1 else np.broadcast_to(image, (3, *shape))
            if file is not None:
                file.write(np.ascontiguousarray(image).tobytes())
            else:
                rows[len(kept)] = image
            kept.append(i)
            sizes[f"{width}x{height}"] += 1
            modes[mode] += 1
    sources = {"source_sizes": dict(sizes), "source_modes": dict(modes)}
    if file is None:
        return rows[:len(kept)], kept, skipped, sources
    _finish_entry(file, (len(kept), channels, *shape), {"kept": kept, "skipped": skipped, **sources})
    return None, kept, skipped, sources


# -- the cache entry: one .npy file that np.load(path, mmap_mode="r") opens, its meta after the array ------------
HEADER_BYTES = 128  # a fixed .npy header (format 1.0), so the final count can be written over the first
TRAILER = struct.Struct("<Q8s")  # after the array: the meta's JSON, then its length and this magic
MAGIC = b"steelnb\x00"


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A .npy 1.0 header for uint8 C-order `shape`, padded to HEADER_BYTES."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(int(n) for n in shape)}).encode("latin1")
    room = HEADER_BYTES - 10  # magic (6), version (2), header length (2)
    if len(text) + 1 > room:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", room) + text.ljust(room - 1) + b"\n"


def _finish_entry(file: BinaryIO, shape: tuple[int, ...], meta: dict) -> None:
    """End an entry whose rows are written: cut what a longer pass left, add the meta, write the final header."""
    end = HEADER_BYTES + int(np.prod(shape))
    file.seek(end)
    file.truncate()
    text = json.dumps(meta).encode()
    file.write(text + TRAILER.pack(len(text), MAGIC))
    file.seek(0)
    file.write(_npy_header(shape))
    file.flush()


def write_entry(path: Path, images: np.ndarray, meta: dict) -> None:
    """A cache entry holding `images` (uint8 (N, C, H, W)) and `meta` ({"kept", "skipped", "source_sizes",
    "source_modes"}), written whole at `path` (an entry is otherwise written by the decoding, row by row)."""
    with open(path, "wb") as file:
        file.write(_npy_header(images.shape))
        file.write(np.ascontiguousarray(images, np.uint8).tobytes())
        _finish_entry(file, images.shape, meta)


def read_entry(path: Path) -> tuple[np.ndarray, dict]:
    """The images of a cache entry, memory-mapped copy-on-write (pages are read when touched; writing to the
    array never reaches the file), and its meta. ValueError when the file is not a whole entry."""
    with open(path, "rb") as file:
        np.lib.format.read_magic(file)
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
        if file.tell() != HEADER_BYTES or dtype != np.uint8 or fortran_order or len(shape) != 4:
            raise ValueError(f"{path}: not a steelnb cache entry")
        end, size = HEADER_BYTES + int(np.prod(shape)), os.fstat(file.fileno()).st_size
        if size < end + TRAILER.size:
            raise ValueError(f"{path}: truncated")
        file.seek(size - TRAILER.size)
        length, magic = TRAILER.unpack(file.read(TRAILER.size))
        if magic != MAGIC or end + length + TRAILER.size != size:
            raise ValueError(f"{path}: truncated or not a steelnb cache entry")
        file.seek(end)
        meta = json.loads(file.read(length))
    if not shape[0]:
        return np.empty(shape, np.uint8), meta
    return np.memmap(path, np.uint8, "c", HEADER_BYTES, shape), meta


def load_images(paths: list[Path], size: ImageSize, cache_dir: Path | None = None, workers: int = 4) -> Decoded:
    """Decode `paths` to uint8 (N, C, H, W) of the shape `size` means, reusing the on-disk cache when nothing changed.

    With the cache (the default) the images are a read-only-on-disk memory map of the cache entry (np.memmap,
    copy-on-write): a set larger than memory is decoded once, row by row, and then read in whatever batches
    its user takes. Without it they are an array in memory.

    Returns the images, the indices into `paths` that were kept, the (path, reason) of every skipped
    file and what the sources were: {"source_sizes": {"WxH": n}, "source_modes": {PIL mode: n}}. A cache
    folder that cannot be written is warned about once and the images are decoded without it.
    """
    shape = resolve_shape(size, paths)
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    if cache_dir is None:
        return _decode_all(paths, shape, workers)
    cache_file = cache_dir / f"images-{_cache_key(paths, shape)}.npy"
    cached = _read_cache(cache_file)
    if cached is not None:
        return cached
    return _decode_to_cache(paths, shape, workers, cache_file)


def _unwritable(folder: Path, error: OSError) -> None:
    warnings.warn(f"decode cache {folder} cannot be written ({error.strerror or error}); decoding without it. "
                  "Set STEELNB_CACHE to a writable folder, or to off.", SteelnbWarning, stacklevel=4)


def _decode_to_cache(paths: list[Path], shape: tuple[int, int], workers: int, cache_file: Path) -> Decoded:
    """Decode into a new cache entry (written beside its name, renamed into place when whole), prune the cache to
    its budget and open the entry; without a writable cache folder, decode into memory."""
    partial = cache_file.with_name(f"{cache_file.stem}.{os.getpid()}.tmp.npy")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb+") as file:
            _decode_all(paths, shape, workers, file)
        os.replace(partial, cache_file)
    except OSError as error:  # a folder that cannot be written, or a disk that fills up
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        _unwritable(cache_file.parent, error)
        return _decode_all(paths, shape, workers)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    prune_cache(cache_file.parent, cache_budget(), keep=cache_file)
    opened = _read_cache(cache_file)
    if opened is None:  # removed at once by another process's pruning: decode into memory
        return _decode_all(paths, shape, workers)
    return opened


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
        images, meta = read_entry(cache_file)
        if len(meta["kept"]) != len(images):
            raise ValueError(f"{cache_file}: {len(images)} images for {len(meta['kept'])} kept files")
        sources = {"source_sizes": meta["source_sizes"], "source_modes": meta["source_modes"]}
        decoded = images, meta["kept"], [tuple(s) for s in meta["skipped"]], sources
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, KeyError, TypeError, struct.error):
        with contextlib.suppress(OSError):
            cache_file.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(cache_file)  # the modification time says when an entry was last used (pruning)
    return decoded


def prune_cache(cache_dir: Path, budget: int, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used entries until the cache holds at most `budget` bytes (never `keep`), and
    partial files left by a killed process over an hour ago; returns what was deleted."""
    now, deleted = time.time(), []
    entries = []
    for path in [*cache_dir.glob("images-*.npy"), *cache_dir.glob("images-*.npz")]:  # .npz: entries before version 4
        with contextlib.suppress(FileNotFoundError):  # another process may prune at the same time
            entries.append((path.stat(), path))
    partial = (".tmp.npy", ".tmp.npz")
    for info, path in entries:
        if path.name.endswith(partial) and now - info.st_mtime > 3600:
            deleted.append(path)
    entries = sorted((e for e in entries if not e[1].name.endswith(partial)), key=lambda e: e[0].st_mtime)
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
