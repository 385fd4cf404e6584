"""Any folder of images: one sub-folder per class, or flat and unlabelled (how users bring their own).

The pile is the folder the user named: every image below it is read. Its first-level sub-folders are classes
only when every image lies in one of them; a root holding images itself is one unlabelled pile, its sub-folders
read with it (a note says so). A folder laid out like a named set (dagm, ksdd, neu, severstal) is read as a
folder all the same, and a note names the command that reads it with its labels (`named_layout`).

Which files a folder set is made of (`scan`, used by every reader for the folders its layout names):
- names starting with "." (files and folders) are hidden and left out;
- a steelnb run folder (one holding a run's lock or files: metrics.json, scores.csv, model.pt, ...) is left out whole:
  a run's overlays and thumbnails are never read as images;
- defect masks and labels are left out: folders named like `Label/` (DAGM), `polygons/` (KolektorSDD),
  `masks/` or `ground_truth/`, and files named `*_label.*` or `*_mask.*`;
- an image file is one with a suffix in `IMAGE_SUFFIXES`; other files are left out;
- nothing is read from outside the folder a class (or a flat set) lives in: a symlink is followed only when
  it resolves inside that folder; a folder reached a second time (a symlink loop) and a file reached a
  second time (two links to one file) are read once;
- everything left out is listed with its reason in `ImageSet.skipped`, beside the files that could not be
  decoded.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .decode import IMAGE_SUFFIXES, ImageSize, load_images
from .errors import DataError
from .imageset import UNKNOWN, ImageSet

LeftOut = list[tuple[str, str]]  # (path relative to the data-set root, why it was left out)


def scan(folder: Path, root: Path, recursive: bool = False) -> tuple[list[Path], LeftOut]:
    """Image files in `folder` (and below it when `recursive`), sorted, and every entry left out with its
    reason, following the module's policy; `folder` lies in the data set's `root`, which paths are given
    relative to. Without `recursive`, sub-folders are not looked into (a reader's layout names them)."""
    boundary = Path(os.path.realpath(folder))
    found: dict[Path, Path] = {}  # real file -> the path it was first found at
    left: LeftOut = []

    def shown(path: Path) -> str:
        return str(path.relative_to(root))

    def walk(current: Path, seen: set[Path]) -> None:
        try:
            entries = sorted(current.iterdir())
        except OSError as error:
            left.append((shown(current), f"folder cannot be read ({error.strerror})"))
            return
        for path in entries:
            why = _why_not(path, boundary) or (_not_images(path) if recursive or not path.is_dir() else None)
            if why:
                left.append((shown(path), why))
            elif path.is_dir():
                real = Path(os.path.realpath(path))
                if recursive and real in seen:
                    left.append((shown(path), "symlink loop: leads back to a folder it is in"))
                elif recursive:
                    walk(path, seen | {real})
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                left.append((shown(path), f"not an image file (suffix {path.suffix or 'none'})"))
            elif (real := Path(os.path.realpath(path))) in found:
                left.append((shown(path), f"the same file as {shown(found[real])} (a link to it)"))
            else:
                found[real] = path

    walk(folder, {boundary})
    return sorted(found.values()), left


def _why_not(path: Path, boundary: Path) -> str | None:
    """Why `path` is not read (hidden, a dangling or looping link, outside `boundary`, not a file), or None."""
    if path.name.startswith("."):
        return "hidden (name starts with '.')"
    try:
        mode = path.stat().st_mode  # follows symlinks
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop"
        return "broken symlink" if path.is_symlink() else f"cannot be read ({error.strerror})"
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(boundary):
        return f"symlink to {real}, outside {boundary}: not read"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "not a regular file"
    return None


# What makes a folder a steelnb run's: its lock while it writes, then the files only a run writes
RUN_MARKERS = (".steelnb.lock", "metrics.json", "scores.csv", "checkpoint.pt", "model.pt", "report.html")
MASK_FOLDERS = frozenset({"label", "labels", "polygons", "masks", "mask", "ground_truth", "groundtruth"})
MASK_SUFFIXES = ("_label", "_mask")  # of a file's stem: DAGM's NNNN_label.PNG, MVTec's 000_mask.png


NOT_IMAGES = ("a steelnb run folder", "a folder of defect masks")  # how `_not_images` names folders


def _not_images(path: Path) -> str | None:
    """Why `path` holds no image of the pile (a steelnb run folder, defect masks or labels), or None."""
    if path.is_dir():
        marker = next((name for name in RUN_MARKERS if (path / name).exists()), None)
        if marker:
            return f"{NOT_IMAGES[0]} (holds {marker}): its files are not read as images"
        if path.name.lower() in MASK_FOLDERS:
            return f"{NOT_IMAGES[1]} or labels, not images"
    elif path.stem.lower().endswith(MASK_SUFFIXES) and path.suffix.lower() in IMAGE_SUFFIXES:
        return "a defect mask or label (name ends in _label / _mask), not an image"
    return None


def named_layout(root: Path) -> tuple[str, Path] | None:
    """(name, data root) of the named set whose layout `root` has, or lies in (a DAGM class or split), or None.

    >>> named_layout(Path("/nowhere")) is None
    True
    """
    root = Path(os.path.realpath(root))
    if not root.is_dir():
        return None
    for folder in (root, root.parent, root.parent.parent):
        if folder.name.startswith("Class") and any((folder / s / "Label").is_dir() for s in ("Train", "Test")):
            return "dagm", folder.parent
        if any(folder.glob("Class*/*/Label/Labels.txt")):
            return "dagm", folder
    if (root / "images" / "good").is_dir() and (root / "images" / "defective").is_dir():
        return "ksdd", root
    if (root / "train.csv").is_file() and (root / "train_images").is_dir():
        return "severstal", root
    if {"crazing", "inclusion", "scratches"} <= {p.name.lower() for p in root.iterdir() if p.is_dir()}:
        return "neu", root
    return None


def require_dir(path: Path, what: str) -> Path:
    """`path` if it is a folder; DataError naming it otherwise."""
    if path.exists() and not path.is_dir():
        raise DataError(f"{what}: {path} is a file, not a folder. Check --data-root / STEELNB_DATA.")
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
    left_out: LeftOut | tuple = (),
) -> ImageSet:
    """Decode `files` (through the cache) into an ImageSet.

    Unreadable files are skipped and listed in `skipped`, after `left_out` (what the listing left out, and
    files that an index names but that are not there). DataError when not one file could be read.
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
        skipped=tuple(left_out) + tuple((str(Path(p).relative_to(root)), why) for p, why in skipped),
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


@dataclass
class Layout:
    """What a folder set is made of, before anything is decoded (see `layout`)."""

    files: list[Path]
    labels: list[int]
    class_names: tuple[str, ...]
    left: LeftOut
    meta: dict = field(default_factory=dict)


def layout(root: Path, normal_class: str | None = None) -> Layout:
    """The image files of the folder `root`, their classes and what was left out, without decoding anything
    (the module docstring says which); DataError when there is no image to read."""
    root = require_dir(Path(root), "folder data set")
    loose, left = scan(root, root)
    boundary = Path(os.path.realpath(root))
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and _why_not(d, boundary) is None]
    not_piles = [(d.name, why) for d in folders if (why := _not_images(d))]
    sub_folders = [d for d in folders if d.name not in dict(not_piles)]
    meta, named = {}, named_layout(root)
    if named:
        meta["layout_note"] = (f"this folder is laid out like the {named[0]} set: steelnb data info {named[0]} "
                               f"--data-root {named[1]} (or --dataset {named[0]}) reads it with its labels")
    if loose or not sub_folders:
        if normal_class:
            where = "images lie at its root" if loose else "it has no sub-folders"
            raise DataError(f"folder data set: normal class {normal_class!r} given but {root} is no set of class "
                            f"sub-folders ({where}).")
        files, left = scan(root, root, recursive=True)
        if sub_folders and not named:
            meta["layout_note"] = (f"{len(loose)} images at the root of {root} beside its sub-folders: all read as one "
                                   "unlabelled pile (sub-folders are classes only when every image lies in one)")
        return _checked(root, Layout(files, [UNKNOWN] * len(files), (), left, meta))
    left += not_piles
    files, labels, class_names = [], [], []
    for class_dir in sub_folders:
        found, class_left = scan(class_dir, root, recursive=True)
        left += class_left
        if not found and any(why.startswith(NOT_IMAGES) for _, why in class_left):
            continue  # holds only run folders or masks (a runs/ folder): not a class
        if not found:
            raise DataError(f"folder data set: class folder {class_dir} holds no images; remove it or add images.")
        files += found
        labels += [len(class_names)] * len(found)
        class_names.append(class_dir.name)
    return _checked(root, Layout(files, labels, tuple(class_names), left, meta))


def _checked(root: Path, found: Layout) -> Layout:
    """`found`, or the DataError for a folder without an image to read (naming the symlinks refused, if that is
    why)."""
    if found.files:
        return found
    links = [(path, why) for path, why in found.left if why.startswith("symlink to")]
    if links:
        path, why = links[0]
        raise DataError(f"folder data set: no image files in {root}: {len(links)} symlink{'s' * (len(links) > 1)} "
                        f"lead outside it and were refused ({path}: {why}); give the folder they lead to")
    raise DataError(f"folder data set: no image files in {root} (looked for {sorted(IMAGE_SUFFIXES)}).")


def load(root: Path, image_size: ImageSize = 224, normal_class: str | None = None) -> ImageSet:
    """Images under `root` (see the module docstring for the layouts and what is left out): first-level
    sub-folders are classes (read recursively) when every image lies in one, else every image is one unlabelled set.

    `normal_class` names the defect-free sub-folder, which sets the defect flag of every image; None: the
    sub-folder `normal_class_of` finds by its name, if any. `meta["normal_class_note"]` says which was used,
    `meta["layout_note"]` how the folder was read where that may surprise.
    """
    found = layout(root, normal_class)
    root = Path(root)
    name = root.name or root.resolve().name
    n, class_names = len(found.files), found.class_names
    if not class_names:
        return from_files(name, root, found.files, found.labels, [UNKNOWN] * n, (), image_size, meta=found.meta,
                          left_out=found.left)
    try:
        normal_class, note = normal_class_of(class_names, normal_class)
    except DataError as error:
        raise DataError(f"folder data set {root}: {error}") from None
    if normal_class is None:
        defective = [UNKNOWN] * n
    else:
        defective = [int(class_names[label] != normal_class) for label in found.labels]
    return from_files(name, root, found.files, found.labels, defective, class_names, image_size,
                      meta={"normal_class": normal_class, "normal_class_note": note, **found.meta},
                      left_out=found.left)
