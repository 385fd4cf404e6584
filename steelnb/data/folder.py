"""Any folder of images: one sub-folder per class, or flat and unlabelled (how users bring their own)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .decode import IMAGE_SUFFIXES, ImageSize, load_images
from .errors import DataError
from .imageset import UNKNOWN, ImageSet


def list_images(folder: Path) -> list[Path]:
    """Image files (by suffix) directly inside `folder`, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def require_dir(path: Path, what: str) -> Path:
    """`path` if it is a folder; DataError naming it otherwise."""
    if not path.is_dir():
        raise DataError(f"{what}: folder {path} does not exist. Check --data-root / STEELNB_DATA.")
    return path


def from_files(
    name: str,
    root: Path,
    files: list[Path],
    labels: list[int],
    defective: list[int],
    class_names: tuple[str, ...],
    image_size: ImageSize,
    meta: dict | None = None,
    missing: tuple[tuple[str, str], ...] = (),
) -> ImageSet:
    """Decode `files` (through the cache) into an ImageSet.

    Unreadable files are skipped and listed in `skipped`, after `missing` (files that an index names
    but that are not there). DataError when not one file could be read.
    """
    images, kept, skipped, sources = load_images(files, image_size)
    if files and not kept:
        path, why = skipped[0]
        raise DataError(f"{name}: none of the {len(files)} image files under {root} is readable ({path}: {why}).")
    return ImageSet(
        name=name,
        images=images,
        labels=np.asarray(labels, np.int64)[kept],
        defective=np.asarray(defective, np.int8)[kept],
        class_names=class_names,
        paths=tuple(str(files[i].relative_to(root)) for i in kept),
        skipped=missing + tuple((str(Path(p).relative_to(root)), why) for p, why in skipped),
        meta={"root": str(root), "image_size": list(images.shape[-2:]) if images.shape[-2] != images.shape[-1]
              else int(images.shape[-1]), **sources, **(meta or {})},
    )


def load(root: Path, image_size: ImageSize = 224, normal_class: str | None = None) -> ImageSet:
    """Images under `root`: sub-folders are classes; flat files are unlabelled.

    `normal_class` names the defect-free sub-folder, which sets the defect flag of every image.
    """
    root = require_dir(Path(root), "folder data set")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        if normal_class is not None:
            raise DataError(f"folder data set: normal class {normal_class!r} given but {root} has no sub-folders.")
        files = list_images(root)
        if not files:
            raise DataError(f"folder data set: no image files in {root} (looked for {sorted(IMAGE_SUFFIXES)}).")
        n = len(files)
        return from_files(root.name, root, files, [UNKNOWN] * n, [UNKNOWN] * n, (), image_size)
    class_names = tuple(d.name for d in class_dirs)
    if normal_class is not None and normal_class not in class_names:
        raise DataError(f"folder data set: normal class {normal_class!r} is not a sub-folder of {root} {class_names}.")
    files, labels = [], []
    for index, class_dir in enumerate(class_dirs):
        found = list_images(class_dir)
        if not found:
            raise DataError(f"folder data set: class folder {class_dir} holds no images; remove it or add images.")
        files += found
        labels += [index] * len(found)
    if normal_class is None:
        defective = [UNKNOWN] * len(files)
    else:
        defective = [int(class_names[label] != normal_class) for label in labels]
    return from_files(root.name, root, files, labels, defective, class_names, image_size)
