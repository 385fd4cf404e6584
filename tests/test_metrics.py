"""Tests for steelnb.metrics: hand-computed tables, sklearn agreement, invariances, paper rates, input checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from steelnb.metrics import cluster_to_class, confusion, defect_scores_metrics, evaluate, per_class_accuracy

# Three classes, clusters 5/7/9:
#            c5  c7  c9
#   class 0   2   1   0
#   class 1   0   3   0
#   class 2   0   0   3      Hungarian: 5->0, 7->1, 9->2; acc = 8/9
Y3 = [0, 0, 0, 1, 1, 1, 2, 2, 2]
P3 = [5, 5, 7, 7, 7, 7, 9, 9, 9]

# Defect-free class 0, defects 1 and 2, clusters 10/20/30:
#            c10 c20 c30
#   class 0   3   1   0
#   class 1   1   2   0
#   class 2   0   0   3      10->0, 20->1, 30->2; acc = 8/10
# defective predicted defect-free: one class-1 image in c10 -> mdr 0.1
# defect-free predicted defective: one class-0 image in c20 -> fdr 0.1; eacc = 0.8 + 0.1
YD = [0, 0, 0, 1, 0, 1, 1, 2, 2, 2]
PD = [10, 10, 10, 10, 20, 20, 20, 30, 30, 30]


def test_hand_computed_three_classes() -> None:
    assert cluster_to_class(Y3, P3) == {5: 0, 7: 1, 9: 2}
    res = evaluate(Y3, P3)
    assert res["acc"] == pytest.approx(8 / 9)
    assert res["n_clusters"] == 3
    assert res["n"] == 9
    assert "mdr" not in res


def test_mi_in_nats_by_hand() -> None:
    # Perfect two-class split of 4 images: MI = ln 2 nats, NMI = 1.
    res = evaluate([0, 0, 1, 1], [3, 3, 8, 8])
    assert res["mi"] == pytest.approx(math.log(2))
    assert res["nmi"] == pytest.approx(1.0)
    assert res["ari"] == pytest.approx(1.0)
    assert res["acc"] == 1.0


def test_agrees_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 300), rng.integers(0, 6, 300)
    y_pred[:150] = y_true[:150]
    res = evaluate(y_true, y_pred)
    assert res["nmi"] == pytest.approx(skm.normalized_mutual_info_score(y_true, y_pred))
    assert res["mi"] == pytest.approx(skm.mutual_info_score(y_true, y_pred))
    assert res["ari"] == pytest.approx(skm.adjusted_rand_score(y_true, y_pred))
    assert 0.1 < res["nmi"] < 1.0  # a non-trivial case, neither independent nor identical


def test_mi_matches_definition() -> None:
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 3, 200), rng.integers(0, 4, 200)
    joint = pd.crosstab(y_true, y_pred).to_numpy() / 200
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    assert evaluate(y_true, y_pred)["mi"] == pytest.approx(float(np.sum(joint[nz] * np.log(joint[nz] / outer[nz]))))


def test_label_permutation_invariance() -> None:
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.integers(0, 3, 120), rng.integers(0, 4, 120)
    y_pred[:80] = y_true[:80]
    base = evaluate(y_true, y_pred, normal_label=0)
    class_perm, cluster_perm = np.array([2, 0, 1]), np.array([3, 1, 0, 2])
    moved = evaluate(class_perm[y_true], cluster_perm[y_pred], normal_label=int(class_perm[0]))
    assert moved == pytest.approx(base)


def test_arbitrary_cluster_ids() -> None:
    compact = evaluate(YD, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2], normal_label=0)
    odd = [42, 42, 42, 42, -1, -1, -1, 7, 7, 7]
    assert evaluate(YD, odd, normal_label=0) == pytest.approx(compact)
    assert cluster_to_class(YD, odd) == {42: 0, -1: 1, 7: 2}


def test_more_clusters_than_classes_many_to_one() -> None:
    #            c0  c1  c2  c3
    #   class 0   3   2   0   0
    #   class 1   0   1   3   1     Hungarian: 0->0, 2->1; leftovers: 1->0 (2 > 1), 3->1 (1 > 0)
    # correct: 3 + 2 (class 0) + 3 + 1 (class 1) = 9 of 10; one-to-one only would give 6/10
    y_true = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 2, 2, 2, 1, 3]
    assert cluster_to_class(y_true, y_pred) == {0: 0, 1: 0, 2: 1, 3: 1}
    res = evaluate(y_true, y_pred)
    assert res["acc"] == pytest.approx(0.9)
    assert res["n_clusters"] == 4


def test_fewer_clusters_than_classes() -> None:
    #            c0  c1
    #   class 0   2   0
    #   class 1   1   1
    #   class 2   0   2      Hungarian: 0->0, 1->2; class 1 gets no cluster; acc = 4/6
    y_true, y_pred = [0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1]
    assert cluster_to_class(y_true, y_pred) == {0: 0, 1: 2}
    assert evaluate(y_true, y_pred)["acc"] == pytest.approx(4 / 6)
    acc = per_class_accuracy(y_true, y_pred)
    assert acc.tolist() == pytest.approx([1.0, 0.0, 1.0])


def test_single_cluster() -> None:
    res = evaluate([0, 0, 0, 1], [3, 3, 3, 3])
    assert cluster_to_class([0, 0, 0, 1], [3, 3, 3, 3]) == {3: 0}
    assert res["acc"] == pytest.approx(0.75)
    assert res["n_clusters"] == 1
    assert res["nmi"] == pytest.approx(0.0)
    assert res["ari"] == pytest.approx(0.0)


def test_mdr_fdr_eacc_hand_case() -> None:
    res = evaluate(YD, PD, normal_label=0)
    assert res["acc"] == pytest.approx(0.8)
    assert res["mdr"] == pytest.approx(0.1)
    assert res["fdr"] == pytest.approx(0.1)
    assert res["eacc"] == pytest.approx(0.9)


def test_mdr_fdr_follow_normal_label() -> None:
    # Same data, class 2 declared defect-free: no image crosses between class 2 and the others.
    res = evaluate(YD, PD, normal_label=2)
    assert res["mdr"] == 0.0
    assert res["fdr"] == 0.0
    assert res["eacc"] == pytest.approx(res["acc"])


def test_paper_pitfall_all_defect_free() -> None:
    # 88 defect-free, 12 defective (three defect classes); one cluster -> mapped to defect-free.
    y_true = [0] * 88 + [1] * 4 + [2] * 4 + [3] * 4
    res = evaluate(y_true, [0] * 100, normal_label=0)
    assert res["acc"] == pytest.approx(0.88)
    assert res["mdr"] == pytest.approx(0.12)
    assert res["fdr"] == 0.0
    assert res["eacc"] == pytest.approx(0.88)


def test_confusion_and_per_class_accuracy() -> None:
    names = ["clean", "scratch", "pit"]
    table = confusion(Y3, P3, class_names=names)
    expected = pd.DataFrame(
        [[2, 1, 0], [0, 3, 0], [0, 0, 3]], index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted")
    )
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    acc = per_class_accuracy(Y3, P3, class_names=names)
    assert acc.to_dict() == pytest.approx({"clean": 2 / 3, "scratch": 1.0, "pit": 1.0})


def test_per_class_accuracy_absent_class_is_nan() -> None:
    acc = per_class_accuracy([0, 0, 2, 2], [1, 1, 5, 5], class_names=["a", "b", "c"])
    assert acc["a"] == 1.0
    assert acc["c"] == 1.0
    assert math.isnan(acc["b"])


def test_defect_scores_metrics() -> None:
    # Positive (defect) vs negative pairs: 0.8 beats all 3, 0.3 beats only 0.1 -> AUROC 4/6.
    # threshold 0.32 -> predicted defective [F, T, T, T, F]: mdr 1/5, fdr 2/5, acc 2/5.
    defective, scores = [0, 0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.3]
    assert defect_scores_metrics(defective, scores) == pytest.approx({"auroc": 4 / 6, "n": 5})
    res = defect_scores_metrics(defective, scores, threshold=0.32)
    assert res == pytest.approx({"auroc": 4 / 6, "n": 5, "mdr": 0.2, "fdr": 0.4, "acc": 0.4, "eacc": 0.8})


def test_defect_scores_one_class_auroc_nan() -> None:
    res = defect_scores_metrics([0, 0, 0], [0.1, 0.5, 0.9], threshold=0.4)
    assert math.isnan(res["auroc"])
    assert res["fdr"] == pytest.approx(2 / 3)


def test_integral_float_labels_accepted() -> None:
    assert evaluate(np.array(Y3, dtype=float), np.array(P3, dtype=float)) == pytest.approx(evaluate(Y3, P3))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([], [], "empty"),
        ([0, 1], [0], "differ in length"),
        ([0, float("nan")], [0, 1], "NaN"),
        ([0, 1], [0, float("nan")], "NaN"),
        ([0, -1], [0, 1], "non-negative"),
        ([0, 1.5], [0, 1], "integer"),
        (["a", "b"], [0, 1], "integer"),
    ],
)
def test_bad_labels_raise(y_true: list, y_pred: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate(y_true, y_pred)


def test_bad_normal_label_and_class_names_raise() -> None:
    with pytest.raises(ValueError, match="normal_label"):
        evaluate([0, 1], [0, 1], normal_label=3)
    with pytest.raises(ValueError, match="class_names"):
        confusion([0, 2], [0, 1], class_names=["a", "b"])


@pytest.mark.parametrize(
    ("defective", "scores", "match"),
    [
        ([], [], "empty"),
        ([0, 2], [0.1, 0.2], "0/1"),
        ([0, 1], [0.1], "shape"),
        ([0, 1], [0.1, float("nan")], "NaN"),
    ],
)
def test_bad_scores_raise(defective: list, scores: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        defect_scores_metrics(defective, scores)
