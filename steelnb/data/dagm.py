"""DAGM 2007: `ClassN/{Train,Test}/NNNN.PNG` with `Label/Labels.txt` giving the defect flag."""

from __future__ import annotations

from pathlib import Path

from . import folder
from .decode import ImageSize
from .errors import DataError
from .imageset import ImageSet

CLASSES = ("defect-free", "defective")


def read_labels(split_dir: Path) -> dict[str, tuple[int, str | None]]:
    """Image file name -> (defective 0/1, weak-mask file name or None), from `Label/Labels.txt`."""
    labels_file = split_dir / "Label" / "Labels.txt"
    if not labels_file.is_file():
        raise DataError(f"DAGM: {labels_file} is missing; each split needs Label/Labels.txt.")
    table = {}
    for line_no, line in enumerate(labels_file.read_text().splitlines()[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 5 or fields[1] not in ("0", "1"):
            raise DataError(f"DAGM: {labels_file}:{line_no} is not 'id flag image 0 mask': {line!r}.")
        table[fields[2]] = (int(fields[1]), fields[4] if fields[4] != "0" else None)
    return table


def load(
    root: Path,
    image_size: ImageSize = 256,
    classes: tuple[int, ...] | None = None,
    splits: tuple[str, ...] = ("Train", "Test"),
) -> ImageSet:
    """Every image of the chosen DAGM classes and splits present under `root`.

    Labels are 0 defect-free / 1 defective; `meta["masks"]` maps image path -> weak-mask path.
    """
    root = folder.require_dir(Path(root), "DAGM")
    class_dirs = sorted(d for d in root.glob("Class*") if d.is_dir())
    if classes is not None:
        class_dirs = [d for d in class_dirs if int(d.name.removeprefix("Class")) in classes]
    split_dirs = [d / s for d in class_dirs for s in splits if (d / s).is_dir()]
    if not split_dirs:
        raise DataError(f"DAGM: no ClassN/{{Train,Test}} folders under {root}.")
    files, flags, masks, missing = [], [], {}, []
    for split_dir in split_dirs:
        table = read_labels(split_dir)
        found, split_left = folder.scan(split_dir, root)
        missing += split_left
        for path in found:
            if path.name not in table:
                raise DataError(f"DAGM: {path} has no row in {split_dir / 'Label' / 'Labels.txt'}.")
            flag, mask = table[path.name]
            files.append(path)
            flags.append(flag)
            if mask:
                masks[str(path.relative_to(root))] = str((split_dir / "Label" / mask).relative_to(root))
        present = {p.name for p in files if p.parent == split_dir}
        missing += [
            (str((split_dir / name).relative_to(root)), "listed in Label/Labels.txt but the file is missing")
            for name in sorted(set(table) - present)
        ]
    return folder.from_files(
        "dagm", root, files, flags, flags, CLASSES, image_size, meta={"masks": masks}, left_out=missing
    )
