"""The detection lab's leave-one-pile-out choice (benchmarks/detect_lab.py: `choose`)."""

import doctest
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detect_lab  # benchmarks/ is not a package: its folder on the path


def table(aurocs: dict[str, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"pile": pile, "setting": setting, "auroc": auroc}
                         for setting, row in aurocs.items() for pile, auroc in row.items()])


def test_a_pile_pasted_from_dagm_leaves_the_choice_with_it():
    # "small" wins on DAGM and on the pair pasted from it; KSDD alone prefers "large"
    aurocs = table({"small": {"ksdd": 0.94, "dagm": 0.97, "edge": 0.97, "inside": 0.97},
                    "large": {"ksdd": 0.95, "dagm": 0.92, "edge": 0.92, "inside": 0.92}})
    chosen = detect_lab.choose(aurocs, ("ksdd", "dagm", "edge", "inside")).set_index("pile")
    assert chosen.at["dagm", "chosen_without_it"] == "large"  # edge and inside do not speak for DAGM
    assert chosen.at["edge", "chosen_without_it"] == "large"
    assert chosen.at["ksdd", "chosen_without_it"] == "small"
    assert chosen.at["all", "chosen_without_it"] == "small" and np.isnan(chosen.at["all", "auroc"])


def test_regret_is_not_ruled_by_the_hardest_pile():
    # "a" is 0.01 better on the hard pile; "b" is 0.04 better on the easy one
    aurocs = table({"a": {"hard": 0.86, "easy": 0.92}, "b": {"hard": 0.85, "easy": 0.96}})
    assert detect_lab.choose(aurocs, ("hard", "easy")).iloc[-1]["chosen_without_it"] == "a"
    assert detect_lab.choose(aurocs, ("hard", "easy"), rule="regret").iloc[-1]["chosen_without_it"] == "b"


def test_a_setting_not_scored_on_every_pile_is_not_chosen():
    aurocs = table({"everywhere": {"ksdd": 0.90, "dagm": 0.90}, "ksdd only": {"ksdd": 0.99}})
    for rule in detect_lab.RULES:
        assert detect_lab.choose(aurocs, ("ksdd", "dagm"), rule).iloc[-1]["chosen_without_it"] == "everywhere"


def test_a_pile_alone_gets_no_choice_and_no_common_setting_is_a_clear_error():
    alone = detect_lab.choose(table({"a": {"dagm": 0.9, "edge": 0.9}}), ("dagm", "edge")).set_index("pile")
    assert alone.at["dagm", "chosen_without_it"] == "" and np.isnan(alone.at["dagm", "auroc"])
    assert alone.at["all", "chosen_without_it"] == "a"
    with pytest.raises(ValueError, match="no setting is scored"):
        detect_lab.choose(table({"a": {"dagm": 0.9}, "b": {"ksdd": 0.9}}), ("dagm", "ksdd"))
    with pytest.raises(ValueError, match="rule must be one of"):
        detect_lab.choose(table({"a": {"dagm": 0.9}}), ("dagm",), rule="best")


def test_a_thinned_pile_keeps_every_defect_and_draws_its_defect_free_images(tmp_path, tiny_pile):
    truth = tiny_pile(tmp_path, odd=slice(-18, None))  # 18 of 48 defective
    pile = detect_lab.cached_pile("tiny", tmp_path)
    heavy = pile.thinned(0.4)
    assert (len(heavy.truth), int(heavy.truth.sum())) == (45, 18)  # 27 of the 30 defect-free beside the 18 defects
    assert set(np.flatnonzero(truth)) <= set(heavy.positions.tolist())
    assert pile.thinned(0.4, seed=1).positions.tolist() != heavy.positions.tolist()  # drawn
    with pytest.raises(ValueError, match="cannot be thinned"):
        pile.thinned(0.2)  # 18 defects need 72 defect-free images: the pile has 30


def test_the_docstring_examples_hold():
    assert doctest.testmod(detect_lab).failed == 0


def test_a_pile_s_defect_free_part_leaves_with_it_and_any_column_can_choose():
    # "flag" gains on DAGM and costs its own clean part; KSDD prefers "quiet"
    gains = pd.DataFrame([{"pile": pile, "setting": setting, "gain": gain} for setting, row in {
        "quiet": {"ksdd": 0.05, "dagm": 0.01, "dagm-clean": -0.01},
        "flag": {"ksdd": 0.04, "dagm": 0.06, "dagm-clean": -0.03}}.items() for pile, gain in row.items()])
    assert detect_lab.family("dagm-clean") == "dagm" and detect_lab.family("edge-clean") == "dagm"
    chosen = detect_lab.choose(gains, ("ksdd", "dagm", "dagm-clean"), value="gain").set_index("pile")
    assert chosen.at["dagm-clean", "chosen_without_it"] == "quiet"  # DAGM, its source, does not speak for it
    assert chosen.at["ksdd", "chosen_without_it"] == "quiet"  # the worst case over DAGM and its clean part
    assert chosen.at["ksdd", "gain"] == 0.05 and chosen.at["dagm", "in_sample_gain"] == 0.06
    with pytest.raises(KeyError):
        detect_lab.choose(gains, ("ksdd",))  # no AUROC column
