"""Severstal steel defect detection (Kaggle): `train_images/*.jpg` strips and `train.csv` RLE masks.

`train.csv` has the columns ImageId, ClassId (1-4), EncodedPixels (run-length "start length ...");
an image with no row is defect-free. An image with several ClassIds is labelled with the one whose
masks cover the largest area (ties: the smaller ClassId); `meta["class_ids"]` keeps all of them.

Strip to network input: the 1600 x 256 strips are resized to a plain S x S square (aspect ratio not
kept, as `decode` does for every set), which squeezes them 6.25 x along their length. This is the
documented choice: no crops, no tiles, one image per strip.
"""

from __future__ import annotations

import csv
from pathlib import Path

from . import folder
from .decode import ImageSize
from .errors import DataError
from .imageset import ImageSet

CLASSES = ("defect-free", "1", "2", "3", "4")
COLUMNS = ("ImageId", "ClassId", "EncodedPixels")


def rle_area(encoded: str, where: str) -> int:
    """Pixels covered by a run-length string "start length start length ..."."""
    try:
        numbers = [int(token) for token in encoded.split()]
    except ValueError as error:
        raise DataError(f"Severstal: {where}: EncodedPixels is not a list of integers.") from error
    if len(numbers) % 2 or any(n < 0 for n in numbers):
        raise DataError(f"Severstal: {where}: EncodedPixels must be non-negative 'start length' pairs.")
    return sum(numbers[1::2])


def read_areas(csv_path: Path) -> dict[str, dict[int, int]]:
    """ImageId -> {ClassId: mask area}, from `train.csv`; rows with an empty mask are ignored."""
    if not csv_path.is_file():
        raise DataError(f"Severstal: {csv_path} is missing; put Kaggle's train.csv next to train_images/.")
    areas: dict[str, dict[int, int]] = {}
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not set(COLUMNS) <= set(reader.fieldnames):
            raise DataError(f"Severstal: {csv_path} has columns {reader.fieldnames}; expected {list(COLUMNS)}.")
        for line_no, row in enumerate(reader, start=2):
            where = f"{csv_path}:{line_no}"
            if row["ClassId"] not in ("1", "2", "3", "4"):
                raise DataError(f"Severstal: {where}: ClassId must be 1-4, got {row['ClassId']!r}.")
            area = rle_area(row["EncodedPixels"] or "", where)
            if area:
                by_class = areas.setdefault(row["ImageId"], {})
                by_class[int(row["ClassId"])] = by_class.get(int(row["ClassId"]), 0) + area
    return areas


def main_class(areas: dict[int, int]) -> int:
    """The ClassId with the largest area (the smaller ClassId on a tie)."""
    return max(sorted(areas), key=lambda class_id: areas[class_id])


def load(root: Path, image_size: ImageSize = 256) -> ImageSet:
    """Every strip in `root/train_images`, labelled from `root/train.csv` (0 = defect-free, c = ClassId c)."""
    root = folder.require_dir(Path(root), "Severstal")
    image_dir = folder.require_dir(root / "train_images", "Severstal (train_images/ with the strips)")
    files, left = folder.scan(image_dir, root)
    if not files:
        raise DataError(f"Severstal: {image_dir} holds no images; put Kaggle's train_images/*.jpg there.")
    areas = read_areas(root / "train.csv")
    present = {p.name for p in files}
    missing = [
        (str(Path("train_images", name)), "listed in train.csv but the file is missing")
        for name in sorted(set(areas) - present)
    ]
    labels = [main_class(areas[p.name]) if p.name in areas else 0 for p in files]
    class_ids = {str(p.relative_to(root)): sorted(areas.get(p.name, {})) for p in files}
    return folder.from_files(
        "severstal",
        root,
        files,
        labels,
        [int(label > 0) for label in labels],
        CLASSES,
        image_size,
        meta={"class_ids": class_ids},
        left_out=missing + left,
    )
