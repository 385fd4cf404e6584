"""Patch features of any size and aspect (steelnb/patches.py): the tiles' spans, and tiled features against
untiled ones on a real (small, random) timm backbone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from steelnb.backbones import create_backbone
from steelnb.patches import PatchFeatures, feature_levels, tile_spans


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return create_backbone("resnet18", "random")


def texture(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, 1, H, W) smooth noise: every place looks different, so misplaced cells would show."""
    rng = np.random.default_rng(seed)
    smooth = gaussian_filter(rng.normal(0, 1, (n, height, width)), (0, 2, 2))
    return np.clip(128 + 40 * smooth / smooth.std(), 0, 255).astype(np.uint8)[:, None]


def kept_cover(spans: list[tuple[int, int, int]]) -> list[int]:
    """How many tiles keep each pixel."""
    length = spans[-1][2]
    count = [0] * length
    for _, keep_from, keep_to in spans:
        for pixel in range(keep_from, keep_to):
            count[pixel] += 1
    return count


@pytest.mark.parametrize("length", [64, 96, 128, 160, 192, 320, 336, 1024, 1600, 2048])
@pytest.mark.parametrize("tile, overlap", [(64, 32), (128, 32), (128, 64), (256, 128), (1024, 128)])
def test_the_kept_parts_cover_the_length_exactly_once_aligned_and_cut_inside_overlaps(length, tile, overlap):
    align = 16
    spans = tile_spans(length, tile, overlap, align)
    assert kept_cover(spans) == [1] * length
    for start, keep_from, keep_to in spans:
        assert start % align == keep_from % align == keep_to % align == 0
        assert 0 <= start <= keep_from < keep_to <= min(start + tile, length)  # kept inside its own tile
        assert start + tile <= length or len(spans) == 1  # a tile never reaches past the image
    for (start, _, cut), (next_start, next_from, _) in itertools.pairwise(spans):
        assert cut == next_from
        assert next_start < cut < start + tile  # the cut lies where both tiles see the image
        # ... near the middle of that overlap, so each side keeps away from its own tile's edge
        assert abs(cut - (next_start + start + tile) / 2) < align


@pytest.mark.parametrize("length", [16, 64, 128])
def test_a_length_within_one_tile_is_one_tile(length):
    assert tile_spans(length, 128, 32, 16) == [(0, 0, length)]


@pytest.mark.parametrize("length, tile, overlap, message", [
    (100, 128, 32, "multiples of 16"),
    (128, 100, 32, "multiples of 16"),
    (128, 128, 24, "multiples of 16"),
    (256, 128, 128, "overlap must be in"),
    (256, 128, 144, "overlap must be in"),
    (256, 128, -16, "overlap must be in"),
])
def test_bad_tiling_arguments_are_refused(length, tile, overlap, message):
    with pytest.raises(ValueError, match=message):
        tile_spans(length, tile, overlap, 16)


def test_the_feature_levels_are_found_by_stride(resnet18):
    assert len(feature_levels(resnet18.model, (8, 16))) == 2
    with pytest.raises(ValueError, match="no feature map at stride 64"):
        feature_levels(resnet18.model, (8, 64))


def test_tiled_features_have_the_untiled_shape_and_agree_away_from_the_cuts(resnet18):
    images = texture(2, 192, 320)
    whole = PatchFeatures(resnet18, tile=1024)(images)
    extractor = PatchFeatures(resnet18, tile=128, overlap=64)
    tiled = extractor(images)
    assert whole.shape == tiled.shape == (2, 24, 40, 384)  # stride 8; layer2 (128) + layer3 (256) channels
    error = ((tiled - whole).norm(dim=-1) / whole.norm(dim=-1)).numpy()
    cell = extractor.stride
    cuts_y = [keep_from // cell for _, keep_from, _ in tile_spans(192, 128, 64, 16)[1:]]
    cuts_x = [keep_from // cell for _, keep_from, _ in tile_spans(320, 128, 64, 16)[1:]]
    assert cuts_y and cuts_x, "the image must really be tiled both ways"
    near = np.zeros(error.shape[1:], bool)
    for cut in cuts_y:
        near[max(0, cut - 2):cut + 2] = True
    for cut in cuts_x:
        near[:, max(0, cut - 2):cut + 2] = True
    assert error[:, ~near].max() < 1e-4  # away from the cuts: the same numbers
    assert error.max() < 0.1  # at the cuts: close


def test_an_image_smaller_than_a_tile_and_one_tall_strip(resnet18):
    extractor = PatchFeatures(resnet18, tile=128, overlap=64)
    assert extractor(texture(1, 32, 32)).shape == (1, 4, 4, 384)
    strip = texture(1, 512, 64)  # tiled along its length only
    assert extractor(strip).shape == PatchFeatures(resnet18, tile=1024)(strip).shape == (1, 64, 8, 384)


def test_the_features_do_not_depend_on_the_batch(resnet18):
    images = texture(3, 64, 96, seed=1)
    extractor = PatchFeatures(resnet18, tile=64, overlap=32)
    together = extractor(images)
    alone = torch.cat([extractor(images[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_stride_and_alignment_follow_the_levels(resnet18):
    extractor = PatchFeatures(resnet18, strides=(8, 16, 32), tile=128, overlap=64)
    assert (extractor.stride, extractor.align) == (8, 32)
    assert extractor(texture(1, 64, 160)).shape[1:3] == (8, 20)
