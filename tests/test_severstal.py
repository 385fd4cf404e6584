"""Severstal reader on a tiny Kaggle-format fixture: strips, train.csv RLE rows, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steelnb.data import DataError, load_dataset, severstal

HEADER = "ImageId,ClassId,EncodedPixels\n"
ROWS = [
    ("multi.jpg", 1, "1 100"),  # ClassIds 1 and 3 on one strip: 3 covers more
    ("multi.jpg", 3, "500 200 2000 300"),
    ("two.jpg", 2, "10 5 40 5"),
    ("four.jpg", 4, "7 70"),
    ("ghost.jpg", 1, "1 10"),  # listed, but the file is not there
]


def write_csv(root: Path, rows=ROWS, header: str = HEADER) -> None:
    lines = [f"{image},{class_id},{rle}\n" for image, class_id, rle in rows]
    (root / "train.csv").write_text(header + "".join(lines))


@pytest.fixture
def kaggle(tmp_path: Path) -> Path:
    """root/train_images/{clean,multi,two,four}.jpg (1600 x 256, grey stored as RGB) and root/train.csv."""
    root = tmp_path / "severstal"
    (root / "train_images").mkdir(parents=True)
    ramp = np.tile(np.linspace(0, 255, 1600, dtype=np.float32), (256, 1))
    for shift, name in enumerate(("clean", "multi", "two", "four")):
        pixels = np.clip(ramp * 0.5 + 40 * shift, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).convert("RGB").save(root / "train_images" / f"{name}.jpg", quality=95)
    write_csv(root)
    return root


def test_labels_from_the_csv(kaggle: Path):
    ds = severstal.load(kaggle, image_size=64)
    assert ds.name == "severstal" and ds.class_names == ("defect-free", "1", "2", "3", "4")
    by_path = dict(zip(ds.paths, ds.labels.tolist(), strict=True))
    assert by_path == {
        "train_images/clean.jpg": 0,
        "train_images/four.jpg": 4,
        "train_images/multi.jpg": 3,
        "train_images/two.jpg": 2,
    }
    np.testing.assert_array_equal(ds.defective, (ds.labels > 0).astype(np.int8))


def test_class_ids_keep_every_class_of_a_strip(kaggle: Path):
    ds = severstal.load(kaggle, image_size=64)
    assert ds.meta["class_ids"] == {
        "train_images/clean.jpg": [],
        "train_images/four.jpg": [4],
        "train_images/multi.jpg": [1, 3],
        "train_images/two.jpg": [2],
    }


def test_strips_become_grayscale_squares(kaggle: Path):
    ds = severstal.load(kaggle, image_size=64)
    assert ds.images.shape == (4, 1, 64, 64)
    assert ds.meta["source_sizes"] == {"1600x256": 4}
    clean = ds.images[ds.paths.index("train_images/clean.jpg"), 0]
    assert clean[:, -4:].mean() > clean[:, :4].mean() + 80  # the ramp runs along the squeezed length


def test_a_row_whose_image_is_missing_is_skipped_and_listed(kaggle: Path):
    ds = severstal.load(kaggle, image_size=32)
    assert ds.skipped == (("train_images/ghost.jpg", "listed in train.csv but the file is missing"),)
    assert "train_images/ghost.jpg" not in ds.paths


def test_load_dataset_finds_severstal_under_the_data_root(kaggle: Path):
    ds = load_dataset("severstal", data_root=kaggle.parent, image_size=32)
    assert len(ds) == 4


def test_rle_area_and_main_class():
    assert severstal.rle_area("1 3 10 4", "here") == 7
    assert severstal.rle_area("", "here") == 0
    assert severstal.main_class({1: 5, 3: 9}) == 3
    assert severstal.main_class({4: 9, 2: 9}) == 2  # ties go to the smaller ClassId


def test_empty_mask_rows_are_ignored(kaggle: Path):
    write_csv(kaggle, [*ROWS, ("clean.jpg", 2, "")])
    ds = severstal.load(kaggle, image_size=32)
    assert ds.labels[ds.paths.index("train_images/clean.jpg")] == 0


def test_missing_folder_and_files_are_clear_errors(kaggle: Path, tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        severstal.load(tmp_path / "nowhere")
    (kaggle / "train.csv").unlink()
    with pytest.raises(DataError, match=r"train\.csv is missing"):
        severstal.load(kaggle)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="train_images"):
        severstal.load(empty)
    (empty / "train_images").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        severstal.load(empty)


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (ROWS, "ImageId_ClassId,EncodedPixels\n", "expected"),
        ([("two.jpg", 5, "1 2")], HEADER, "ClassId must be 1-4"),
        ([("two.jpg", 2, "1 2 3")], HEADER, r"train\.csv:2.*pairs"),
        ([("two.jpg", 2, "1 x")], HEADER, "not a list of integers"),
    ],
)
def test_malformed_csv_is_a_clear_error(kaggle: Path, rows, header, message):
    write_csv(kaggle, rows, header)
    with pytest.raises(DataError, match=message):
        severstal.load(kaggle, image_size=32)
