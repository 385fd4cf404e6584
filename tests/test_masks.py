"""Where the defects are (steelnb/data/masks.py): KSDD outlines and DAGM mask files drawn as boolean masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from steelnb.data import dagm, ksdd, load_dataset
from steelnb.data.masks import defect_masks
from tests.test_ksdd import write_ksdd


def test_ksdd_outlines_are_drawn_where_they_lie(tmp_path):
    data = ksdd.load(write_ksdd(tmp_path / "ksdd"), image_size=(80, 40))
    masks = defect_masks(data)
    assert masks.shape == (6, 80, 40) and masks.dtype == bool
    assert not masks[:4].any()  # the good images
    for mask in masks[4:]:  # SQUARE: x from 0.25 to 0.5 of 40, y from 0.5 to 0.75 of 80
        assert mask[40:60, 10:20].all()
        outside = np.ones_like(mask)
        outside[39:62, 9:22] = False  # the outline's own pixels may be drawn on either side
        assert not mask[outside].any()


def test_masks_are_drawn_at_the_shape_asked_for(tmp_path):
    data = ksdd.load(write_ksdd(tmp_path / "ksdd"), image_size=(80, 40))
    small = defect_masks(data, (20, 10))
    assert small.shape == (6, 20, 10)
    assert small[4, 10:15, 3:5].all() and small[4].sum() <= 6 * 4  # about a sixteenth of the image


def test_the_outlines_match_the_defects_drawn_in_the_images(tmp_path):
    data = ksdd.load(write_ksdd(tmp_path / "ksdd"), image_size=(80, 40))
    masks = defect_masks(data)
    bright = data.images[:, 0] > 200
    assert bright.any() and (bright <= masks).all()  # every bright (defect) pixel lies in its outline


def write_dagm(root: Path) -> Path:
    """root/Class1/Test: 4 images 32 x 32, the last two defective with a mask file (a disc) each."""
    split = root / "Class1" / "Test"
    (split / "Label").mkdir(parents=True)
    rows = ["1"]
    yy, xx = np.mgrid[:32, :32]
    for i in range(4):
        Image.fromarray(np.full((32, 32), 100, np.uint8)).save(split / f"{i:04d}.PNG")
        mask = f"{i:04d}_label.PNG" if i >= 2 else "0"
        if i >= 2:
            disc = (yy - 8 - 8 * (i - 2)) ** 2 + (xx - 16) ** 2 < 25
            Image.fromarray((disc * 255).astype(np.uint8)).save(split / "Label" / mask)
        rows.append(f"{i}\t{int(i >= 2)}\t{i:04d}.PNG\t0\t{mask}")
    (split / "Label" / "Labels.txt").write_text("\n".join(rows) + "\n")
    return root


def test_dagm_masks_come_from_their_mask_files(tmp_path):
    data = dagm.load(write_dagm(tmp_path / "dagm"), image_size=32)
    masks = defect_masks(data)
    assert not masks[:2].any()
    yy, xx = np.mgrid[:32, :32]
    half = defect_masks(data, (16, 16))
    assert half.shape == (4, 16, 16) and not half[:2].any()
    for i in (2, 3):
        centre = 8 + 8 * (i - 2)
        assert (masks[i] == ((yy - centre) ** 2 + (xx - 16) ** 2 < 25)).all()
        assert half[i, centre // 2, 8] and 0.5 < 4 * half[i].sum() / masks[i].sum() < 1.5  # a quarter of the cells


def test_sets_without_defect_regions_have_no_masks(tmp_path):
    assert defect_masks(load_dataset("synthetic", image_size=32, n_images=10)) is None
    folder = tmp_path / "plain" / "good"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a.png")
    assert defect_masks(load_dataset(str(tmp_path / "plain"), image_size=8)) is None
    no_outlines = ksdd.load(write_ksdd(tmp_path / "ksdd", outlines={}), image_size=16)
    assert defect_masks(no_outlines) is None
    subset = ksdd.load(write_ksdd(tmp_path / "ksdd2"), image_size=16).subset([0, 1, 4])
    assert defect_masks(subset)[2].any() and len(defect_masks(subset)) == 3  # kept with the images they outline
