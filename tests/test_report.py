"""Notebook plumbing (results folder, data choice, captions) and the results README."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from steelnb import experiments, report
from steelnb.data import DataError
from steelnb.data.neu import CLASSES as NEU_CLASSES


def test_repo_root_is_found_from_a_subfolder(tmp_path):
    root = report.repo_root()
    assert (root / "pyproject.toml").is_file() and (root / "steelnb").is_dir()
    assert report.repo_root(root / "notebooks") == root
    assert report.repo_root(tmp_path) == root  # outside a checkout: the installed package's checkout


def test_results_path_defaults_under_the_repository(tmp_path):
    assert report.results_path(tmp_path / "x", "ci", "01_a") == tmp_path / "x"
    assert (tmp_path / "x").is_dir()
    default = report.results_path(None, "ci", "zz_test_results_path")
    try:
        assert default == report.repo_root() / "results" / "ci" / "zz_test_results_path"
    finally:
        default.rmdir()


@pytest.fixture
def no_real_data(tmp_path, monkeypatch):
    """$STEELNB_DATA holds nothing."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("STEELNB_DATA", str(tmp_path / "empty"))


def test_missing_data_falls_back_to_synthetic_and_says_so(no_real_data):
    with pytest.warns(UserWarning, match="synthetic"):
        data, info = report.experiment_data("neu", image_size=32, max_per_class=3)
    assert data.name == "synthetic" and len(data) == 3 * data.n_classes
    assert info["stand_in"] and "standing in for NEU" in info["description"]
    assert "neu was not found" in info["note"] and "$STEELNB_DATA" in info["note"]


def test_a_data_root_without_the_set_gets_the_stand_in_but_a_broken_set_is_an_error(tmp_path):
    with pytest.warns(UserWarning, match=f"no neu/ folder under {tmp_path}"):
        data, info = report.experiment_data("neu", data_root=tmp_path, image_size=32, max_per_class=2)
    assert data.name == "synthetic" and info["stand_in"]
    (tmp_path / "neu").mkdir()  # there, but holds no NEU class folder
    with pytest.raises(DataError):
        report.experiment_data("neu", data_root=tmp_path, image_size=32)
    with pytest.raises(DataError):  # and so is the set's own folder given as the root
        report.experiment_data("neu", data_root=tmp_path / "neu", image_size=32)
    with pytest.raises(DataError, match="is not a folder"):
        report.experiment_data("neu", data_root=tmp_path / "mistyped", image_size=32)


