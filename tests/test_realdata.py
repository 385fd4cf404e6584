"""The real data sets under ../shared/datasets (or $STEELNB_DATA): skipped when they are not there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from steelnb.data import dagm, neu, protocols

pytestmark = pytest.mark.realdata


def data_set(shared_data: Path, name: str) -> Path:
    if not (shared_data / name).is_dir():
        pytest.skip(f"{shared_data / name} is not there")
    return shared_data / name


@pytest.fixture(scope="module")
def neu_set(shared_data: Path):
    return neu.load(data_set(shared_data, "neu"), image_size=200)


def test_neu_has_six_classes_of_300_grayscale_images(neu_set):
    assert neu_set.class_names == neu.CLASSES
    assert neu_set.images.shape == (1800, 1, 200, 200)
    assert np.bincount(neu_set.labels).tolist() == [300] * 6
    assert (neu_set.defective == 1).all() and neu_set.skipped == ()
    assert neu_set.meta["source_sizes"] == {"200x200": 1800}


def test_neu_split_is_1500_and_300(neu_set):
    train, test = protocols.neu_split(neu_set, seed=0)
    assert len(train) == 1500 and len(test) == 300
    assert np.bincount(train.labels).tolist() == [250] * 6 and np.bincount(test.labels).tolist() == [50] * 6
    assert set(train.paths).isdisjoint(test.paths)


def test_dagm_class1_test_split(shared_data: Path):
    ds = dagm.load(data_set(shared_data, "dagm"), image_size=64, classes=(1,), splits=("Test",))
    assert len(ds) == 575 and int(ds.defective.sum()) == 71
    assert ds.images.shape == (575, 1, 64, 64) and ds.skipped == ()
    assert len(ds.meta["masks"]) == 71
    assert all(ds.defective[ds.paths.index(path)] == 1 for path in ds.meta["masks"])
