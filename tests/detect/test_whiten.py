"""The pile's whitening (`detect/whiten.py`): the fewest directions that hold the share asked, each in its own units,
a defect in a direction of little variance found only after it, and metrics.json saying what was fitted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelnb.detect import DetectConfig, detect, rescore
from steelnb.detect.scorers import SelfSimilarity
from steelnb.detect.whiten import Whitening, fit_whitening, sampled_patches
from tests.detect.conftest import FAST, pile, plant, texture

SPREADS = torch.tensor([10.0, 1.0, 0.4])  # the patches' standard deviation along each axis


def patches(n: int = 4000, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed)) * SPREADS


@pytest.mark.parametrize(("keep", "directions"), [(0.95, 1), (0.995, 2), (0.99999, 3), (1.0, 3)])
def test_it_keeps_the_fewest_directions_that_hold_the_share(keep, directions):
    assert Whitening.fit(patches(), keep).projection.shape == (3, directions)


def test_the_kept_directions_come_out_in_unit_variance_and_uncorrelated():
    sample = patches() @ torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))[0]
    whitened = Whitening.fit(sample, 1.0)(sample)
    assert torch.allclose(torch.cov(whitened.T), torch.eye(3), atol=1e-4)


def test_full_shrink_scales_every_direction_alike():
    whitening = Whitening.fit(patches(), 1.0, shrink=1.0)
    norms = whitening.projection.norm(dim=0)
    assert torch.allclose(norms, norms[0].expand(3), rtol=1e-6)


def test_directions_without_variance_are_dropped_and_a_constant_pile_stays_finite():
    flat = torch.cat([patches(), torch.zeros(4000, 2)], 1)  # two axes that never vary
    assert Whitening.fit(flat, 1.0).projection.shape[1] == 3
    constant = Whitening.fit(torch.ones(50, 4), 1.0)(torch.ones(3, 4))
    assert torch.equal(constant, torch.zeros(3, 4))


def test_too_few_patches_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 patches"):
        Whitening.fit(torch.zeros(1, 3), 0.9)


def test_a_defect_in_a_quiet_direction_stands_out_only_once_whitened():
    grids = patches(10 * 8 * 8, seed=2).reshape(10, 8, 8, 3)
    grids[3, 4, 4, 2] += 4.0  # ten of its own spreads along the quiet axis, 0.4 of the loud one's
    plain = SelfSimilarity(2).maps(grids, np.arange(10))
    whitened = SelfSimilarity(2).maps(Whitening.fit(grids, 1.0)(grids), np.arange(10))
    defect = np.ravel_multi_index((3, 4, 4), plain.shape)
    assert int(plain.flatten().argmax()) != defect
    assert int(whitened.flatten().argmax()) == defect


def test_the_fit_draws_the_same_patches_of_each_image_whatever_the_batches():
    grids = torch.randn(5, 4, 4, 3, generator=torch.Generator().manual_seed(3)) * SPREADS

    def features(index: np.ndarray) -> torch.Tensor:
        return grids[index]

    one = fit_whitening(features, np.arange(5), 5, 1.0, 0.5, seed=0, batch_size=5, patches=30)
    two = fit_whitening(features, np.arange(5), 5, 1.0, 0.5, seed=0, batch_size=2, patches=30)
    assert one.patches == 30 and torch.equal(one.projection, two.projection)
    assert not torch.equal(one.projection, fit_whitening(features, np.arange(5), 5, 1.0, 0.5, seed=1,
                                                         patches=30).projection)
    assert torch.equal(sampled_patches(grids[2], 2, 6, seed=0), sampled_patches(grids[2], 2, 6, seed=0))
    assert not torch.equal(sampled_patches(grids[2], 2, 6, seed=0), sampled_patches(grids[2], 3, 6, seed=0))


def test_both_passes_score_the_whitened_features_kept_or_extracted_again(monkeypatch):
    images = plant(texture(24, 96, seed=5), 7, 30, 40, 12, 250)
    config = {**FAST, "max_side": 96, "seed": 0}
    plain = detect(DetectConfig(**config), pile(images))
    kept = detect(DetectConfig(**config, whiten=0.9), pile(images))
    assert kept.metrics["rescore"]["used"] and kept.metrics["whitening"]["features"].startswith("kept in memory")
    assert not np.allclose(kept.table["score"], plain.table["score"], rtol=0.05)
    monkeypatch.setattr(rescore, "KEEP_BYTES", 0)
    again = detect(DetectConfig(**config, whiten=0.9), pile(images))
    assert again.metrics["whitening"]["features"].startswith("extracted again")
    np.testing.assert_allclose(again.table["score"], kept.table["score"], rtol=0.01)


def test_metrics_say_what_the_whitening_kept():
    images = plant(texture(12, 64, seed=4), 2, 20, 20, 12, 250)
    config = {**FAST, "max_side": 64, "rescore": 0}
    whitened = detect(DetectConfig(**config, whiten=0.9, whiten_shrink=0.5), pile(images)).metrics["whitening"]
    assert whitened["keep"] == 0.9 and whitened["shrink"] == 0.5 and whitened["patches"] == 12 * 8 * 8
    assert whitened["features"].startswith("kept in memory")  # fitted and scored on one forward pass
    assert 1 <= whitened["directions"] < whitened["of"] == 384  # resnet18's strides 8 and 16: 128 + 256
    assert detect(DetectConfig(**config), pile(images)).metrics["whitening"] == "off (--whiten 0)"  # the default
    bank = detect(DetectConfig(**config, method="bank", whiten=0.9), pile(images)).metrics["whitening"]
    assert bank == "off (--method bank: the lab chose the whitening for self only)"