def fake_neu(root, per_class=2):
    for index, name in enumerate(NEU_CLASSES):
        (root / "neu" / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((40, 40), 20 * index + i, np.uint8)
            Image.fromarray(pixels).save(root / "neu" / name / f"{name}_{i}.png")


def test_real_data_is_found_via_the_environment(tmp_path, monkeypatch):
    fake_neu(tmp_path, per_class=3)
    monkeypatch.setenv("STEELNB_DATA", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, info = report.experiment_data("neu", image_size=32, max_per_class=2)
    assert data.n_classes == 6 and len(data) == 12 and data.images.shape[-1] == 32
    assert info["dataset"] == "neu" and not info["stand_in"] and info["found_via"] == "$STEELNB_DATA"
    assert "the paper's NEU" in info["description"] and "at most 2 per class" in info["description"]


def test_sweep_config_uses_the_ablation_backbone_and_k_of_the_data(no_real_data):
    with pytest.warns(UserWarning):
        data, _ = report.experiment_data("neu", image_size=32, max_per_class=2)
    config = report.sweep_config("ci", data, clusterer="birch")
    assert config.backbone == "resnet18" and config.n_clusters == 7 and config.clusterer == "birch"
    assert config.epochs == 1 and config.steps_per_epoch == 2  # the ci profile's sweep settings
    assert report.sweep_config("cpu", data).weights == "offline"  # the cpu ablation backbone is Lite0
    with pytest.warns(UserWarning, match="offline weights exist only for efficientnet_lite0"):
        assert report.sweep_config("cpu", data, backbone="resnet18").weights == "random"


def test_limit_threads_only_caps_when_asked_or_for_ci():
    before = torch.get_num_threads()
    try:
        assert report.limit_threads(None, "cpu") is None and torch.get_num_threads() == before
        assert report.limit_threads(None, "ci") == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            report.limit_threads(0, "ci")
    finally:
        torch.set_num_threads(before)


def test_caption_names_data_profile_seeds_and_weights():
    info = {"description": "dagm (DAGM class 1 standing in for Severstal; 575 images)"}
    text = report.caption("Table", info, "cpu", [0, 1], ["random"], backbone="resnet18")
    assert "standing in for Severstal" in text and "profile cpu" in text and "seeds 0, 1" in text
    assert "resnet18, random weights (not pretrained)" in text
    assert "pretrained weights (timm:x)" in report.caption("T", info, "ci", [3], "timm:x")


@pytest.fixture
def results(tmp_path):
    """A results folder: one finished experiment with a paper comparison, one without a record."""
    done = tmp_path / "01_clusterers"
    table = pd.DataFrame({"method": ["kmeans", "minibatch"], "acc": [0.5, 0.6]})
    experiments.write_table(table, done, "clusterers", caption="NMI/ACC per clusterer")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, _ = plt.subplots()
    experiments.write_figure(figure, done, "bars")
    plt.close(figure)
    experiments.write_record(done, "ci", {"methods": ["kmeans"]}, 12.34, title="Clusterer ablation",
                             data={"description": "neu (the paper's NEU; 48 images)"}, seeds=[0, 1],
                             weights=["random"], paper={"experiment": "neu", "figure": "Fig. 6",
                                                        "setting": "minibatch", "measured": {"acc": 0.6}})
    (tmp_path / "02_failed").mkdir()
    (tmp_path / "02_failed" / "partial.md").write_text("| a |\n|---|\n| 1 |\n")
    (tmp_path / "executed").mkdir()
    (tmp_path / "executed" / "log.md").write_text("should not appear")
    return tmp_path


def test_readme_gathers_tables_records_and_the_paper_gap(results):
    text = report.write_results_readme(results, "ci").read_text()
    assert text.startswith("# Results of the `ci` profile")
    assert "## 01_clusterers: Clusterer ablation" in text
    assert "NMI/ACC per clusterer" in text and "| minibatch |" in text
    assert "![bars](01_clusterers/bars.png)" in text
    assert "neu (the paper's NEU; 48 images)" in text and "| 0, 1 |" in text and "12.3 s" in text
    assert "random weights (not pretrained)" in text
    assert "| acc | 0.8753 | 0.6000 | -0.2753 |" in text  # paper, measured, gap
    assert "Paper: Fig. 6." in text
    assert "## 02_failed" in text and "did not finish" in text and "| 1 |" in text
    assert "should not appear" not in text
    assert text.index("01_clusterers") < text.index("02_failed")


def test_readme_of_a_record_without_comparison_or_with_unknown_experiment(tmp_path):
    experiments.write_record(tmp_path / "a", "ci", {}, 1.0)
    experiments.write_record(tmp_path / "b", "ci", {}, 1.0, paper={"experiment": "synthetic",
                                                                   "note": "synthetic data: nothing to compare"})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "run.json").write_text("{not json")
    text = report.write_results_readme(tmp_path, "ci").read_text()
    assert "none recorded" in text and "synthetic data: nothing to compare" in text
    assert "not valid JSON" in text
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert report.record_summary(record)["seeds"] == "0, 1"  # from the profile's settings


def test_readme_of_an_empty_or_missing_folder(tmp_path):
    assert "No experiment results yet" in report.write_results_readme(tmp_path, "cpu").read_text()
    with pytest.raises(FileNotFoundError):
        report.write_results_readme(tmp_path / "missing", "cpu")


def test_sweep_table_means_stds_time_and_order():
    rows = pd.DataFrame({"method": ["b", "b", "a", "a"], "train_nmi": [0.5, 0.7, 0.2, 0.2],
                         "train_acc": [0.4, 0.6, 0.3, 0.5], "train_s": [1.0, 3.0, 2.0, 2.0]})
    table = report.sweep_table(rows, "method", order=["a", "b", "missing"])
    assert table.columns.tolist() == ["method", "NMI", "ACC", "s_per_run", "runs", "nmi_mean", "acc_mean"]
    assert table.method.tolist() == ["a", "b"]
    assert table.NMI.tolist() == ["0.2000 ± 0.0000", "0.6000 ± 0.1414"]
    assert table.s_per_run.tolist() == [2.0, 2.0] and table.runs.tolist() == [2, 2]
    assert table.acc_mean.tolist() == pytest.approx([0.4, 0.5])
    assert report.sweep_table(rows, "method").method.tolist() == ["b", "a"]  # first seen


def test_paper_entry_compares_real_data_only():
    real = report.paper_entry({"dataset": "neu"}, "Fig. 6", "minibatch", {"acc": 0.5})
    assert real["experiment"] == "neu" and real["measured"] == {"acc": 0.5} and real["note"] is None
    synthetic = report.paper_entry({"dataset": "synthetic"}, "Fig. 6", "minibatch", {"acc": 0.5})
    assert synthetic["experiment"] is None and "no gap" in synthetic["note"]


def test_history_with_final_and_prune_run(tmp_path):
    pd.DataFrame({"epoch": [0, 1], "nmi_prev": [np.nan, 0.5], "nmi": [0.1, 0.2], "acc": [0.3, 0.4],
                  "loss": [1.0, 0.9]}).to_csv(tmp_path / "history.csv", index=False)
    history = report.history_with_final(tmp_path, {"train_nmi": 0.25, "train_acc": 0.45}, optimizer="adam", seed=3)
    assert history.columns[:4].tolist() == ["optimizer", "seed", "epoch", "stage"]
    assert history.epoch.tolist() == [0, 1, 2] and history.stage.tolist()[-1] == "final"
    assert history.nmi.tolist() == [0.1, 0.2, 0.25] and (history.optimizer == "adam").all()
    (tmp_path / "model.pt").write_bytes(b"x" * 10)
    (tmp_path / "checkpoint.pt").write_bytes(b"x" * 5)
    assert report.prune_run(tmp_path, keep=("model.pt",)) == 5
    assert report.prune_run(tmp_path) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_no_gap_is_computed_for_stand_in_data(tmp_path):
    experiments.write_record(tmp_path / "x", "ci", {}, 1.0,
                             data={"description": "dagm", "stand_in": {"2-cluster": True}},
                             paper={"experiment": "severstal-2", "figure": "Table 2", "measured": {"acc": 0.5}})
    experiments.write_record(tmp_path / "y", "ci", {}, 1.0,
                             paper={"experiment": None, "figure": "Fig. 9", "note": "not recorded"})
    text = report.write_results_readme(tmp_path, "ci").read_text()
    assert "| acc | 0.9004 | 0.5000 | none: different data |" in text
    assert "| nmi | 0.7661 | not measured | none: different data |" in text
    assert "Paper: Fig. 9; its values are not recorded" in text
