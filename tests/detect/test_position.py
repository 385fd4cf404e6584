"""Position (detect/position.py): each cell against the pile at that cell, and `auto` deciding from the pile."""

from __future__ import annotations

import pytest
import torch

from steelnb.detect.position import MIN_PILE, RELIABLE, cell_normalised, cells_for_pile, position_reliability


def _pile(n: int, pattern: float, seed: int = 0) -> torch.Tensor:
    """n log maps of 8 x 8: noise, plus a fixed place pattern of amplitude `pattern` (bright outer ring)."""
    generator = torch.Generator().manual_seed(seed)
    maps = torch.randn(n, 8, 8, generator=generator)
    ring = torch.ones(8, 8)
    ring[1:-1, 1:-1] = 0
    return maps + pattern * ring


def test_auto_normalises_a_pile_whose_places_hold_one_pattern():
    used, reliability = cells_for_pile(_pile(60, pattern=3.0), "auto")
    assert used == "zmax" and reliability > 0.9


def test_auto_leaves_a_pile_without_a_place_pattern_as_it_is():
    used, reliability = cells_for_pile(_pile(60, pattern=0.0), "auto")
    assert used == "none" and reliability < RELIABLE


def test_auto_leaves_a_small_pile_as_it_is_and_an_asked_normalisation_is_kept():
    assert cells_for_pile(_pile(MIN_PILE - 1, pattern=3.0), "auto") == ("none", None)
    assert cells_for_pile(_pile(60, pattern=0.0), "zmax")[0] == "zmax"
    with pytest.raises(ValueError, match="cells"):
        cells_for_pile(_pile(60, pattern=0.0), "ring")


def test_reliability_is_the_agreement_of_two_halves():
    assert position_reliability(_pile(200, pattern=3.0)) > position_reliability(_pile(200, pattern=0.3)) > \
        position_reliability(_pile(200, pattern=0.0))
    assert position_reliability(torch.zeros(30, 4, 4)) == 0.0  # flat medians: no pattern, no division by zero


def test_zmax_makes_a_bright_ring_normal_and_keeps_a_defect_on_it():
    """The ring is bright in every image (a part edge): normal there, as the inside is. A defect on the ring, as
    far above the ring as one inside is above the inside, stands out as far as that one."""
    maps = 5.0 + _pile(60, pattern=30.0) * 0.1  # noise of 0.1, the ring 3 above the inside
    maps[0, 0, 4] += 2.0  # a defect on the ring
    maps[1, 4, 4] += 2.0  # the same defect inside
    out = cell_normalised(maps, "zmax")
    normal = out[2:].median()
    assert (out[2:, 0, 4].median() - normal).abs() < 0.1 * (out[1, 4, 4] - normal)  # the ring itself is normal
    on_ring, inside = out[0, 0, 4] - normal, out[1, 4, 4] - normal
    assert on_ring > 3 * (out[2:] - normal).abs().max() and abs(float(on_ring - inside)) < 0.25 * float(inside)
    assert bool((out > 0).all())  # still on the maps' positive scale
