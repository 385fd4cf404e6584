"""From anomaly maps to image scores and peaks (steelnb/detect/scoring.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelnb.detect.scoring import image_scores, peaks, smooth


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
