"""The study notebooks' helpers: results paths, stand-in data choice and sizes, runs and their summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from threadpoolctl import threadpool_limits

from steelnb import paper, studies, studysets
from steelnb.data import ImageSet, protocols, synthetic
from steelnb.experiments import write_figure
from steelnb.metrics import evaluate
from steelnb.profiles import get_profile

REPO = Path(__file__).resolve().parents[1]
TINY = dict(image_size=32, global_size=32, local_size=16, n_global=1, n_local=1, epochs=1, batch_size=8,
            steps_per_epoch=1, pca_dim=8, extractor_every=1, device="cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny runs on shared cores: one torch / BLAS thread (several spin for seconds), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


# -- fixtures: tiny DAGM and Severstal folders ------------------------------------------------------
def write_dagm(root: Path, n_normal: int = 20, n_defective: int = 4) -> Path:
    split = root / "dagm" / "Class1" / "Test"
    (split / "Label").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["1"]
    for i in range(n_normal + n_defective):
        name = f"{i:04d}.PNG"
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(split / name)
        flag = int(i >= n_normal)
        rows.append(f"{i}\t{flag}\t{name}\t0\t{f'{i:04d}_label.PNG' if flag else '0'}")
    (split / "Label" / "Labels.txt").write_text("\n".join(rows) + "\n")
    return root


def write_severstal(root: Path, n_normal: int = 48, n_per_class: int = 40) -> Path:
    folder = root / "severstal"
    (folder / "train_images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["ImageId,ClassId,EncodedPixels"]
    for i in range(n_normal + 4 * n_per_class):
        name = f"{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 256, (16, 100), dtype=np.uint8)).save(folder / "train_images" / name)
        if i >= n_normal:
            lines.append(f"{name},{1 + (i - n_normal) // n_per_class},1 10")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def counts(ds: ImageSet) -> dict[str, int]:
    return {c: int((ds.labels == i).sum()) for i, c in enumerate(ds.class_names)}


# -- sizes ------------------------------------------------------------------------------------------
def test_scale_caps_the_reference_class_at_the_profiles_cap():
    assert studysets.scale("ci", 50) == pytest.approx(8 / 50)  # ci: max_per_class 8
    assert studysets.scale("cpu", 50) == 1.0  # cpu: max_per_class 60 >= 50
    assert studysets.scale("paper", 50) == 1.0  # paper: no cap
    assert studysets.scaled(300, 0.16) == 48 and studysets.scaled(3, 0.01) == 1 and studysets.scaled(3, 0.01, 2) == 2


def test_draw_counts_takes_what_exists_and_says_so():
    ds = synthetic.load(image_size=32, n_images=40, defect_rate=0.3, seed=0)
    drawn = studysets.draw_counts(ds, {0: 5, 1: 50}, seed=1)
    assert counts(drawn)["defect-free"] == 5 and counts(drawn)["scratches"] == 2
    assert drawn.meta["drawn"]["scratches"] == {"wanted": 50, "drawn": 2}
    again = studysets.draw_counts(ds, {0: 5, 1: 50}, seed=1)
    assert drawn.paths == again.paths and list(drawn.paths) == sorted(drawn.paths)


def test_synthetic_draw_keeps_only_the_listed_classes_in_that_order():
    data = studysets.synthetic_draw({"defect-free": 6, "patches": 3, "crazing": 2}, 32, 0, "x")
    assert data.class_names == ("defect-free", "patches", "crazing")
    assert counts(data) == {"defect-free": 6, "patches": 3, "crazing": 2}
    assert data.defective.tolist() == (data.labels > 0).astype(int).tolist()


# -- which data -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", studysets.KINDS)
def test_without_data_every_kind_falls_back_to_synthetic_and_says_so(kind, monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    study = studysets.study_set(kind, None, "ci")
    assert study.source == "synthetic" and study.stand_in
    assert "synthetic stand-in" in study.note and "not real images" in study.note
    assert "stands in for" in study.note and "no data root given" in study.note
    assert "stand-in for" in study.short
    expected_k = {"5-cluster": 5, "neu": 6}.get(kind, 2)
    assert study.n_clusters == expected_k == study.data.n_classes


def test_stand_in_sizes_follow_the_paper_proportions(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    sets = studysets.stand_in_sets(None, "ci", kinds=("5-cluster", "I", "V", "neu", "dagm"))
    assert counts(sets["5-cluster"].data) == {"defect-free": 48, "scratches": 8, "pitted_surface": 8,
                                              "inclusion": 8, "patches": 8}
    assert counts(sets["I"].data) == {"defect-free": 48, "defective": 32}
    assert counts(sets["V"].data) == {"defect-free": 48, "defective": 8}
    assert counts(sets["dagm"].data) == {"defect-free": 57, "defective": 8}  # DAGM class 1's 12.3 %
    assert set(counts(sets["neu"].data).values()) == {10}  # 8 train + 2 test per class
    train, test = studysets.neu_split(sets["neu"], "ci")
    assert len(train) == 48 and len(test) == 12


def test_draws_differ_by_seed_and_repeat_for_a_seed(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    a, b = studysets.study_set("II", None, "ci", seed=0), studysets.study_set("II", None, "ci", seed=1)
    assert not np.array_equal(a.data.images, b.data.images)
    assert np.array_equal(a.data.images, studysets.study_set("II", None, "ci", seed=0).data.images)


def test_dagm_is_used_where_it_is_and_stands_in_for_severstal(tmp_path):
    root = write_dagm(tmp_path)
    dagm = studysets.study_set("dagm", root, "ci")
    assert dagm.source == "dagm" and not dagm.stand_in and counts(dagm.data) == {"defect-free": 20, "defective": 4}
    two = studysets.study_set("2-cluster", root, "ci")
    assert two.source == "dagm" and two.stand_in and two.labels == "defect"
    assert "stands in for Severstal 2-cluster" in two.note and f"no severstal/ folder under {root}" in two.note
    five = studysets.study_set("5-cluster", root, "ci")
    assert five.source == "synthetic" and five.stand_in
    v = studysets.study_set("V", root, "ci")  # wants 48 + 8, DAGM here has 20 + 4
    assert counts(v.data) == {"defect-free": 20, "defective": 4} and "fewer than wanted" in v.note
    assert studysets.study_set("neu", root, "ci").source == "synthetic"


def test_severstal_is_preferred_where_it_is(tmp_path):
    root = write_dagm(write_severstal(tmp_path))
    two = studysets.study_set("2-cluster", root, "ci")
    assert two.source == "severstal" and not two.stand_in
    assert counts(two.data) == {"defect-free": 48, "defective": 32}
    five = studysets.study_set("5-cluster", root, "ci")
    assert five.labels == "classes" and counts(five.data) == {"defect-free": 48, "1": 8, "2": 8, "3": 8, "4": 8}
    three = studysets.study_set("III", root, "ci")
    assert counts(three.data) == {"defect-free": 48, "defective": 32}
    assert studysets.study_set("V", root, "ci").source == "severstal"


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        studysets.study_set("VI")


# -- configs ----------------------------------------------------------------------------------------
def test_backbone_weights_follow_the_profile():
    assert get_profile("cpu").weights_for("efficientnet_lite0") == "offline"
    assert get_profile("cpu").weights_for("resnet18") == "random"  # no offline weights for it
    assert get_profile("paper").weights_for("resnet50") == "timm"
    assert get_profile("ci").weights_for("resnet18") == "random"


def test_study_config_scores_against_the_study_labels(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    five = studysets.study_set("5-cluster", None, "ci")
    config = studies.study_config("ci", five, seed=3)
    # pseudo-labels from the ci profile's K (the default 7, at least the 5 classes); the answer in 5
    assert (config.labels, config.n_clusters, config.eval_clusters, config.seed) == ("classes", 7, 5, 3)
    assert config.max_per_class is None  # the study set is already sized
    sweep = studies.study_config("cpu", studysets.study_set("I", None, "ci"), sweep=True, backbone="resnet18")
    assert (sweep.labels, sweep.n_clusters, sweep.eval_clusters, sweep.epochs, sweep.weights) == (
        "defect", 12, 2, 3, "random")  # the cpu sweep over-clusters into 12


# -- summaries --------------------------------------------------------------------------------------
def prediction(truth, cluster) -> pd.DataFrame:
    return pd.DataFrame({"truth": truth, "cluster": cluster})


def test_summed_confusion_matches_clusters_per_run_and_adds():
    names = ("a", "b", "c")
    runs = [prediction([0, 0, 1, 1, 2, 2], [5, 5, 7, 7, 9, 9]),  # perfect, other cluster ids
            prediction([0, 0, 1, 1, 2, 2], [1, 1, 0, 2, 2, 2])]  # one b sent to c
    table = studies.summed_confusion(runs, names)
    assert table.loc["a", "a"] == 4 and table.loc["b", "b"] == 3 and table.loc["b", "c"] == 1
    assert table.to_numpy().sum() == 12
    per_class = studies.per_class_table(table, runs)
    assert per_class["accuracy"].tolist() == [1.0, 0.75, 1.0]
    assert per_class["run_mean"].tolist() == [1.0, 0.75, 1.0]
    assert per_class.loc[1, "run_std"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    with pytest.raises(ValueError, match="no runs"):
        studies.summed_confusion([], names)


def test_paper_comparison_labels_a_stand_in_as_different_data(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    measured = {"acc": 0.8, "nmi": 0.5, "mdr": 0.1, "fdr": 0.1}
    table = studies.paper_comparison(measured, "severstal-2", studysets.study_set("2-cluster", None, "ci"))
    assert set(table.metric) == set(paper.REPORTED["severstal-2"])
    row = table.set_index("metric").loc["acc"]
    assert row["gap"] == pytest.approx(0.8 - 0.9004) and "DIFFERENT data set" in row["data"]
    assert "same data set" in studies.paper_comparison(measured, "severstal-2").data.iloc[0]


def test_all_normal_row_is_the_defect_free_share():
    test = synthetic.load(image_size=32, n_images=25, defect_rate=0.2, seed=0)
    row = studies.all_normal_row(test)
    assert row["acc"] == pytest.approx(0.8) and row["mdr"] == pytest.approx(0.2) and row["fdr"] == 0.0
    assert row["eacc"] == pytest.approx(0.8) and row["auroc"] == 0.5


def test_comparison_table_holds_method_baselines_trivial_and_paper(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    study = studysets.study_set("dagm", None, "ci")
    method = {"method": "joint (this repo)", "features": "resnet18", "acc": 0.9, "auroc": 0.7, "weights": "w",
              "source": "measured"}
    baselines = pd.DataFrame([{"method": "patchcore", "features": "f", "weights": "random", "acc": 0.8,
                               "note": ""}])
    table = studies.comparison_table(method, baselines, study.data, "dagm", study)
    assert table.method.tolist() == ["joint (this repo)", "patchcore", "everything defect-free", "Bai et al. 2024"]
    paper_row = table.iloc[-1]
    assert paper_row.acc == paper.REPORTED["dagm"]["acc"] and "reported (paper)" in paper_row.source
    assert "other images" in paper_row.source
    assert table.iloc[2].acc == pytest.approx(57 / 65)


def test_initialisation_says_pretrained_or_random():
    assert studies.initialisation("random") == "random"
    assert studies.initialisation("trained from random") == "random"
    assert studies.initialisation("offline:efficientnet-lite0") == "pretrained (offline:efficientnet-lite0)"


# -- runs (tiny) ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_study():
    data = protocols.defect_vs_normal(synthetic.load(image_size=32, n_images=24, defect_rate=0.5, seed=2))
    return studysets.StudySet("dagm", data, "synthetic", True, "tiny synthetic", "defect")


def test_repeated_runs_give_a_row_and_predictions_per_seed(tiny_study):
    train, test = protocols.stratified_split(tiny_study.data, 0.5, seed=0)
    config = studies.study_config("ci", tiny_study, **TINY)
    rows, predictions = studies.repeated_runs(config, [0, 1], train, test, {"table": "t"})
    assert rows.seed.tolist() == [0, 1] and (rows.table == "t").all()
    assert len(predictions) == 2 and all(len(p) == len(test) for p in predictions)
    assert {"truth", "cluster", "normal_distance"} <= set(predictions[0].columns)
    summary = studies.method_summary(rows, predictions, test)
    assert summary["acc"] == pytest.approx(rows.acc.mean()) and "seeds 0, 1" in summary["source"]
    for (_, row), table in zip(rows.iterrows(), predictions, strict=True):  # each row scores its own run
        assert row.acc == pytest.approx(evaluate(table.truth, table.cluster)["acc"])
    assert summary["auroc"] == pytest.approx(np.mean([studies.method_auroc(p, test) for p in predictions]))
    confusion = studies.summed_confusion(predictions, ("defect-free", "defective"))
    assert confusion.to_numpy().sum() == 2 * len(test)


def test_backbone_rows_and_stability_rows(tiny_study, monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    table = studies.backbone_rows("ci", tiny_study, ["resnet18"], **TINY)
    assert table.backbone.tolist() == ["resnet18"] and table.initialisation.tolist() == ["random"]
    assert set(studies.METRICS) <= set(table.columns) and table.n_test.iloc[0] == 12
    rows = studies.stability_rows("IV", None, "ci", repeats=2, **TINY)
    assert rows.experiment.tolist() == ["IV", "IV"] and rows.seed.tolist() == [0, 1]
    assert rows[["acc", "nmi", "mdr", "fdr"]].notna().all().all()


def test_figures_are_written(tmp_path):
    table = pd.DataFrame({"backbone": ["a", "b"], "acc": [0.5, 0.7], "nmi": [0.2, 0.3]})
    write_figure(studies.bar_figure(table, "backbone", ["acc", "nmi"], "t"), tmp_path, "bars")
    rows = pd.DataFrame({"experiment": ["I", "I", "V", "V"], "acc": [0.5, 0.6, 0.7, 0.8]})
    write_figure(studies.box_figure(rows, "experiment", ["acc"], "t"), tmp_path, "box")
    confusion = studies.summed_confusion([prediction([0, 1, 1], [0, 1, 0])], ("x", "y"))
    write_figure(studies.confusion_figure(confusion, "t"), tmp_path, "heat")
    assert {p.name for p in tmp_path.iterdir()} == {"bars.png", "box.png", "heat.png"}


def test_neu_acc_table_sets_the_run_beside_the_paper_and_the_bar(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    study = studysets.study_set("neu", None, "ci")
    table = studies.neu_acc_table(pd.DataFrame({"acc": [0.5, 0.7], "nmi": [0.4, 0.6]}), study)
    assert table.acc.tolist() == pytest.approx([0.6, 0.8753, 0.889])
    assert table.acc_std.iloc[0] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert "DIFFERENT data" in table.source.iloc[1] and "reported (paper)" in table.source.iloc[1]
    record = studysets.data_record({"neu": study})
    assert record["stand_in"] == {"neu": True} and "stand-in for NEU" in record["description"]


def test_baseline_rows_take_the_methods_backbone_and_feature_size(tiny_study, monkeypatch):
    seen = {}

    def fake_run_baselines(train, test, backbone, weights, **options):
        seen.update(options, backbone=backbone, weights=weights, sizes=(len(train), len(test)))
        return pd.DataFrame()

    monkeypatch.setattr(studies, "run_baselines", fake_run_baselines)
    config = studies.study_config("ci", tiny_study, backbone="resnet18", global_size=24, eval_size=40)
    train, test = tiny_study.data.subset(np.arange(10)), tiny_study.data.subset(np.arange(10, 14))
    studies.baseline_rows(config, train, test, 3, coreset_ratio=0.5)
    assert seen == {"input_size": 40, "seed": 3, "device": config.device, "coreset_ratio": 0.5,
                    "backbone": "resnet18", "weights": config.weights, "sizes": (10, 4)}
