"""The paired bootstrap of the flag's change (benchmarks/discriminator_paired.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import discriminator_paired  # benchmarks/ is not a package: its folder on the path

TRUTH = np.array([0] * 30 + [1] * 10)


def test_the_same_scores_change_nothing_in_any_resample():
    scores = np.random.default_rng(0).random(40)
    change = discriminator_paired.paired_change(TRUTH, [(scores, scores)], np.random.default_rng(0), 50)
    assert (change["change"], change["low"], change["high"], change["share_below_0"]) == (0.0, 0.0, 0.0, 0.0)


def test_a_reversed_ranking_loses_in_every_resample_and_each_seed_is_listed():
    perfect = TRUTH + np.random.default_rng(0).random(40) * 0.5
    change = discriminator_paired.paired_change(TRUTH, [(perfect, -perfect), (perfect, perfect)],
                                                np.random.default_rng(0), 50)
    assert change["change"] == -0.5  # the mean of -1 and 0 over the two seeds
    # each class resampled on its own: every resample keeps both classes, so the AUROCs stay 1 and 0
    assert change["low"] == pytest.approx(-0.5) and change["high"] == pytest.approx(-0.5)
    assert change["share_below_0"] == 1.0 and change["seeds"] == "-1.0000 +0.0000"


def test_a_pile_gets_one_row_over_its_seeds(tmp_path):
    features = torch.randn(48, 6, 6, 8, generator=torch.Generator().manual_seed(0)) * 0.1
    truth = np.zeros(48, int)
    truth[-6:] = 1
    features[-6:, 2:4, 2:4] += 2.0  # six images with an odd square
    torch.save(({16: features.half()}, truth, 0.1), tmp_path / "tiny.pt")
    rows = discriminator_paired.pile_rows("tiny", tmp_path, [0, 1])
    assert len(rows) == 1 and rows[0]["pile"] == "tiny" and len(rows[0]["seeds"].split()) == 2
    assert rows[0]["low"] <= rows[0]["change"] <= rows[0]["high"]
