"""The second backbone's benchmark (benchmarks/detect_backbones.py): each backbone alone, then the two fused."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detect_backbones  # benchmarks/ is not a package: its folder on the path


def _cache(folder: Path, odd: slice, truth: np.ndarray, seed: int) -> None:
    """A tiny pile of 48 images in `folder`, the images at `odd` holding an odd square."""
    features = torch.randn(48, 6, 6, 8, generator=torch.Generator().manual_seed(seed)) * 0.1
    features[odd, 2:4, 2:4] += 2.0
    folder.mkdir()
    torch.save(({16: features.half()}, truth, 0.1 * (seed + 1)), folder / "tiny.pt")


def test_each_backbone_alone_and_fused_gets_a_row(tmp_path):
    truth = np.zeros(48, int)
    truth[-6:] = 1
    _cache(tmp_path / "lite2", slice(-6, -3), truth, 0)  # each backbone sees half of the defects
    _cache(tmp_path / "lite0", slice(-3, None), truth, 1)
    rows = detect_backbones.pile_rows("tiny", tmp_path / "lite2", [0], tmp_path / "lite0")
    by_setting = {(row["backbones"], row["lite0_weight"]): row for row in rows}
    assert list(by_setting) == [("lite2", 0.0), ("lite0", 0.0)] + [("lite2+lite0", w) for w in detect_backbones.WEIGHTS]
    alone = max(by_setting["lite2", 0.0]["auroc"], by_setting["lite0", 0.0]["auroc"])
    assert by_setting["lite2+lite0", 1.0]["auroc"] > alone  # the fusion sees the defects of both
    assert rows[0]["forward_s_lite2"] == pytest.approx(0.1) and rows[0]["forward_s_lite0"] == pytest.approx(0.2)


def test_caches_of_different_piles_are_refused(tmp_path):
    truth = np.zeros(48, int)
    truth[-6:] = 1
    _cache(tmp_path / "lite2", slice(-6, None), truth, 0)
    _cache(tmp_path / "lite0", slice(-6, None), np.roll(truth, 6), 1)
    with pytest.raises(ValueError, match="different piles"):
        detect_backbones.pile_rows("tiny", tmp_path / "lite2", [0], tmp_path / "lite0")
