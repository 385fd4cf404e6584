"""The detection lab's piles (benchmarks/lab_piles.py): the stand-ins are notebook 05's sets."""

import sys
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import lab_piles  # benchmarks/ is not a package: its folder on the path

from steelnb.study.datasets import study_set


def test_a_stand_in_is_notebook_05_s_set_at_any_max_side(tmp_path):
    pile = lab_piles.load_pile("III", str(tmp_path), max_side=64)  # no Severstal there: the stand-in plays set III
    drawn = study_set("III", tmp_path, "cpu", seed=0).data
    assert np.array_equal(pile.images, drawn.images) and np.array_equal(pile.defective, drawn.defective)
    assert len(pile) == 500 and pile.defective.mean() == 0.4 and pile.images.shape[-1] == 200
