"""The defect region: a square centred on the anomaly peak, clamped into the image, resized for the network."""

import numpy as np
import pytest

from steelnb.inspection.crops import (
    anomalous_regions,
    crop_boxes,
    crop_side,
    crop_weights,
    defect_crops,
    map_share,
    region_extents,
)


def test_the_side_is_a_share_of_the_shorter_side():
    assert crop_side(256, 1600, 0.4) == 102
    assert crop_side(200, 200, 1.0) == 200
    assert crop_side(10, 10, 0.01) == 1


def test_a_crop_is_centred_on_the_peak():
    top, left = crop_boxes(np.array([0.5]), np.array([0.25]), 100, 200, side=20)[0]
    assert (top + 10, left + 10) == (50, 50)


@pytest.mark.parametrize("peak, box", [((0.0, 0.0), (0, 0)), ((1.0, 1.0), (70, 170)), ((0.02, 0.99), (0, 170)),
                                       ((0.99, 0.01), (70, 0))])
def test_a_crop_at_a_border_is_moved_inside_the_image(peak, box):
    assert tuple(crop_boxes(np.array([peak[0]]), np.array([peak[1]]), 100, 200, side=30)[0]) == box


def test_a_crop_larger_than_the_image_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        crop_boxes(np.array([0.5]), np.array([0.5]), 20, 40, side=30)


def test_the_crop_holds_the_planted_defect_at_its_centre():
    images = np.full((2, 1, 120, 160), 100, np.uint8)
    images[0, :, 20:26, 130:136] = 255  # near the right border
    images[1, :, 60:66, 40:46] = 0
    peak_y = np.array([23 / 120, 63 / 120])
    peak_x = np.array([133 / 160, 43 / 160])
    crops = defect_crops(images, peak_y, peak_x, share=0.25, size=30)  # 30 px squares, not resized
    assert crops.shape == (2, 1, 30, 30)
    assert crops[0].max() == 255 and crops[1].min() == 0
    middle = crops[1, 0, 12:18, 12:18]
    assert (middle == 0).all()  # centred: the dark square sits in the middle


def test_crops_are_resized_and_keep_their_channels():
    images = np.zeros((3, 3, 64, 96), np.uint8)
    images[:, 0] = np.array([10, 20, 30], np.uint8)[:, None, None]  # each image its own level
    images[:, 1] = 200
    images[:, 2, :, 48:] = 255  # an edge down the middle of the 32 px crop (rows 16-47, columns 32-63)
    crops = defect_crops(images, np.full(3, 0.5), np.full(3, 0.5), share=0.5, size=48)
    assert crops.shape == (3, 3, 48, 48) and crops.dtype == np.uint8
    assert (crops[:, 0] == np.array([10, 20, 30])[:, None, None]).all() and (crops[:, 1] == 200).all()
    assert (crops[:, 2, :, :20] == 0).all() and (crops[:, 2, :, -20:] == 255).all()  # the edge still mid-crop


def test_the_defect_region_is_the_peaks_part_above_half_way_from_the_median():
    maps = np.zeros((3, 10, 10))
    maps[0, 2:5, 3] = 1.0  # 3 x 1 cells
    maps[0, 8, 8] = 0.4  # below half the peak: not the region
    maps[1, 1:3, 1:7] = [0.6, 0.7, 0.8, 1.0, 0.9, 0.3]  # 2 x 5 cells above 0.5; the last column is not
    maps[2, 5, 0:2], maps[2, 5, 6] = 1.0, 0.9  # a second region above half the peak, not joined to the peak's
    extents = region_extents(maps, 100, 200)  # cells of 10 x 20 px; the shorter side is 100 px
    assert extents.tolist() == pytest.approx([0.3, 1.0, 0.4])


def test_the_maps_share_is_twice_the_median_extent_at_most_the_whole_side():
    maps = np.zeros((3, 10, 10))
    for i, cells in enumerate((1, 2, 4)):
        maps[i, 0, :cells] = 1.0
    assert map_share(maps, 100, 100) == pytest.approx(0.4)  # median extent 0.2
    assert map_share(np.ones((2, 10, 10)), 100, 100) == 1.0  # a flat map: the whole image


def test_separate_regions_are_found_strongest_first_and_capped():
    maps = np.zeros((10, 10))
    maps[1:3, 1:3] = 0.8  # a 2 x 2 region, peak 0.9 at (2, 2)
    maps[2, 2] = 0.9
    maps[7, 6:9] = 1.0  # the strongest: 1 x 3 cells, its first cell (7, 6) the peak
    maps[5, 0] = 0.6  # a third region, weaker
    found = anomalous_regions(maps, limit=3)
    assert found[:, 2].tolist() == [1.0, 0.9, 0.6]
    assert found[:, :2].tolist() == [[0.75, 0.65], [0.25, 0.25], [0.55, 0.05]]  # cell centres as fractions
    assert len(anomalous_regions(maps, limit=2)) == 2
    assert anomalous_regions(maps, limit=3, above=0.7)[:, 2].tolist() == [1.0, 0.9]  # the others must clear it
    assert anomalous_regions(maps, limit=3, above=5.0)[:, 2].tolist() == [1.0]  # the strongest always counts


def test_touching_cells_are_one_region():
    maps = np.zeros((6, 6))
    maps[1, 1:5] = 1.0
    maps[2:5, 4] = 0.9
    assert len(anomalous_regions(maps, limit=3)) == 1


def test_crop_weights_are_high_on_the_defect_and_zero_on_the_texture_around_it():
    maps = np.full((1, 16, 16), 0.2, np.float32)  # the texture's level, with a little noise
    maps[0] += np.random.default_rng(0).normal(scale=0.01, size=(16, 16)).astype(np.float32)
    maps[0, 6:8, 10:12] = 1.0  # the defect: 2 x 2 cells around (7, 11)
    weights = crop_weights(maps, np.array([0.4375]), np.array([0.6875]), 128, 128, share=0.5, size=32)
    assert weights.shape == (1, 32, 32) and weights.min() >= 0 and weights.max() <= 1
    assert weights[0, 14:18, 14:18].min() > 0.6  # the crop's centre is the defect
    assert weights[0, :4].max() < 0.05 and weights[0, :, :4].max() < 0.05  # its borders are texture
    region = crop_weights(maps, np.array([0.4375]), np.array([0.6875]), 128, 128, share=0.5, size=32, region=True)
    assert set(np.unique(region)) == {0.0, 1.0} and region[0, 14:18, 14:18].all() and not region[0, :4].any()
