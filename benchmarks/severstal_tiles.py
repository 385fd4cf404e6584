"""A fourth real pile for the detection lab, cut from the shared Severstal sample (never committed): each 1600 x 256
strip's middle 1536 columns cut into six 256 x 256 tiles, a tile defective where train.csv's run-length pixels
touch it.

    python benchmarks/severstal_tiles.py --data-root ../shared/datasets --out .cache/piles/severstal_tiles

Writes `good/` and `defective/` (lossless PNG, grey) into a new or empty folder. From the 37 strips: 163 defect-free
tiles and 59 defective (27 % of the pile), defects of every size from a few pixels (class 1's pits) to most of a
tile (class 3). The competition's labels are known to miss defects, so a few `good/` tiles may hold one. Why: the
sample's strips are 65 % defective (the minority assumption fails: a smoke test only); its tiles make a pile where
defects are a minority, with defects of another steel and another camera than KSDD's and DAGM's.

>>> runs_mask("3 2 300 1", (4, 2)).astype(int).tolist()  # pixels counted down each column from 1
[[0, 0], [0, 0], [1, 0], [1, 0]]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SHAPE = (256, 1600)  # every Severstal strip, height x width
TILE = 256
MARGIN = 32  # (1600 - 6 x 256) / 2 columns left out on each side


def runs_mask(encoded: str, shape: tuple[int, int]) -> np.ndarray:
    """The boolean (height, width) mask of Severstal's run-length pixels ("start length ...", counted from 1 down
    each column); runs past the image end are cut."""
    height, width = shape
    flat = np.zeros(height * width, bool)
    numbers = [int(value) for value in encoded.split()]
    for start, length in zip(numbers[0::2], numbers[1::2], strict=True):
        flat[start - 1:start - 1 + length] = True
    return flat.reshape(width, height).T


def build(root: Path, out: Path) -> dict[str, int]:
    """The pile under `out` (good/, defective/; a new or empty folder: a rerun never mixes two cuts) from the
    Severstal sample at `root`; tiles per folder."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: remove it, or give another --out")
    rows = pd.read_csv(root / "train.csv")
    counts = {"good": 0, "defective": 0}
    for path in sorted((root / "train_images").glob("*.jpg")):
        with Image.open(path) as opened:
            image = np.asarray(opened.convert("L"))
        if image.shape != SHAPE:
            raise SystemExit(f"{path}: {image.shape[1]} x {image.shape[0]} px, not a Severstal strip's 1600 x 256")
        mask = np.zeros(image.shape, bool)
        for encoded in rows.loc[rows.ImageId == path.name, "EncodedPixels"].dropna():
            mask |= runs_mask(encoded, image.shape)
        for tile in range((SHAPE[1] - 2 * MARGIN) // TILE):
            columns = slice(MARGIN + tile * TILE, MARGIN + (tile + 1) * TILE)
            folder = "defective" if mask[:, columns].any() else "good"
            (out / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[:, columns]).save(out / folder / f"{path.stem}_{tile}.png")
            counts[folder] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="the folder holding severstal/")
    parser.add_argument("--out", default=".cache/piles/severstal_tiles")
    args = parser.parse_args()
    print(build(Path(args.data_root) / "severstal", Path(args.out)))


if __name__ == "__main__":
    main()
