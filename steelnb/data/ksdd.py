"""KolektorSDD: `images/{good,defective}/NNN.jpg` tall grayscale strips and `polygons/NNN.txt` defect outlines.

A polygon file holds one outline a line in YOLO segmentation form (`0 x1 y1 x2 y2 ...`, fractions of the
image's width and height); `meta["polygons"]` maps each defective image's path to its outlines, so that an
anomaly map can be scored where the defect is (`masks.defect_masks`).
"""

from __future__ import annotations

from pathlib import Path

from . import folder
from .decode import ImageSize
from .errors import DataError
from .imageset import ImageSet

CLASSES = ("good", "defective")
Outline = list[tuple[float, float]]  # (x, y) as fractions of the width and height


def read_polygons(path: Path) -> list[Outline]:
    """The outlines in one YOLO segmentation file; DataError naming the line when one is malformed."""
    outlines = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            numbers = [float(v) for v in fields[1:]]
        except ValueError as error:
            raise DataError(f"KSDD: {path}:{line_no} is not 'class x1 y1 x2 y2 ...'.") from error
        if len(numbers) < 6 or len(numbers) % 2:
            raise DataError(f"KSDD: {path}:{line_no} needs at least 3 (x, y) pairs.")
        outlines.append(list(zip(numbers[0::2], numbers[1::2], strict=True)))
    return outlines


def load(root: Path, image_size: ImageSize = 256) -> ImageSet:
    """Every image of `root/images/good` (defect-free) and `root/images/defective`, with their outlines."""
    root = folder.require_dir(Path(root), "KSDD")
    files, labels, polygons, left = [], [], {}, []
    for label, name in enumerate(CLASSES):
        found, class_left = folder.scan(folder.require_dir(root / "images" / name, f"KSDD images/{name}"), root)
        left += class_left
        files += found
        labels += [label] * len(found)
    for path in files[labels.count(0):]:
        outline_file = root / "polygons" / f"{path.stem}.txt"
        if outline_file.is_file():
            polygons[str(path.relative_to(root))] = read_polygons(outline_file)
    if not files:
        raise DataError(f"KSDD: no images under {root / 'images'}.")
    return folder.from_files("ksdd", root, files, labels, labels, CLASSES, image_size, meta={"polygons": polygons},
                             left_out=left)
