"""The runs of an experiment, tiny: repeated over seeds, per backbone, per stability repetition, baselines."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from steelnb.data import protocols, synthetic
from steelnb.metrics import evaluate
from steelnb.study import configs, datasets, runs, tables

TINY = dict(image_size=32, global_size=32, local_size=16, n_global=1, n_local=1, epochs=1, batch_size=8,
            steps_per_epoch=1, pca_dim=8, extractor_every=1, device="cpu")


@pytest.fixture(scope="module")
def tiny_study():
    data = protocols.defect_vs_normal(synthetic.load(image_size=32, n_images=24, defect_rate=0.5, seed=2))
    return datasets.StudySet("dagm", data, "synthetic", True, "tiny synthetic", "defect")


def test_repeated_runs_give_a_row_and_predictions_per_seed(tiny_study):
    train, test = protocols.stratified_split(tiny_study.data, 0.5, seed=0)
    config = configs.study_config("ci", tiny_study, **TINY)
    rows, predictions = runs.repeated_runs(config, [0, 1], train, test, {"table": "t"})
    assert rows.seed.tolist() == [0, 1] and (rows.table == "t").all()
    assert len(predictions) == 2 and all(len(p) == len(test) for p in predictions)
    assert {"truth", "cluster", "normal_distance"} <= set(predictions[0].columns)
    summary = tables.method_summary(rows, predictions, test)
    assert summary["acc"] == pytest.approx(rows.acc.mean()) and "seeds 0, 1" in summary["source"]
    for (_, row), table in zip(rows.iterrows(), predictions, strict=True):  # each row scores its own run
        assert row.acc == pytest.approx(evaluate(table.truth, table.cluster)["acc"])
    assert summary["auroc"] == pytest.approx(np.mean([tables.method_auroc(p, test) for p in predictions]))
    confusion = tables.summed_confusion(predictions, ("defect-free", "defective"))
    assert confusion.to_numpy().sum() == 2 * len(test)


def test_backbone_rows_and_stability_rows(tiny_study, monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    table = runs.backbone_rows("ci", tiny_study, ["resnet18"], **TINY)
    assert table.backbone.tolist() == ["resnet18"] and table.initialisation.tolist() == ["random"]
    assert set(tables.METRICS) <= set(table.columns) and table.n_test.iloc[0] == 12
    rows = runs.stability_rows("IV", None, "ci", repeats=2, **TINY)
    assert rows.experiment.tolist() == ["IV", "IV"] and rows.seed.tolist() == [0, 1]
    assert rows[["acc", "nmi", "mdr", "fdr"]].notna().all().all()


def test_baseline_rows_take_the_methods_backbone_and_feature_size(tiny_study, monkeypatch):
    seen = {}

    def fake_run_baselines(train, test, backbone, weights, **options):
        seen.update(options, backbone=backbone, weights=weights, sizes=(len(train), len(test)))
        return pd.DataFrame()

    monkeypatch.setattr(runs, "run_baselines", fake_run_baselines)
    config = configs.study_config("ci", tiny_study, backbone="resnet18", global_size=24, eval_size=40)
    train, test = tiny_study.data.subset(np.arange(10)), tiny_study.data.subset(np.arange(10, 14))
    runs.baseline_rows(config, train, test, 3, coreset_ratio=0.5)
    assert seen == {"input_size": 40, "seed": 3, "device": config.device, "coreset_ratio": 0.5,
                    "backbone": "resnet18", "weights": config.weights, "sizes": (10, 4)}


def test_history_with_final_and_prune_run(tmp_path):
    pd.DataFrame({"epoch": [0, 1], "nmi_prev": [np.nan, 0.5], "nmi": [0.1, 0.2], "acc": [0.3, 0.4],
                  "loss": [1.0, 0.9]}).to_csv(tmp_path / "history.csv", index=False)
    history = runs.history_with_final(tmp_path, {"train_nmi": 0.25, "train_acc": 0.45}, optimizer="adam", seed=3)
    assert history.columns[:4].tolist() == ["optimizer", "seed", "epoch", "stage"]
    assert history.epoch.tolist() == [0, 1, 2] and history.stage.tolist()[-1] == "final"
    assert history.nmi.tolist() == [0.1, 0.2, 0.25] and (history.optimizer == "adam").all()
    (tmp_path / "model.pt").write_bytes(b"x" * 10)
    (tmp_path / "checkpoint.pt").write_bytes(b"x" * 5)
    assert runs.prune_run(tmp_path, keep=("model.pt",)) == 5
    assert runs.prune_run(tmp_path) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_pipeline_rows_answer_both_protocols_without_training_on_labels(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    two = datasets.study_set("2-cluster", None, "ci")  # the synthetic stand-in: defect / defect-free
    row = runs.pipeline_row("ci", two.data, "defect")
    assert row["method"] == runs.PIPELINE and row["types"] == 0 and row["n_images"] == len(two.data)
    assert 0 <= row["acc"] <= 1 and row["mdr"] + row["fdr"] <= 1 and row["note"] == ""
    five = datasets.study_set("5-cluster", None, "ci")
    # The ci profile's tiny random detector flags little at the default cutoff: a low one gives the types work.
    row = runs.pipeline_row("ci", five.data, "classes", types=4, cutoff=0.1)
    assert row["method"].endswith("types given") and "types:" in row["weights"]  # the type stage trained
    assert row["flagged"] >= 4 and row["types"] == 4
    assert all(0 <= row[m] <= 1 for m in ("acc", "nmi", "mdr", "fdr"))


def test_pipeline_stability_rows_draw_what_the_joint_methods_rows_draw(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    rows = runs.pipeline_stability_rows("II", None, "ci", repeats=2)
    assert rows.experiment.tolist() == ["II", "II"] and rows.seed.tolist() == [0, 1]
    assert (rows.method == runs.PIPELINE).all() and rows[["acc", "nmi", "mdr", "fdr"]].notna().all().all()


def test_the_severstal_smoke_test_says_why_when_severstal_is_not_there(tmp_path):
    table, why = runs.severstal_smoke("ci", tmp_path)
    assert table is None and "no severstal/ folder" in why


def test_the_severstal_smoke_test_runs_on_the_real_sample(shared_data):
    if not (shared_data / "severstal").is_dir():
        pytest.skip("no real Severstal sample")
    table, why = runs.severstal_smoke("ci", shared_data)
    assert why == "" and table.protocol.tolist() == ["2 clusters (the decision)", "defect-free + types"]
    # 1600 x 256 read with the ci profile's max_side 64 (64 x 10), its height fitted up to detection's 32
    assert (table.n_images == 37).all() and table.image_shape.iloc[0] == "32x64"
    assert table.flagged.nunique() == 1 and table.acc.between(0, 1).all()


def test_a_2_cluster_pipeline_row_scores_the_detection_decision_as_named(monkeypatch):
    data = protocols.defect_vs_normal(synthetic.load(image_size=32, n_images=8, defect_rate=0.5, seed=0))
    truth = data.defective.astype(int)
    decision = truth.copy()
    decision[np.flatnonzero(truth == 1)[0]] = 0  # one defect missed
    decision[np.flatnonzero(truth == 0)[0]] = 1  # one false alarm

    def fake_detect_pile(config, pile):
        table = pd.DataFrame({"defective": decision})
        found = {"run": {"weights": "w", "backbone": "b"}, "label_free": {"flagged": int(decision.sum())}}
        return pile, SimpleNamespace(table=table, metrics=found)

    monkeypatch.setattr(runs, "detect_pile", fake_detect_pile)
    row = runs.pipeline_row("ci", data, "defect")
    # named, not matched: 1 = defective; 6 of 8 right, 1 missed defect and 1 false alarm (shares of all images)
    assert row["acc"] == pytest.approx(6 / 8) and row["mdr"] == pytest.approx(1 / 8)
    assert row["fdr"] == pytest.approx(1 / 8) and row["flagged"] == 4 and row["types"] == 0
    decision[:] = 1 - truth  # every answer wrong: a matched score would call this perfect, a named one 0
    assert runs.pipeline_row("ci", data, "defect")["acc"] == pytest.approx(0.0)
