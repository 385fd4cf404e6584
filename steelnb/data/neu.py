"""NEU surface defect database: 6 defect classes x 300 grayscale 200 x 200 images, no defect-free class."""

from __future__ import annotations

from pathlib import Path

from . import folder
from .decode import ImageSize
from .errors import DataError
from .imageset import ImageSet

CLASSES = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")


def load(root: Path, image_size: ImageSize = 200) -> ImageSet:
    """`root/<class>/<class>_<n>.jpg`; every image is defective."""
    root = folder.require_dir(Path(root), "NEU")
    missing = [c for c in CLASSES if not (root / c).is_dir()]
    if missing:
        raise DataError(f"NEU: {root} lacks the class folders {missing}; expected {list(CLASSES)}.")
    files, labels, left = [], [], []
    for index, name in enumerate(CLASSES):
        found, class_left = folder.scan(root / name, root)
        left += class_left
        if not found:
            raise DataError(f"NEU: class folder {root / name} holds no images.")
        files += found
        labels += [index] * len(found)
    return folder.from_files("neu", root, files, labels, [1] * len(files), CLASSES, image_size, left_out=left)
