"""KolektorSDD reader on a tiny constructed folder: images/{good,defective}/NNN, polygons/NNN.txt outlines."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steelnb.data import DataError, Fit, ksdd, load_dataset

# (x, y) fractions of the width and height: a square a quarter of the width wide, in the lower half
SQUARE = [(0.25, 0.5), (0.5, 0.5), (0.5, 0.75), (0.25, 0.75)]


def write_ksdd(root: Path, good: int = 4, defective: int = 2, height: int = 80, width: int = 40,
               outlines: dict[int, list] | None = None) -> Path:
    """root/images/good/NNN.png and root/images/defective/NNN.png (NNN running over both, as in the original)
    of tall grey strips; a defective image has its outline(s) in root/polygons/NNN.txt (default: SQUARE), drawn
    bright into the image too."""
    rng = np.random.default_rng(0)
    outlines = outlines if outlines is not None else {good + i: [SQUARE] for i in range(defective)}
    for number in range(good + defective):
        kind = "good" if number < good else "defective"
        pixels = rng.integers(90, 110, (height, width), dtype=np.uint8)
        for outline in outlines.get(number, []):
            (x0, y0), (x1, y1) = outline[0], outline[2]
            pixels[round(y0 * height):round(y1 * height), round(x0 * width):round(x1 * width)] = 250
        path = root / "images" / kind / f"{number:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        if number in outlines:
            (root / "polygons").mkdir(exist_ok=True)
            lines = ["0 " + " ".join(f"{x} {y}" for x, y in outline) for outline in outlines[number]]
            (root / "polygons" / f"{number:03d}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_ksdd_reads_good_and_defective_with_their_outlines(tmp_path):
    data = ksdd.load(write_ksdd(tmp_path / "ksdd"), image_size=Fit(64, 16))
    assert data.name == "ksdd" and data.class_names == ("good", "defective")
    assert data.images.shape == (6, 1, 64, 32)  # the 80 x 40 strips at their own aspect
    assert data.labels.tolist() == data.defective.tolist() == [0, 0, 0, 0, 1, 1]
    assert data.meta["polygons"] == {"images/defective/004.png": [SQUARE], "images/defective/005.png": [SQUARE]}


def test_ksdd_is_found_under_the_data_root_by_name(tmp_path):
    write_ksdd(tmp_path / "ksdd")
    data = load_dataset("ksdd", tmp_path, image_size=32)
    assert len(data) == 6 and data.images.shape[-2:] == (32, 32)


def test_a_defective_image_without_an_outline_file_has_none(tmp_path):
    data = ksdd.load(write_ksdd(tmp_path / "ksdd", outlines={4: [SQUARE]}), image_size=32)
    assert data.defective.tolist() == [0, 0, 0, 0, 1, 1]
    assert list(data.meta["polygons"]) == ["images/defective/004.png"]


def test_several_outlines_in_one_file_are_all_kept(tmp_path):
    other = [(0.1, 0.1), (0.2, 0.1), (0.2, 0.2)]
    data = ksdd.load(write_ksdd(tmp_path / "ksdd", outlines={4: [SQUARE, other], 5: [SQUARE]}), image_size=32)
    assert data.meta["polygons"]["images/defective/004.png"] == [SQUARE, other]


@pytest.mark.parametrize("line, message", [("0 0.1 0.2 x 0.4 0.5 0.6", "is not 'class x1 y1 x2 y2 ...'"),
                                           ("0 0.1 0.2 0.3 0.4", "needs at least 3 (x, y) pairs"),
                                           ("0 0.1 0.2 0.3 0.4 0.5 0.6 0.7", "needs at least 3 (x, y) pairs")])
def test_a_malformed_outline_is_named_by_file_and_line(tmp_path, line, message):
    root = write_ksdd(tmp_path / "ksdd")
    (root / "polygons" / "005.txt").write_text("0 0.1 0.1 0.2 0.1 0.2 0.2\n\n" + line + "\n")
    with pytest.raises(DataError, match=re.escape(f"005.txt:3 {message}")):
        ksdd.load(root, image_size=32)


def test_a_ksdd_folder_without_its_classes_is_named(tmp_path):
    root = write_ksdd(tmp_path / "ksdd")
    for path in (root / "images" / "defective").iterdir():
        path.unlink()
    (root / "images" / "defective").rmdir()
    with pytest.raises(DataError, match=r"KSDD images/defective: folder .* does not exist"):
        ksdd.load(root)
