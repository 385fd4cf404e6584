"""The decision's cutoffs benchmark (benchmarks/decision_cutoffs.py): its settings are the package's rules."""

import doctest
import sys
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import decision_cutoffs  # benchmarks/ is not a package: its folder on the path
import detect_discriminator
from detect_lab import cached_pile

from steelnb.detect.decision import CUTOFF, label_free_threshold, null_fit


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


def test_a_lab_pile_and_its_defect_free_part_are_each_scored_at_the_default(tmp_path, tiny_pile):
    truth = tiny_pile(tmp_path)
    rows = decision_cutoffs.lab_rows("tiny", tmp_path, [0, 1])
    assert [(row["pile"], row["seed"]) for row in rows[::len(decision_cutoffs.SETTINGS)]] == [
        ("tiny", 0), ("tiny-clean", 0), ("tiny", 1), ("tiny-clean", 1)]
    at_the_cutoff = [row for row in rows if row["setting"] == f"auto(mad) {CUTOFF:g}"]
    assert at_the_cutoff[0]["flagged"] >= 6 and at_the_cutoff[0]["mdr"] == 0  # the six odd squares found
    pile = cached_pile("tiny", tmp_path)
    clean = pile.part(truth == 0)
    setting = detect_discriminator.DEFAULT
    scored = {name: detect_discriminator.seed_scores(part, 1, [setting[0]], [setting[1]]) for name, part in
              (("tiny", pile), ("tiny-clean", clean))}
    for name, part in (("tiny", pile), ("tiny-clean", clean)):  # the default's scores, the part's its own
        expected = decision_cutoffs.rows_of(name, 1, scored[name][setting][0], part.truth)
        assert [row for row in rows if (row["pile"], row["seed"]) == (name, 1)] == expected
    part_alone, in_the_pile = scored["tiny-clean"][setting][0], scored["tiny"][setting][0][truth == 0]
    assert not np.allclose(part_alone, in_the_pile)  # rescored, and the discriminator trained, on the part alone
    assert not np.allclose(part_alone, scored["tiny-clean"][0.0, 0.0, 0.0][0])  # the discriminator on
