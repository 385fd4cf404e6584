"""What a run reads from its data: the images of a config, the truth, the defect decision, skipped files."""

from dataclasses import replace

import numpy as np
import pytest

from steelnb.data import synthetic
from steelnb.method.config import TrainConfig
from steelnb.method.inputs import decision_absent, prepare_data, skipped_table, target_labels


@pytest.fixture(scope="module")
def tiny_data():
    return synthetic.load(image_size=32, n_images=40, defect_rate=0.5, seed=1)


def test_the_defect_decision_is_scored_only_where_both_kinds_of_image_exist(tiny_data):
    assert decision_absent(tiny_data) is None
    all_defective = synthetic.load(image_size=32, n_images=24, defect_rate=1.0, seed=1)
    assert decision_absent(all_defective).startswith("none: every image of synthetic is defective")
    n = len(tiny_data)
    unlabelled = replace(tiny_data, labels=np.full(n, -1), defective=np.full(n, -1, np.int8))
    assert decision_absent(unlabelled).startswith("not scored: synthetic has no labels")
    types_only = replace(tiny_data, defective=np.full(n, -1, np.int8))
    assert "names no defect-free class among" in decision_absent(types_only)


def test_target_labels_follow_the_configs_labels(tiny_data):
    truth, names, normal = target_labels(tiny_data, TrainConfig(labels="defect"))
    assert names == ("defect-free", "defective") and normal == 0
    assert (truth == (tiny_data.defective == 1)).all()
    truth, names, normal = target_labels(tiny_data, TrainConfig())
    assert names == tiny_data.class_names and names[normal] == "defect-free"


def test_prepare_data_caps_per_class_and_skipped_table_lists_nothing_for_generated_data():
    data = prepare_data(TrainConfig(dataset="synthetic", image_size=32, max_per_class=2))
    assert np.bincount(data.labels).max() <= 2
    assert list(skipped_table(data).columns) == ["path", "reason"] and skipped_table(data).empty
