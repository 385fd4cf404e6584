"""The shared real piles load for detection at their own aspect (skipped when ../shared/datasets is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from steelnb.data import Fit, load_dataset
from steelnb.data.masks import defect_masks
from steelnb.detect import DetectConfig, detect
from tests.detect.conftest import FAST

pytestmark = pytest.mark.realdata


def data_root(shared_data: Path, name: str) -> Path:
    if not (shared_data / name).is_dir():
        pytest.skip(f"{shared_data / name} is not there")
    return shared_data


@pytest.mark.slow
def test_ksdd_loads_as_tall_strips_with_an_outline_for_every_defect(shared_data):
    data = load_dataset("ksdd", data_root(shared_data, "ksdd"), Fit(256))
    # 500 wide, about 1,255 tall: 256 tall, 500 x 256 / 1,255 = 102 wide -> 96 (a multiple of 32)
    assert data.images.shape == (399, 1, 256, 96) and data.skipped == ()
    assert int(data.defective.sum()) == 52 and data.class_names == ("good", "defective")
    masks = defect_masks(data, (64, 24))
    outlined = masks.any(axis=(1, 2))
    assert outlined.sum() == 52 and (outlined == (data.defective == 1)).all()
    assert masks[outlined].mean() < 0.1  # cracks: a small part of their strips


def test_the_severstal_sample_loads_at_its_strip_aspect(shared_data):
    data = load_dataset("severstal", data_root(shared_data, "severstal"), Fit(512))
    # 1600 x 256 strips: 512 wide, 256 x 512 / 1600 = 82 tall -> 96 (the nearest multiple of 32)
    assert data.images.shape == (37, 1, 96, 512) and data.skipped == ()
    assert data.meta["source_sizes"] == {"1600x256": 37}
    assert int(data.defective.sum()) == 24 and int((data.defective == 0).sum()) == 13


def test_detect_scores_the_severstal_sample(shared_data):
    """The Severstal sample's smoke test: every strip scored and peaked, the numbers a labelled pile gets."""
    config = DetectConfig(dataset="severstal", data_root=str(data_root(shared_data, "severstal")), max_side=256,
                          method="self", **FAST)
    result = detect(config)
    assert result.maps.shape == (37, 4, 32) and result.metrics["image_shape"] == [1, 32, 256]
    assert sorted(result.table["rank"]) == list(range(1, 38)) and np.isfinite(result.table["score"]).all()
    assert result.table[["peak_y", "peak_x"]].stack().between(0, 1).all()
    assert {"auroc", "ap", "calibrated", "everything_defect_free"} <= set(result.metrics)
    assert result.metrics["everything_defect_free"]["acc"] == pytest.approx(13 / 37)
