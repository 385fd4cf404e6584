"""The decision's cutoffs benchmark (benchmarks/decision_cutoffs.py): its settings are the package's rules."""

import doctest
import sys
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import decision_cutoffs  # benchmarks/ is not a package: its folder on the path

from steelnb.detect.decision import label_free_threshold, null_fit


def piles() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"light": np.exp(np.r_[rng.normal(0, 0.1, 880), rng.normal(0.3, 0.1, 120)]),
            "heavy": np.exp(np.r_[rng.normal(0, 0.1, 600), rng.normal(1, 0.1, 400)])}


def test_auto_with_mad_is_the_package_s_auto():
    for scores in piles().values():
        for cutoff in (2.0, 3.0):
            assert decision_cutoffs.threshold(scores, f"auto(mad) {cutoff:g}") == label_free_threshold(
                scores, "auto", cutoff)


def test_lower_takes_its_spread_below_the_median_only():
    scores = piles()["light"]
    raised = np.where(scores > np.quantile(scores, 0.6), scores * 1.5, scores)  # the top 40 % moved up
    assert decision_cutoffs.lower_threshold(raised, 2) == decision_cutoffs.lower_threshold(scores, 2)
    assert label_free_threshold(raised, "mad", 2) > label_free_threshold(scores, "mad", 2)
    heavy = piles()["heavy"]  # auto takes null there, whichever light rule it is given
    assert decision_cutoffs.threshold(heavy, "auto(lower) 3") == label_free_threshold(heavy, "null", 3)


def test_rows_measure_every_setting():
    scores = piles()["light"]
    truth = np.r_[np.zeros(880, int), np.ones(120, int)]
    rows = decision_cutoffs.rows_of("light", 0, scores, truth)
    assert [row["setting"] for row in rows] == decision_cutoffs.SETTINGS
    for row in rows:
        flags = scores > decision_cutoffs.threshold(scores, row["setting"])
        assert row["flagged"] == flags.sum()
        assert row["mdr"] == np.sum(~flags & (truth == 1)) / 1000 and row["fdr"] == np.sum(flags & (truth == 0)) / 1000
        assert row["gain"] == row["acc"] - 0.88


def test_estimate_flags_as_many_as_the_null_estimates():
    scores = piles()["heavy"]
    estimated = round(null_fit(scores).defective_share * len(scores))
    assert 300 < estimated < 500  # 400 of the 1000 are defective
    assert (scores > decision_cutoffs.threshold(scores, "estimate")).sum() == estimated


def test_the_docstring_examples_hold():
    assert doctest.testmod(decision_cutoffs).failed == 0
