"""The three patch scorers on tiny piles whose patches are their pixels (steelnb/detect/scorers/): what each
compares a patch with, and what it never compares it with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelnb.detect import DetectConfig, DetectError
from steelnb.detect.scorers import Mutual, PileBank, SelfSimilarity, make_scorer
from steelnb.detect.scorers.bank import NEIGHBOURS, outlying
from steelnb.errors import SteelnbWarning
from tests.detect.conftest import pixels_as_features


def flat_images(values, side: int = 4) -> np.ndarray:
    """uint8 (N, 1, side, side): image i is the grey level values[i] everywhere (every patch the same)."""
    values = np.asarray(values, np.uint8)
    return np.repeat(values, side * side).reshape(len(values), 1, side, side)


def bank_values(bank: PileBank, half: int) -> set[float]:
    index = bank.banks[half]
    return set(index.reconstruct_n(0, index.ntotal)[:, 0].tolist())


def score(scorer, images: np.ndarray) -> torch.Tensor:
    return scorer.maps(pixels_as_features(images), np.arange(len(images)))


@pytest.mark.parametrize("n, references", [(2, 256), (7, 256), (9, 4)])
def test_the_bank_scores_an_image_only_against_the_other_halfs_patches(n, references):
    values = np.arange(n) * 10
    images = flat_images(values)
    bank = PileBank(images=references, share=1.0, seed=1)
    bank.prepare(images, pixels_as_features)
    maps = score(bank, images)
    held = [bank_values(bank, 0), bank_values(bank, 1)]
    assert held[0] and held[1] and held[0].isdisjoint(held[1])
    assert sum(bank.banks[h].ntotal for h in (0, 1)) == min(n, references) * 16  # share 1: every patch
    for i, value in enumerate(values):
        other = held[1 - bank.half[i]]
        assert value not in other, "scored against a bank holding its own patches"
        expected = min(abs(value - v) for v in other)
        assert expected > 0
        torch.testing.assert_close(maps[i], torch.full((4, 4), float(expected)))


def test_the_banks_are_drawn_from_halves_of_the_references():
    bank = PileBank(images=256, share=0.25, seed=0)
    images = flat_images(np.arange(9) * 5)
    bank.prepare(images, pixels_as_features)
    sizes = [bank.banks[h].ntotal for h in (0, 1)]
    assert abs(sizes[0] - sizes[1]) <= 4 and sum(sizes) == 9 * 4  # a quarter of 16 patches from each image
    assert abs(int((bank.half == 0).sum()) - int((bank.half == 1).sum())) <= 1


def test_two_identical_images_are_each_scored_against_the_other():
    """Neither meets its own patches, yet the other's match them: every score is zero."""
    images = np.repeat(np.random.default_rng(0).integers(0, 255, (1, 1, 4, 4), dtype=np.uint8), 2, axis=0)
    bank = PileBank(share=1.0)
    bank.prepare(images, pixels_as_features)
    assert sorted(bank.half.tolist()) == [0, 1]
    assert score(bank, images).abs().max() == 0


def test_denoise_drops_its_share_of_each_bank():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 40, (8, 1, 4, 4)).astype(np.uint8)
    full = PileBank(images=8, share=1.0, seed=2)
    full.prepare(images, pixels_as_features)
    cleaned = PileBank(images=8, share=1.0, denoise=0.25, seed=2)
    cleaned.prepare(images, pixels_as_features)
    for h in (0, 1):
        before = full.banks[h].ntotal
        assert cleaned.banks[h].ntotal == before - int(0.25 * before)


def test_denoise_drops_the_patches_like_no_other_images():
    """Image 3's patches are near one another but far from every other image's: they go first."""
    rng = np.random.default_rng(1)
    patches = rng.uniform(0, 10, (64, 2)).astype(np.float32)
    owners = np.repeat(np.arange(4), 16)
    patches[owners == 3] = 200 + rng.uniform(0, 0.1, (16, 2))
    assert outlying(patches, owners, 0.25).tolist() == (owners == 3).tolist()
    assert not outlying(patches, owners, 0.0).any()
    assert NEIGHBOURS == 16  # the test leans on it: 16 own look-alikes are not enough to stay


@pytest.mark.parametrize("scorer", [PileBank(), Mutual()])
def test_a_pile_of_one_image_is_refused_by_the_scorers_that_need_the_pile(scorer):
    with pytest.raises(DetectError, match="use --method self"):
        scorer.prepare(flat_images([7]), pixels_as_features)


