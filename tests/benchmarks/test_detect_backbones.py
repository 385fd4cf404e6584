"""The second backbone's benchmark (benchmarks/detect_backbones.py): each backbone alone, then the two fused."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detect_backbones  # benchmarks/ is not a package: its folder on the path
import detect_discriminator


def _truth() -> np.ndarray:
    truth = np.zeros(48, int)
    truth[-6:] = 1
    return truth


def test_each_backbone_alone_and_fused_gets_a_row(tmp_path, monkeypatch, tiny_pile):
    joined_at = []  # the weights of each fusion, Lite2's first

    def recorded(maps, cells, weights=None):
        joined_at.append(weights)
        return pile_maps(maps, cells, weights)

    pile_maps = detect_backbones._pile_maps
    monkeypatch.setattr(detect_backbones, "_pile_maps", recorded)
    tiny_pile(tmp_path / "lite2", 0, slice(-6, -3), _truth())  # each backbone sees half of the defects
    tiny_pile(tmp_path / "lite0", 1, slice(-3, None), _truth(), forward_s=0.2)
    rows = detect_backbones.pile_rows("tiny", tmp_path / "lite2", [0], tmp_path / "lite0")
    assert [(row["backbones"], row["lite0_weight"]) for row in rows] == \
        [("lite2", 0.0), ("lite0", 0.0)] + [("lite2+lite0", w) for w in detect_backbones.WEIGHTS]
    auroc = {(row["backbones"], row["lite0_weight"]): row["auroc"] for row in rows}
    assert auroc["lite2+lite0", 1.0] > max(auroc["lite2", 0.0], auroc["lite0", 0.0])  # it sees the defects of both
    assert joined_at == [None, None] + [(1.0, w) for w in detect_backbones.WEIGHTS]  # Lite0's weight is its own
    default = detect_discriminator.pile_rows("tiny", tmp_path / "lite2", [0], noises=[], shares=[])[0]
    assert rows[0]["auroc"] == default["auroc"] and rows[0]["ap"] == default["ap"]  # the Lite2 row is the default
    assert rows[0]["forward_s_lite2"] == pytest.approx(0.1) and rows[0]["forward_s_lite0"] == pytest.approx(0.2)


@pytest.mark.parametrize("labels_differ", [True, False])
def test_caches_of_different_piles_are_refused(tmp_path, labels_differ, tiny_pile):
    tiny_pile(tmp_path / "lite2")
    tiny_pile(tmp_path / "lite0", 1, truth=np.roll(_truth(), 6) if labels_differ else _truth(),
              cells=6 if labels_differ else 7)
    with pytest.raises(ValueError, match="different piles"):
        detect_backbones.pile_rows("tiny", tmp_path / "lite2", [0], tmp_path / "lite0")
