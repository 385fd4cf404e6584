"""Data sets: every reader returns an `ImageSet` (decoded once, cached as uint8).

`load_dataset(name_or_path, data_root, image_size)` is the one entry point; real data is found under
`data_root` (`--data-root`, or `$STEELNB_DATA`) as `<data_root>/<name>/`, or `data_root` itself.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from . import dagm, folder, ksdd, neu, severstal, synthetic
from .decode import Fit, ImageSize, header_shape
from .errors import DataError
from .imageset import UNKNOWN, ImageSet

READERS = {"neu": neu.load, "dagm": dagm.load, "ksdd": ksdd.load, "severstal": severstal.load,
           "synthetic": synthetic.load}

__all__ = ["READERS", "UNKNOWN", "DataError", "Fit", "ImageSet", "ImageSize", "check_source", "data_root_from_env",
           "dataset_dir", "load_dataset"]


def data_root_from_env(data_root: str | Path | None = None) -> Path | None:
    """`data_root` if given, else `$STEELNB_DATA`, else None."""
    chosen = data_root or os.environ.get("STEELNB_DATA")
    return Path(chosen).expanduser() if chosen else None


def dataset_dir(name: str, data_root: str | Path | None = None) -> Path:
    """Where data set `name` lies: `<root>/<name>`, or the root itself when it is that set's folder."""
    root = data_root_from_env(data_root)
    if root is None:
        raise DataError(f"{name}: no data root given; pass --data-root DIR or set STEELNB_DATA (DIR/{name}/ is read).")
    return root / name if (root / name).is_dir() else root


def load_dataset(name: str, data_root: str | Path | None = None, image_size: ImageSize | None = None,
                 **options) -> ImageSet:
    """A named data set (neu, dagm, ksdd, severstal, synthetic) or any image folder given by its path.

    `image_size`: S, (H, W) or `Fit(...)` (the pile's own aspect); None: the reader's default. The synthetic
    set is square: `Fit(max_side)` generates it at max_side.

    >>> data = load_dataset("synthetic", image_size=32, n_images=14, seed=0)
    >>> len(data), data.images.shape[1:], data.class_names[0]
    (14, (1, 32, 32), 'defect-free')
    """
    sized = {"image_size": image_size} if image_size else {}
    _check_options(name, options)
    if name == "synthetic":
        if isinstance(image_size, Fit):
            sized = {"image_size": image_size.max_side}
        return synthetic.load(**sized, **options)
    if name in READERS:
        return READERS[name](dataset_dir(name, data_root), **sized, **options)
    path = Path(name).expanduser()
    if path.is_dir():
        return folder.load(path, **sized, **options)
    raise _unknown(name, path)


def check_source(name: str, data_root: str | Path | None = None, **options) -> Path | None:
    """DataError, before anything is decoded, when `load_dataset(name, data_root, **options)` would find nothing
    to read: a folder that is missing or holds no image file (or none whose header can be read), an unknown option.
    Returns the image folder `name` is (None for a named set).

    >>> check_source("synthetic") is None
    True
    """
    _check_options(name, options)
    if name == "synthetic":
        return None
    if name in READERS:
        folder.require_dir(dataset_dir(name, data_root), name)
        return None
    path = Path(name).expanduser()
    if not path.is_dir():
        raise _unknown(name, path)
    files = folder.layout(path, options.get("normal_class")).files
    if not any(header_shape(file) is not None for file in files):  # stops at the first readable one
        raise DataError(f"folder data set: none of the {len(files)} image files under {path} is readable (not an "
                        "image PIL can read); check the files or choose another folder")
    return path


def _unknown(name: str, path: Path) -> DataError:
    """The error for a data set name that is neither a named set nor a folder."""
    if path.exists():
        why = f"{path} is a file, not a folder of images"
    else:
        why = f"no folder {path} exists" + ("" if path.is_absolute() else f" (in {Path.cwd()})")
    return DataError(f"unknown data set {name!r}: {why}; use one of {sorted(READERS)} or the path of an image folder.")


def _check_options(name: str, options: dict) -> None:
    """DataError naming an option (`dataset_options`) that the reader of `name` does not take."""
    reader = READERS.get(name, folder.load)
    takes = [p for p in inspect.signature(reader).parameters if p not in ("root", "image_size")]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise DataError(f"dataset_options {unknown} are not options of the {reader.__module__.split('.')[-1]} reader "
                        f"(it takes {takes})")
