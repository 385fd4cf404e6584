"""The defect region: a square centred on the anomaly peak, clamped into the image, resized for the network."""

import numpy as np
import pytest

from steelnb.inspection.crops import crop_boxes, crop_side, defect_crops


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
    images = np.random.default_rng(0).integers(0, 256, (3, 3, 64, 96), dtype=np.uint8)
    crops = defect_crops(images, np.full(3, 0.5), np.full(3, 0.5), share=0.5, size=48)
    assert crops.shape == (3, 3, 48, 48) and crops.dtype == np.uint8
