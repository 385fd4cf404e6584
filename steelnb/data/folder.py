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


# Sub-folder names that mean "defect-free", compared lower-case without "-", "_", " " and "."
NORMAL_NAMES = frozenset({"good", "ok", "okay", "normal", "free", "defectfree", "nodefect", "nodefects",
                          "nondefective", "notdefective", "nondefect", "clean", "flawless"})


def normal_class_of(class_names: tuple[str, ...] | list[str], given: str | None) -> tuple[str | None, str]:
    """The defect-free class of a folder's sub-folders, and a sentence saying how it was chosen.

    `given` (--normal-class) must be one of `class_names`; "" means none. Not given, the one sub-folder
    named like a defect-free class (`NORMAL_NAMES`, any case: good, OK, defect_free, ...) is used.

    >>> normal_class_of(("Good", "scratch"), None)
    ('Good', "defect-free class: 'Good' (found by its name; --normal-class NAME picks another, '' none)")
    """
    if given == "":
        return None, "no defect-free class (--normal-class '')"
    if given is not None:
        if given not in class_names:
            raise DataError(f"normal class {given!r} is not a sub-folder; the sub-folders are {list(class_names)}.")
        return given, f"defect-free class: {given!r} (--normal-class)"
    found = [name for name in class_names if "".join(c for c in name.lower() if c not in "-_ .") in NORMAL_NAMES]
    if len(found) == 1:
        return found[0], (f"defect-free class: {found[0]!r} (found by its name; --normal-class NAME picks another, "
                          "'' none)")
    if found:
        return None, f"no defect-free class: {found} all look defect-free; choose one with --normal-class NAME"
    return None, "no defect-free class: no sub-folder is named like good / ok / normal; --normal-class NAME names one"


def load(root: Path, image_size: ImageSize = 224, normal_class: str | None = None) -> ImageSet:
    """Images under `root`: sub-folders are classes; flat files are unlabelled.

    `normal_class` names the defect-free sub-folder, which sets the defect flag of every image; None: the
    sub-folder `normal_class_of` finds by its name, if any. `meta["normal_class_note"]` says which was used.
    """
    root = require_dir(Path(root), "folder data set")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        if normal_class:
            raise DataError(f"folder data set: normal class {normal_class!r} given but {root} has no sub-folders.")
        files = list_images(root)
        if not files:
            raise DataError(f"folder data set: no image files in {root} (looked for {sorted(IMAGE_SUFFIXES)}).")
        n = len(files)
        return from_files(root.name, root, files, [UNKNOWN] * n, [UNKNOWN] * n, (), image_size)
    class_names = tuple(d.name for d in class_dirs)
    try:
        normal_class, note = normal_class_of(class_names, normal_class)
    except DataError as error:
        raise DataError(f"folder data set {root}: {error}") from None
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
    return from_files(root.name, root, files, labels, defective, class_names, image_size,
                      meta={"normal_class": normal_class, "normal_class_note": note})