@pytest.mark.parametrize("band, expected", [(1.0, [20, 40 / 3, 40 / 3, 20]), (0.3, [10, 10, 10, 10])])
def test_mutual_takes_the_interval_mean_over_the_other_images(band, expected):
    """Image i against the 3 others: the mean of the lowest `band` share of its nearest-patch distances."""
    images = flat_images([0, 10, 20, 30])
    mutual = Mutual(references=3, band=band)
    mutual.prepare(images, pixels_as_features)
    maps = score(mutual, images)
    for i, value in enumerate(expected):
        torch.testing.assert_close(maps[i], torch.full((4, 4), float(value)))


def test_mutual_never_compares_an_image_with_itself():
    values = np.arange(9) * 10
    images = flat_images(values)
    mutual = Mutual(references=3, band=0.01, seed=0)  # the nearest of the references alone
    mutual.prepare(images, pixels_as_features)
    assert len(mutual.chosen) == 4
    maps = score(mutual, images)
    for i, value in enumerate(values):
        others = [values[j] for j in mutual.chosen if j != i][:3]
        torch.testing.assert_close(maps[i], torch.full((4, 4), float(min(abs(value - v) for v in others))))
        assert maps[i].min() > 0


def test_self_similarity_scores_what_is_unlike_the_rest_of_its_image():
    images = np.zeros((2, 1, 12, 12), np.uint8)
    images[1, 0, 3:5, 6:8] = 9  # a 2 x 2 blob
    maps = score(SelfSimilarity(radius=2), images)
    assert maps[0].abs().max() == 0  # a uniform image: every patch has its like
    assert maps[1, 3:5, 6:8].min() == 9 and maps[1].sum() == 4 * 9  # the blob matches only itself, nearby


def test_self_similarity_does_not_let_a_patch_match_its_own_neighbourhood():
    images = np.zeros((1, 1, 1, 9), np.uint8)
    images[0, 0, 0, :2] = 5  # two like patches side by side, the rest of the row unlike them
    assert score(SelfSimilarity(radius=1), images)[0, 0, :2].tolist() == [5.0, 5.0]


def test_self_similarity_works_on_grids_smaller_than_its_radius():
    """A 2 x 2 grid under radius 6: the radius shrinks to 0 (every other patch counts), and the user is told."""
    images = np.array([0, 1, 5, 9], np.uint8).reshape(1, 1, 2, 2)
    with pytest.warns(SteelnbWarning, match=r"the 2 x 2 grid is too small for --self-radius 6 \(used 0\)"):
        maps = score(SelfSimilarity(radius=6), images)
    assert maps.tolist() == [[[1.0, 1.0], [4.0, 4.0]]]


def test_self_similarity_at_several_radii_is_each_radius_alone():
    features = torch.randn(3, 9, 7, 5)
    together = SelfSimilarity().maps_at(features, (1, 2, 3))
    for i, radius in enumerate((1, 2, 3)):  # each radius's mask grows on the last's: the same as one radius alone
        torch.testing.assert_close(together[:, i], SelfSimilarity(radius).maps(features, np.arange(3)))
    with pytest.raises(ValueError, match="radii must ascend"):
        SelfSimilarity().maps_at(features, (2, 1))
    small = torch.randn(2, 5, 5, 3)  # radius 6 shrinks to 2 here, and says so
    with pytest.warns(SteelnbWarning, match=r"too small for --self-radius 6 \(used 2\)"):
        shrunk = SelfSimilarity().maps_at(small, (1, 2, 6))
    torch.testing.assert_close(shrunk[:, 2], shrunk[:, 1])
    torch.testing.assert_close(shrunk[:, 0], SelfSimilarity(1).maps(small, np.arange(2)))


def test_make_scorer_builds_the_method_named_with_its_options():
    bank = make_scorer(DetectConfig(method="bank", bank_images=10, bank_share=0.5, denoise=0.1, seed=3))
    assert isinstance(bank, PileBank) and (bank.images, bank.share, bank.denoise, bank.seed) == (10, 0.5, 0.1, 3)
    assert make_scorer(DetectConfig(method="self", self_radius=4)).radius == 4
    mutual = make_scorer(DetectConfig(method="mutual", references=5, mutual_band=0.5))
    assert isinstance(mutual, Mutual) and (mutual.references, mutual.band) == (5, 0.5)
