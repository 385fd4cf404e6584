"""The lab's Severstal tiles (benchmarks/severstal_tiles.py): a tile is defective exactly where the run-length
pixels fall, and its pixels are the strip's."""

import doctest
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import severstal_tiles  # benchmarks/ is not a package: its folder on the path


def strip(root: Path, name: str, seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (256, 1600), dtype=np.uint8)
    (root / "train_images").mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert("RGB").save(root / "train_images" / f"{name}.jpg", quality=100)
    with Image.open(root / "train_images" / f"{name}.jpg") as saved:
        return np.asarray(saved.convert("L"))


def test_a_tile_is_defective_where_the_runs_fall(tmp_path):
    root, out = tmp_path / "severstal", tmp_path / "tiles"
    marked, clean = strip(root, "aaa", 0), strip(root, "bbb", 1)
    # one run of 10 pixels down column 1000 (0-based 999): tile 3 holds columns 800-1055
    (root / "train.csv").write_text(f"ImageId,ClassId,EncodedPixels\naaa.jpg,1,{999 * 256 + 101} 10\n")
    assert severstal_tiles.build(root, out) == {"good": 11, "defective": 1}
    assert sorted(path.name for path in (out / "defective").iterdir()) == ["aaa_3.png"]
    with Image.open(out / "defective" / "aaa_3.png") as tile:
        np.testing.assert_array_equal(np.asarray(tile), marked[:, 800:1056])
    with Image.open(out / "good" / "bbb_0.png") as tile:
        np.testing.assert_array_equal(np.asarray(tile), clean[:, 32:288])
    with pytest.raises(SystemExit, match="not empty"):  # a second cut never mixes with the first
        severstal_tiles.build(root, out)


def test_an_image_that_is_not_a_strip_is_refused(tmp_path):
    root = tmp_path / "severstal"
    (root / "train_images").mkdir(parents=True)
    Image.new("L", (800, 256)).save(root / "train_images" / "aaa.jpg")
    (root / "train.csv").write_text("ImageId,ClassId,EncodedPixels\n")
    with pytest.raises(SystemExit, match="not a Severstal strip"):
        severstal_tiles.build(root, tmp_path / "tiles")


def test_the_docstring_examples_hold():
    assert doctest.testmod(severstal_tiles).failed == 0
