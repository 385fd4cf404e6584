"""The 2-cluster, 5-cluster-style and type scores, and why a protocol is not scored."""

import numpy as np

from steelnb.inspection.evaluation import groups, pipeline_scores


def test_unflagged_images_form_one_cluster_and_each_type_its_own():
    assert groups(np.array([0, 1, 1, 0]), np.array([-1, 0, 2, -1])).tolist() == [0, 1, 3, 0]


def test_a_perfect_pipeline_scores_one():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3])
    decision = (labels > 0).astype(int)
    types = np.array([-1, -1, -1, -1, 2, 2, 0, 0, 1, 1])
    scores = pipeline_scores(labels, decision, 0, decision, types)
    for key in ("two_cluster", "five_cluster", "types"):
        assert scores[key]["acc"] == 1.0 and abs(scores[key]["nmi"] - 1.0) < 1e-9
    assert scores["five_cluster"]["mdr"] == scores["five_cluster"]["fdr"] == 0.0


def test_missed_and_false_alarms_count_as_the_paper_defines_them():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    decision = np.array([1, 0, 0, 0, 0, 1, 1, 1])  # one defect-free flagged, one defective missed
    types = np.array([0, -1, -1, -1, -1, 0, 1, 1])
    scores = pipeline_scores(labels, (labels > 0).astype(int), 0, decision, types)
    assert scores["two_cluster"]["mdr"] == scores["two_cluster"]["fdr"] == 1 / 8
    assert scores["five_cluster"]["mdr"] == scores["five_cluster"]["fdr"] == 1 / 8
    assert scores["types"] == {"nmi": 1.0, "acc": 1.0, "n": 3, "false_alarms": 1}


def test_a_pile_without_labels_or_without_defect_free_images_says_what_is_not_scored():
    decision = np.array([1, 1, 0])
    unlabelled = pipeline_scores(None, None, None, decision, np.array([0, 1, -1]))
    assert unlabelled == {"two_cluster": "not scored: the pile has no defect / defect-free labels",
                          "five_cluster": "not scored: the pile has no class labels",
                          "types": "not scored: the pile has no class labels"}
    neu_like = pipeline_scores(np.array([0, 1, 2]), np.ones(3, int), None, np.ones(3, int), np.array([0, 1, 1]))
    assert neu_like["two_cluster"] == "not scored: every image of the pile is defective"
    assert neu_like["five_cluster"] == "not scored: the pile needs defect-free and defective images"
    assert neu_like["types"]["n"] == 3 and round(neu_like["types"]["acc"], 3) == 0.667


def test_the_decision_is_scored_as_named_not_matched_to_the_majority():
    labels = np.array([0, 1, 1, 2, 2])  # mostly defective, nothing flagged: all called defect-free
    scores = pipeline_scores(labels, (labels > 0).astype(int), 0, np.zeros(5, int), np.full(5, -1))
    assert scores["two_cluster"]["acc"] == 0.2 and scores["two_cluster"]["mdr"] == 0.8
    assert scores["five_cluster"]["acc"] == 0.2 and scores["five_cluster"]["fdr"] == 0.0


def test_types_are_matched_to_defect_classes_only():
    labels = np.array([0, 0, 0, 1, 2])
    decision = np.array([1, 1, 0, 1, 1])  # two false alarms form type 0 with no truly defective image
    types = np.array([0, 0, -1, 1, 2])
    five = pipeline_scores(labels, (labels > 0).astype(int), 0, decision, types)["five_cluster"]
    assert five["acc"] == 3 / 5 and five["fdr"] == 2 / 5 and five["mdr"] == 0.0


def test_nothing_flagged_leaves_the_types_unscored():
    labels = np.array([0, 0, 1, 2])
    scores = pipeline_scores(labels, (labels > 0).astype(int), 0, np.zeros(4, int), np.full(4, -1))
    assert scores["types"] == "not scored: no truly defective image was flagged"
    assert scores["two_cluster"]["mdr"] == 0.5
