"""The paired bootstrap of the flag's change (benchmarks/discriminator_paired.py)."""

import doctest
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detect_discriminator  # benchmarks/ is not a package: its folder on the path
import discriminator_paired

TRUTH = np.array([0] * 30 + [1] * 10)


def test_the_examples_in_its_docstrings_hold():
    assert doctest.testmod(discriminator_paired).failed == 0


def test_the_same_scores_change_nothing_in_any_resample():
    scores = np.random.default_rng(0).random(40)
    change = discriminator_paired.paired_change(TRUTH, [(scores, scores)], np.random.default_rng(0), 50)
    assert (change["change"], change["low"], change["high"], change["share_below_0"]) == (0.0, 0.0, 0.0, 0.0)


def test_a_reversed_ranking_loses_in_every_resample_and_each_seed_is_listed():
    perfect = TRUTH + np.random.default_rng(0).random(40) * 0.5
    change = discriminator_paired.paired_change(TRUTH, [(perfect, -perfect), (perfect, perfect)],
                                                np.random.default_rng(0), 50)
    assert change["change"] == -0.5  # the mean of -1 and 0 over the two seeds
    assert change["low"] == pytest.approx(-0.5) and change["high"] == pytest.approx(-0.5)
    assert change["share_below_0"] == 1.0 and change["seeds"] == "-1.0000 +0.0000"


def test_one_resample_serves_every_seed():
    first, second = np.random.default_rng(1).random((2, 40))
    change = discriminator_paired.paired_change(TRUTH, [(first, second), (second, first)], np.random.default_rng(0), 50)
    # the two seeds' changes cancel in a resample only where both are counted on the same images
    assert change["low"] == pytest.approx(0.0) and change["high"] == pytest.approx(0.0)
    assert change["share_below_0"] == 0.0


def test_each_class_is_drawn_on_its_own_so_a_single_defect_is_always_in():
    truth = np.zeros(40, int)
    truth[-1] = 1  # a plain draw of 40 would miss it about one time in three, and the AUROC would fail
    scores = np.random.default_rng(2).random(40)
    change = discriminator_paired.paired_change(truth, [(scores, scores + truth)], np.random.default_rng(0), 50)
    assert change["low"] >= 0 and change["high"] > 0


def test_a_pile_gets_one_row_with_the_discriminator_benchmarks_changes(tmp_path):
    features = torch.randn(48, 6, 6, 8, generator=torch.Generator().manual_seed(0)) * 0.1
    truth = np.zeros(48, int)
    truth[-6:] = 1
    features[..., 0] *= 0.1  # a channel in which the pile hardly varies ...
    features[-6:, 2:4, 2:4, 0] += 0.06  # ... holds six faint defects: what the discriminator sees and `self` hardly
    torch.save(({16: features.half()}, truth, 0.1), tmp_path / "tiny.pt")
    rows = discriminator_paired.pile_rows("tiny", tmp_path, [0, 1])
    assert len(rows) == 1 and rows[0]["pile"] == "tiny"
    assert rows[0]["low"] <= rows[0]["change"] <= rows[0]["high"]
    (tmp_path / "apart").mkdir()  # scored again, not read from the cache the paired run filled
    torch.save(({16: features.half()}, truth, 0.1), tmp_path / "apart" / "tiny.pt")
    grid = detect_discriminator.pile_rows("tiny", tmp_path / "apart", [0, 1], noises=[1.0],
                                          shares=[detect_discriminator.DEFAULT[1]])
    auroc = {(row["seed"], row["weight"]): row["auroc"] for row in grid}
    expected = [auroc[seed, 0.5] - auroc[seed, 0.0] for seed in (0, 1)]
    assert min(expected) > 0.1  # the flag lifts the faint defects
    assert [float(value) for value in rows[0]["seeds"].split()] == pytest.approx(expected, abs=1e-4)
    assert rows[0]["change"] == pytest.approx(np.mean(expected))
    assert (rows[0]["off"], rows[0]["flag"]) == pytest.approx((np.mean([auroc[seed, 0.0] for seed in (0, 1)]),
                                                               np.mean([auroc[seed, 0.5] for seed in (0, 1)])))
    assert rows[0]["epochs"] == discriminator_paired.EPOCHS


