"""The experiments' tables: mean ± std, confusion, per-class accuracy, the paper beside the measured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steelnb.data import synthetic
from steelnb.study import datasets, paper, tables


def prediction(truth, cluster) -> pd.DataFrame:
    return pd.DataFrame({"truth": truth, "cluster": cluster})


def test_sweep_table_means_stds_time_and_order():
    rows = pd.DataFrame({"method": ["b", "b", "a", "a"], "train_nmi": [0.5, 0.7, 0.2, 0.2],
                         "train_acc": [0.4, 0.6, 0.3, 0.5], "train_s": [1.0, 3.0, 2.0, 2.0]})
    table = tables.sweep_table(rows, "method", order=["a", "b", "missing"])
    assert table.columns.tolist() == ["method", "NMI", "ACC", "s_per_run", "runs", "nmi_mean", "acc_mean"]
    assert table.method.tolist() == ["a", "b"]
    assert table.NMI.tolist() == ["0.2000 ± 0.0000", "0.6000 ± 0.1414"]
    assert table.s_per_run.tolist() == [2.0, 2.0] and table.runs.tolist() == [2, 2]
    assert table.acc_mean.tolist() == pytest.approx([0.4, 0.5])
    assert tables.sweep_table(rows, "method").method.tolist() == ["b", "a"]  # first seen


def test_summed_confusion_matches_clusters_per_run_and_adds():
    names = ("a", "b", "c")
    runs = [prediction([0, 0, 1, 1, 2, 2], [5, 5, 7, 7, 9, 9]),  # perfect, other cluster ids
            prediction([0, 0, 1, 1, 2, 2], [1, 1, 0, 2, 2, 2])]  # one b sent to c
    table = tables.summed_confusion(runs, names)
    assert table.loc["a", "a"] == 4 and table.loc["b", "b"] == 3 and table.loc["b", "c"] == 1
    assert table.to_numpy().sum() == 12
    per_class = tables.per_class_table(table, runs)
    assert per_class["accuracy"].tolist() == [1.0, 0.75, 1.0]
    assert per_class["run_mean"].tolist() == [1.0, 0.75, 1.0]
    assert per_class.loc[1, "run_std"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    with pytest.raises(ValueError, match="no runs"):
        tables.summed_confusion([], names)


def test_paper_comparison_labels_a_stand_in_as_different_data(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    measured = {"acc": 0.8, "nmi": 0.5, "mdr": 0.1, "fdr": 0.1}
    table = tables.paper_comparison(measured, "severstal-2", datasets.study_set("2-cluster", None, "ci"))
    assert set(table.metric) == set(paper.REPORTED["severstal-2"])
    row = table.set_index("metric").loc["acc"]
    assert row["gap"] == pytest.approx(0.8 - 0.9004) and "DIFFERENT data set" in row["data"]
    assert "same data set" in tables.paper_comparison(measured, "severstal-2").data.iloc[0]


def test_all_normal_row_is_the_defect_free_share():
    test = synthetic.load(image_size=32, n_images=25, defect_rate=0.2, seed=0)
    row = tables.all_normal_row(test)
    assert row["acc"] == pytest.approx(0.8) and row["mdr"] == pytest.approx(0.2) and row["fdr"] == 0.0
    assert row["eacc"] == pytest.approx(0.8) and row["auroc"] == 0.5


def test_comparison_table_holds_method_baselines_trivial_and_paper(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    study = datasets.study_set("dagm", None, "ci")
    method = {"method": "joint (this repo)", "features": "resnet18", "acc": 0.9, "auroc": 0.7, "weights": "w",
              "source": "measured"}
    baselines = pd.DataFrame([{"method": "patchcore", "features": "f", "weights": "random", "acc": 0.8,
                               "note": ""}])
    table = tables.comparison_table(method, baselines, study.data, "dagm", study)
    assert table.method.tolist() == ["joint (this repo)", "patchcore", "everything defect-free", "Bai et al. 2024"]
    paper_row = table.iloc[-1]
    assert paper_row.acc == paper.REPORTED["dagm"]["acc"] and "reported (paper)" in paper_row.source
    assert "other images" in paper_row.source
    assert table.iloc[2].acc == pytest.approx(57 / 65)


def test_initialisation_says_pretrained_or_random():
    assert tables.initialisation("random") == "random"
    assert tables.initialisation("trained from random") == "random"
    assert tables.initialisation("offline:efficientnet-lite0") == "pretrained (offline:efficientnet-lite0)"


def test_neu_acc_table_sets_the_run_beside_the_paper_and_the_bar(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    study = datasets.study_set("neu", None, "ci")
    table = tables.neu_acc_table(pd.DataFrame({"acc": [0.5, 0.7], "nmi": [0.4, 0.6]}), study)
    assert table.acc.tolist() == pytest.approx([0.6, 0.8753, 0.889])
    assert table.acc_std.iloc[0] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert "DIFFERENT data" in table.source.iloc[1] and "reported (paper)" in table.source.iloc[1]
    record = datasets.data_record({"neu": study})
    assert record["stand_in"] == {"neu": True} and "stand-in for NEU" in record["description"]


@pytest.fixture
def sweep_rows():
    return pd.DataFrame({"method": ["b", "b", "a", "a", "c"], "seed": [0, 1, 0, 1, 0],
                         "nmi": [0.5, 0.7, 0.2, 0.2, 0.9], "acc": [0.4, 0.6, 0.3, 0.5, 1.0]})


def test_summarise_keeps_first_seen_order_and_counts_runs(sweep_rows):
    table = tables.summarise(sweep_rows, "method", ["nmi", "acc"])
    assert table.method.tolist() == ["b", "a", "c"]
    assert table.nmi_mean.tolist() == pytest.approx([0.6, 0.2, 0.9])
    assert table.nmi_std.tolist() == pytest.approx([np.std([0.5, 0.7], ddof=1), 0.0, 0.0])
    assert table.runs.tolist() == [2, 2, 1]
    with pytest.raises(ValueError, match="lack the columns"):
        tables.summarise(sweep_rows, "method", ["ari"])


def test_mean_std_shows_the_summary_as_text_beside_the_means(sweep_rows):
    table = tables.mean_std(sweep_rows, ["method", "seed"], ["acc"])
    assert table.columns.tolist() == ["method", "seed", "acc_mean", "acc"] and len(table) == 5
    table = tables.mean_std(sweep_rows, "method", ["nmi", "acc"])
    assert table.columns.tolist() == ["method", "nmi_mean", "acc_mean", "nmi", "acc"]
    assert table.method.tolist() == ["b", "a", "c"] and table.nmi.tolist()[1:] == ["0.2000 ± 0.0000", "0.9000 ± 0.0000"]
