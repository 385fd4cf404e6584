"""Notebook 07's and 08's detection rows, tiny: piles read as a user's `steelnb detect` reads them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from steelnb.data import protocols, synthetic
from steelnb.detect import detect
from steelnb.metrics import defect_scores_metrics
from steelnb.study import datasets, detection
from tests.study.test_datasets import write_dagm


def test_piles_are_read_at_the_default_reading_not_their_native_size():
    assert detection.detect_config("cpu", "ksdd").max_side == 512  # as `steelnb detect --dataset ksdd`
    assert detection.detect_config("cpu", "synthetic").max_side == 256  # as `make run`
    assert detection.detect_config("ci", "ksdd").max_side == 64  # the profile's cap wins


def test_detect_row_scores_the_whole_study_and_measures_the_test_part_only():
    data = protocols.defect_vs_normal(synthetic.load(image_size=64, n_images=40, defect_rate=0.25, seed=1))
    study = datasets.StudySet("dagm", data, "synthetic", True, "tiny synthetic", "defect")
    _, test = protocols.stratified_split(data, 0.5, seed=0)
    config = detection.detect_config("ci", "dagm", overlays=0)
    row = detection.detect_on_test_row(study, test, config, None)
    found = detect(config, data)  # the same run: every image of the study, no label
    scores = found.table.set_index("path").loc[list(test.paths), "score"]
    expected = defect_scores_metrics(test.defective.astype(int), scores.to_numpy(), found.threshold)
    assert row["auroc"] == pytest.approx(expected["auroc"]) and row["acc"] == pytest.approx(expected["acc"])
    everywhere = defect_scores_metrics(data.defective.astype(int), found.table["score"].to_numpy())
    assert row["auroc"] != pytest.approx(everywhere["auroc"])  # not the whole pile's figure
    assert f"all {len(data)} images" in row["note"] and row["method"] == "steelnb detect (label-free)"


def test_detect_row_reads_a_real_pile_from_disk_by_the_study_s_paths(tmp_path):
    split = write_dagm(tmp_path, 20, 4) / "dagm" / "Class1" / "Test"
    for i in range(20, 24):  # the defective images' outlines, which detect reads to say where the peak fell
        Image.fromarray(np.full((24, 24), 255, np.uint8)).save(split / "Label" / f"{i:04d}_label.PNG")
    study = datasets.study_set("dagm", tmp_path, "ci")
    _, test = protocols.stratified_split(study.data, 0.5, seed=0)
    row = detection.detect_on_test_row(study, test, detection.detect_config("ci", "dagm", overlays=0), tmp_path)
    assert f"all {len(study.data)} images" in row["note"] and 0 <= row["acc"] <= 1
    assert study.data.images.shape[-1] == 64 and "32 x 32 px" in row["note"]  # read from disk as detect reads it
