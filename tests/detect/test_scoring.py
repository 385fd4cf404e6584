"""From anomaly maps to image scores, the share they take chosen from the pile, and peaks
(steelnb/detect/scoring.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelnb.detect.scoring import AUTO_SHARES, distinct_shares, farthest_reaching, image_scores, peaks, reach, smooth


def test_no_smoothing_returns_the_maps():
    maps = torch.rand(2, 5, 7)
    assert torch.equal(smooth(maps, 0), maps)


def test_smoothing_spreads_a_spike_evenly_and_keeps_its_place_and_mass():
    maps = torch.zeros(1, 21, 21)
    maps[0, 10, 10] = 1.0
    out = smooth(maps, 1.5)[0]
    assert out.argmax().item() == 10 * 21 + 10
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)  # far from the borders: nothing lost
    torch.testing.assert_close(out, out.T)  # the same along both axes
    torch.testing.assert_close(out, out.flip(0))
    assert 0 < out[10, 12].item() < out[10, 11].item() < out[10, 10].item() < 1.0


def test_smoothing_keeps_a_flat_map_flat_up_to_its_borders():
    flat = torch.full((1, 6, 9), 3.0)
    torch.testing.assert_close(smooth(flat, 2.0), flat)  # reflecting borders bring in nothing else


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (2, 2), (3, 40)])
def test_smoothing_tiny_or_thin_maps_works(shape):
    """A radius of 12 cells on maps of 1 to 3 rows: each cell a weighted mean of its map's cells, a flat map flat."""
    maps = torch.rand(2, *shape)
    out = smooth(maps, 4.0)
    assert out.shape == maps.shape
    low, high = maps.flatten(1).min(1).values, maps.flatten(1).max(1).values
    assert ((out >= low[:, None, None] - 1e-6) & (out <= high[:, None, None] + 1e-6)).all()
    torch.testing.assert_close(smooth(torch.full((1, *shape), 3.0), 4.0), torch.full((1, *shape), 3.0))


def test_the_image_score_is_the_mean_of_the_top_share_of_cells():
    maps = torch.arange(100, dtype=torch.float32).view(1, 10, 10)
    assert image_scores(maps, sigma=0, top_share=0.05).tolist() == [np.mean([95, 96, 97, 98, 99])]
    assert image_scores(maps, sigma=0, top_share=1.0).tolist() == [49.5]
    assert image_scores(maps, sigma=0, top_share=1e-6).tolist() == [99.0]  # one cell at least


def noisy_pile(side: int, seed: int) -> torch.Tensor:
    """Maps of 100 images, 20 x 20 cells of noise about 1; the first 10 hold a defect of side x side cells."""
    rng = np.random.default_rng(seed)
    maps = torch.from_numpy(np.abs(rng.normal(1.0, 0.1, (100, 20, 20))).astype(np.float32))
    maps[:10, 2:2 + side, 3:3 + side] += 0.4
    return maps


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("side, share", [(1, 0.0025), (6, 0.08)])  # 1 of 400 cells; 36 of 400
def test_the_pile_chooses_a_share_as_large_as_its_defects(side, share, seed):
    maps = noisy_pile(side, seed)
    candidates = {s: image_scores(maps, sigma=0, top_share=s) for s in AUTO_SHARES}
    assert farthest_reaching(candidates)[0] == share


def test_the_reach_of_a_pile_of_equal_scores_is_nil_a_tie_takes_the_smaller_share_and_nan_never_wins():
    assert reach(np.full(50, 2.0)) == 0.0
    assert farthest_reaching({0.04: np.full(50, 2.0), 0.01: np.full(50, 3.0)})[0] == 0.01
    spoilt = np.r_[np.full(49, 2.0), np.nan]
    share, reaches = farthest_reaching({0.01: spoilt, 0.04: np.r_[np.linspace(1, 2, 45), np.full(5, 9.0)]})
    assert share == 0.04 and np.isnan(reaches[0.01])


def test_shares_that_take_the_same_cells_are_one_candidate():
    assert distinct_shares(400) == AUTO_SHARES  # 20 x 20: 1, 2, 4, 8, 16, 32 cells
    assert distinct_shares(256) == (0.0025, 0.01, 0.02, 0.04, 0.08)  # 0.25 % and 0.5 % of 256: one cell each
    assert distinct_shares(4) == (0.0025,)


def test_a_small_hot_spot_outscores_a_map_that_is_a_little_warmer_everywhere():
    maps = torch.full((2, 20, 20), 1.0)
    maps[0] += 0.2  # warmer everywhere: lighting, texture
    maps[1, 4:6, 4:6] = 5.0  # a small defect: 4 of 400 cells, 1 %
    first, second = image_scores(maps, sigma=1.0, top_share=0.01)
    assert second > first


def test_the_score_smooths_before_it_takes_the_top():
    maps = torch.zeros(1, 9, 9)
    maps[0, 4, 4] = 1.0
    assert image_scores(maps, sigma=1.0, top_share=1 / 81)[0] < 1.0
    assert image_scores(maps, sigma=0.0, top_share=1 / 81)[0] == 1.0


def test_peaks_are_the_centres_of_the_largest_cells_as_fractions():
    maps = torch.zeros(3, 4, 16)
    maps[0, 3, 0] = 1.0
    maps[1, 0, 15] = 1.0
    maps[2, 1, 8] = 1.0
    np.testing.assert_allclose(peaks(maps), [[0.875, 1 / 32], [0.125, 31 / 32], [0.375, 17 / 32]])


def test_a_peak_is_where_the_smoothed_map_is_largest():
    """A lone spike loses, once smoothed, to a broad hot area: the peak marks the defect, not one noisy cell."""
    maps = torch.zeros(1, 12, 12)
    maps[0, 2, 2] = 3.0
    maps[0, 7:10, 7:10] = 1.5
    assert peaks(maps, sigma=0).tolist() == [[2.5 / 12, 2.5 / 12]]
    assert peaks(maps, sigma=1.5).tolist() == [[8.5 / 12, 8.5 / 12]]