def test_the_passes_asked_for_are_the_ones_trained(tmp_path, monkeypatch):
    features = torch.randn(48, 4, 4, 8, generator=torch.Generator().manual_seed(0))  # more than 40 peers
    truth = np.zeros(48, int)
    truth[-3:] = 1
    torch.save(({16: features.half()}, truth, 0.1), tmp_path / "tiny.pt")
    trained = []

    def recording(*args, **kwargs):
        trained.append(args[5])  # discriminator_maps(features, clean, n, mine, noise, epochs, seed)
        return original(*args, **kwargs)

    original = detect_discriminator.discriminator_maps
    monkeypatch.setattr(detect_discriminator, "discriminator_maps", recording)
    assert discriminator_paired.EPOCHS != 3
    rows = discriminator_paired.pile_rows("tiny", tmp_path, [0, 1], epochs=3)
    assert trained == [3, 3] and rows[0]["epochs"] == 3


def test_a_worst_case_lost_beyond_its_interval_keeps_off_whatever_the_mean():
    auroc = pd.DataFrame({"off": [0.78, 0.96], "flag": [0.76, 0.99]}, index=["strips", "dagm"])
    sure = pd.DataFrame({"low": [-0.03, 0.02], "high": [-0.01, 0.04]}, index=auroc.index)
    unsure = sure.assign(low=[-0.03, 0.02], high=[0.01, 0.04])
    assert discriminator_paired.pair_choice(auroc, sure)["chosen_without_it"].iloc[-1] == "off"
    assert discriminator_paired.pair_choice(auroc, unsure)["chosen_without_it"].iloc[-1] == "flag"


def test_the_lab_s_choice_reads_the_off_and_the_flag_s_rows_only(tmp_path):
    noise, share, weight = detect_discriminator.FIXED  # such tables are older than the nineteenth round: 70 %
    rows = [("ksdd", 0, 0, 0, 0.95), ("ksdd", noise, share, weight, 0.96), ("ksdd", noise, share, 1.0, 0.10),
            ("dagm", 0, 0, 0, 0.96), ("dagm", noise, share, weight, 0.99), ("dagm", 2.0, share, weight, 0.10)]
    pd.DataFrame(rows, columns=["pile", "noise", "share", "weight", "auroc"]).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame({"pile": ["ksdd", "dagm"], "low": [0.001, 0.01], "high": [0.02, 0.05]}).to_csv(tmp_path / "p.csv",
                                                                                                 index=False)
    chosen = discriminator_paired.lab_choice(str(tmp_path / "p.csv"), ("ksdd", "dagm"), str(tmp_path / "d.csv"))
    assert chosen["chosen_without_it"].tolist() == ["flag", "flag", "flag"]
    assert chosen["auroc"].tolist()[:2] == [0.96, 0.99]
    # a table with its own means needs no other
    pd.DataFrame({"pile": ["ksdd", "dagm"], "low": [-0.01, 0.01], "high": [0.02, 0.05], "off": [0.95, 0.96],
                  "flag": [0.90, 0.99]}).to_csv(tmp_path / "own.csv", index=False)
    own = discriminator_paired.lab_choice(str(tmp_path / "own.csv"), ("ksdd", "dagm"))
    assert own["chosen_without_it"].tolist() == ["flag", "off", "off"] and own["auroc"].tolist()[:2] == [0.90, 0.96]


def test_worst_piles_that_differ_tie_only_when_both_intervals_hold_0():
    # off is worst on strips (0.74), the flag on tile (0.72): the minima favour off, the mean (0.813, 0.823) the flag
    auroc = pd.DataFrame({"off": [0.74, 0.80, 0.90], "flag": [0.76, 0.72, 0.99]}, index=["strips", "tile", "dagm"])
    both = pd.DataFrame({"low": [-0.01, -0.09, 0.02], "high": [0.09, 0.01, 0.06]}, index=auroc.index)
    one = both.assign(low=[0.01, -0.09, 0.02])  # strips' change is sure, tile's is not
    assert discriminator_paired.pair_choice(auroc, both)["chosen_without_it"].iloc[-1] == "flag"  # a tie: the mean
    assert discriminator_paired.pair_choice(auroc, one)["chosen_without_it"].iloc[-1] == "off"  # no tie: the minima
    flag_sure = both.assign(high=[0.09, -0.01, 0.06])  # tile's (the flag's worst) change is sure, strips' is not
    assert discriminator_paired.pair_choice(auroc, flag_sure)["chosen_without_it"].iloc[-1] == "off"


