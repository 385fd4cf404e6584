"""One epoch timed by phase, on a tiny run."""

from steelnb.data import synthetic
from steelnb.method.bench import format_report, median_report
from tests.method.test_train import tiny_config


def test_one_epoch_is_timed_by_phase_beside_the_bare_model(tmp_path):
    data = synthetic.load(image_size=32, n_images=24, defect_rate=0.5, seed=1)
    report = median_report(tiny_config(tmp_path), data)
    assert report["images"] == 24 and report["steps"] == 2 and report["decode_s"] is None  # generated data
    assert all(report[k] > 0 for k in ("extract_s", "cluster_s", "train_s", "bare_model_s", "augment_s"))
    assert 0 < report["cluster_share"] < 1
    assert "of the bare model's speed" in format_report(report)
