"""The paper's figures and the gap to measured ones."""

from steelnb.study import paper


def test_the_gap_is_measured_minus_reported_for_what_the_paper_reports():
    assert paper.gap({"acc": 0.9, "ari": 0.1}, "neu") == {"acc": 0.9 - 0.8753}
    assert paper.gap({"acc": 0.9}, "synthetic") == {}
    assert set(paper.REPORTED["severstal-2"]) == {"acc", "nmi", "mdr", "fdr"}