def test_a_pile_alone_gets_no_choice_and_a_missing_value_is_refused():
    auroc = pd.DataFrame({"off": [0.95, 0.96], "flag": [0.96, 0.99]}, index=["dagm", "edge"])  # one family
    paired = pd.DataFrame({"low": [0.01, 0.01], "high": [0.02, 0.02]}, index=auroc.index)
    chosen = discriminator_paired.pair_choice(auroc, paired)
    assert chosen["chosen_without_it"].tolist() == ["", "", "flag"] and chosen["auroc"].isna().tolist() == [True] * 3
    with pytest.raises(ValueError, match="every pile needs"):
        discriminator_paired.pair_choice(auroc.assign(flag=[0.96, np.nan]), paired)


def test_a_table_holding_a_pile_twice_is_refused(tmp_path):
    pd.DataFrame({"pile": ["ksdd", "ksdd"], "low": [0.0, 0.0], "high": [0.1, 0.1], "off": [0.9, 0.9],
                  "flag": [0.9, 0.9]}).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(ValueError, match="holds a pile twice"):
        discriminator_paired.lab_choice(str(tmp_path / "p.csv"), ("ksdd",))


def test_the_rule_s_pair_sets_the_estimated_share_against_the_default(tmp_path, monkeypatch, tiny_pile):
    tiny_pile(tmp_path)
    monkeypatch.setattr(detect_discriminator, "clean_share", lambda scores: (0.5, 0.45))
    row = discriminator_paired.pile_rows("tiny", tmp_path, [0], pair="rule")[0]
    tiny_pile(tmp_path / "apart")  # scored again, not read from the cache the paired run filled
    grid = detect_discriminator.pile_rows("tiny", tmp_path / "apart", [0], noises=[1.0], shares=[0.7, -1.0])
    auroc = {(row["share"], row["weight"]): row["auroc"] for row in grid}
    assert (row["default"], row["rule"]) == pytest.approx((auroc[0.7, 0.5], auroc[-1.0, 0.5]))
    assert row["change"] == pytest.approx(auroc[-1.0, 0.5] - auroc[0.7, 0.5]) and "off" not in row
    auroc = pd.DataFrame({"default": [0.95, 0.96], "rule": [0.97, 0.99]}, index=["ksdd", "dagm"])
    paired = pd.DataFrame({"low": [0.01, 0.01], "high": [0.03, 0.04]}, index=auroc.index)
    assert discriminator_paired.pair_choice(auroc, paired)["chosen_without_it"].tolist() == ["rule", "rule", "rule"]
    tied = auroc.assign(rule=auroc["default"])  # the same AUROC: the setting kept on a tie, the first column
    assert discriminator_paired.pair_choice(tied, paired * 0)["chosen_without_it"].tolist()[-1] == "default"


def test_a_thinned_pile_is_scored_and_under_100_images_the_rule_is_the_fixed_share(tmp_path, tiny_pile):
    tiny_pile(tmp_path, odd=slice(-18, None))  # 18 of 48 defective
    row = discriminator_paired.pile_rows("tiny", tmp_path, [0, 1], pair="rule", defective=0.4)[0]
    assert (row["images"], row["defective"]) == (45, 0.4)
    # 45 images: too few to estimate, so the rule trains on 70 % too, and every column of the pair agrees
    assert row["rule_estimates"] == "nan nan" and row["change"] == 0
    assert (row["rule"], row["rule_acc"], row["rule_mdr"]) == (row["default"], row["default_acc"], row["default_mdr"])
