"""`detect`: a planted defect found at its known place, piles at the edges (one image, identical images, all
defective), what the run measures where labels are known, and the settings it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelnb.detect import DetectConfig, DetectError, detect
from steelnb.detect.run import _no_share_choice
from steelnb.detect.scoring import image_scores, smooth
from steelnb.validation import ConfigError
from tests.detect.conftest import FAST, pile, plant, texture

SIZE, SIDE = 128, 16  # pixels: the images, the planted square


def config(**settings) -> DetectConfig:
    return DetectConfig(**{**FAST, "max_side": SIZE, **settings})


@pytest.mark.parametrize("method", ["self", "bank", "mutual"])
@pytest.mark.parametrize("target, top, left, value", [(3, 40, 70, 255), (9, 100, 8, 10)])
def test_a_planted_defect_is_ranked_first_flagged_and_found_at_its_place(method, target, top, left, value):
    images = plant(texture(12, SIZE, seed=target), target, top, left, SIDE, value)
    result = detect(config(method=method, seed=target), pile(images))
    table = result.table
    assert table.at[target, "rank"] == 1
    assert table.at[target, "defective"] == 1
    if method != "mutual":  # the mutual scores of 12 images are too close for the decision to flag it alone
        assert table["defective"].sum() == 1
    cell = SIZE / result.maps.shape[1]  # pixels per map cell: the peak may miss by one
    peak_y, peak_x = table.at[target, "peak_y"] * SIZE, table.at[target, "peak_x"] * SIZE
    assert top - cell <= peak_y <= top + SIDE + cell and left - cell <= peak_x <= left + SIDE + cell, \
        (peak_y, peak_x)
    assert result.maps.shape == (12, SIZE // 8, SIZE // 8)


@pytest.mark.parametrize("target, top, left, value", [(3, 40, 70, 255), (9, 100, 8, 10)])
def test_the_shipped_settings_find_a_planted_defect_at_its_place(target, top, left, value):
    """DetectConfig's defaults (method, backbone and its offline ImageNet weights, feature levels, smoothing), only
    the image size and the device chosen: what a user of `steelnb detect` gets."""
    images = plant(texture(12, SIZE, seed=target), target, top, left, SIDE, value)
    result = detect(DetectConfig(max_side=SIZE, device="cpu", seed=target), pile(images))
    table = result.table
    assert table.at[target, "rank"] == 1 and table.at[target, "defective"] == 1
    cell = SIZE / result.maps.shape[1]
    peak_y, peak_x = table.at[target, "peak_y"] * SIZE, table.at[target, "peak_x"] * SIZE
    assert top - cell <= peak_y <= top + SIDE + cell and left - cell <= peak_x <= left + SIDE + cell, \
        (peak_y, peak_x)


def test_the_image_scores_take_the_share_the_pile_chose_and_say_so():
    images = plant(texture(24, SIZE, seed=3), 5, 40, 60, SIDE, 10)
    chosen = detect(config(seed=0, peers=10), pile(images))  # 24 images: too few for the default's 40 peers
    shared = chosen.metrics["top_share"]
    assert shared["chosen_from"] == [0.0025, 0.01, 0.02, 0.04, 0.08]  # of 16 x 16 cells: 0.5 % is 0.25 %'s one cell
    assert list(shared["reach"]) == [str(share) for share in shared["chosen_from"]]
    assert shared["used"] == max(shared["chosen_from"], key=lambda share: shared["reach"][str(share)])
    smoothed = smooth(torch.from_numpy(chosen.maps), config().sigma)
    np.testing.assert_allclose(image_scores(smoothed, sigma=0, top_share=shared["used"]), chosen.table["score"],
                               rtol=1e-5)  # the maps (scaled by peers) read at the chosen share: the table's scores
    assert chosen.metrics["peers"]["used"]
    given = detect(config(seed=0, top_share=0.02), pile(images)).metrics["top_share"]
    assert given == {"used": 0.02, "why": "--top-share 0.02"}
    small = detect(config(seed=0), pile(images[:12])).metrics["top_share"]
    assert small == {"used": 0.01, "why": "12 images: fewer than 20, too few to choose the share from; 0.01 taken"}


def test_maps_that_are_not_finite_keep_one_share():
    maps = torch.ones(24, 4, 4)
    assert _no_share_choice(maps, config()) is None
    maps[3, 0, 0] = float("nan")
    assert _no_share_choice(maps, config()).startswith("some map values are not finite numbers")


def test_a_pile_of_one_image_needs_the_self_method():
    one = pile(texture(1, 64))
    for method in ("bank", "mutual"):
        with pytest.raises(DetectError, match="at least 2 images, the pile has 1; use --method self"):
            detect(config(method=method, max_side=64), one)
    result = detect(config(method="self", max_side=64), one)
    assert result.table["rank"].tolist() == [1] and result.table["defective"].tolist() == [0]


@pytest.mark.parametrize("method", ["bank", "self", "mutual"])
@pytest.mark.parametrize("n", [2, 5])
def test_identical_images_flag_nothing(method, n):
    same = np.repeat(texture(1, 64), n, axis=0)
    result = detect(config(method=method, max_side=64, batch_size=3), pile(same))
    assert result.table["defective"].sum() == 0
    assert np.isfinite(result.table["score"]).all() and sorted(result.table["rank"]) == list(range(1, n + 1))


def test_a_pile_that_is_all_defective_runs_and_is_not_scored():
    images = texture(6, 64)
    for i in range(6):
        images = plant(images, i, 8 * i, 40 - 4 * i, 12, 250)
    result = detect(config(method="self", max_side=64), pile(images, defective=np.ones(6)))
    assert result.metrics["scored"] == "not scored: every image of pile is defective"
    assert "auroc" not in result.metrics and result.metrics["defect_rate"] == 1.0


def test_labels_only_measure_the_answer():
    """The same pile with and without its flags: the same scores and decisions; with them, the numbers."""
    images = texture(12, 64, seed=5)
    for i in (2, 7):
        images = plant(images, i, 20, 20, 12, 250)
    truth = np.isin(np.arange(12), (2, 7)).astype(int)
    blind = detect(config(method="bank", max_side=64), pile(images))
    known = detect(config(method="bank", max_side=64, calibration_share=0.5), pile(images, defective=truth))
    for column in ("score", "rank", "defective", "peak_y", "peak_x"):
        assert blind.table[column].tolist() == known.table[column].tolist()
    assert "truth" not in blind.table and known.table["truth"].tolist() == truth.tolist()
    assert blind.metrics["scored"].startswith("not scored: pile has no defect")
    metrics = known.metrics
    assert metrics["auroc"] == 1.0 and metrics["ap"] == 1.0
    assert metrics["label_free"]["mdr"] == 0.0 and metrics["label_free"]["flagged"] == 2
    assert metrics["everything_defect_free"] == {"acc": 10 / 12, "mdr": 2 / 12, "fdr": 0.0, "eacc": 10 / 12}
    calibrated = metrics["calibrated"]  # chosen on half of each class: 1 defective and 5 defect-free images
    assert (calibrated["n_calibration"], calibrated["n_scored"], calibrated["target_mdr"]) == (6, 6, 0.05)
    assert {"acc", "mdr", "fdr", "eacc", "threshold"} <= set(calibrated)


def test_the_run_records_what_it_ran_on():
    result = detect(config(method="self", max_side=64), pile(texture(3, (64, 32))))
    metrics = result.metrics
    assert metrics["n_images"] == 3 and metrics["image_shape"] == [1, 64, 32] and metrics["grid"] == [8, 4]
    assert metrics["method"] == "self" and metrics["run"]["backbone"] == "resnet18"
    assert metrics["run"]["weights"] == "random" and metrics["run"]["s_per_image"] > 0


@pytest.mark.parametrize("tile", [64, 96, 128])
def test_a_tile_down_to_its_least_works(tile):
    """--tile 64 to 128 (64 and 96 cut these 128-px images into tiles): the overlap shrinks with the tile."""
    images = plant(texture(6, SIZE, seed=1), 4, 40, 70, SIDE, 255)
    whole = detect(config(method="self"), pile(images))
    tiled = detect(config(method="self", tile=tile), pile(images))
    assert tiled.maps.shape == whole.maps.shape and tiled.table.at[4, "rank"] == 1


@pytest.mark.parametrize("tile, strides", [(100, "8,16"), (80, "8,32")])
def test_a_tile_off_the_coarsest_stride_is_refused_by_name(tile, strides):
    with pytest.raises(ConfigError, match=f"--tile {tile} must be a multiple of"):
        config(method="self", tile=tile, strides=strides)  # refused with the config, before any image is read


def test_metrics_say_which_cell_normalisation_the_pile_got():
    """`--cells auto` decides from the pile: too few images for a place's median, none; 24 images of one layout
    (a texture and a bright frame in every image), zmax, with the halves' agreement beside it."""
    small = detect(config(), pile(texture(12, SIZE, seed=0))).metrics
    assert (small["cells"], small["cells_used"], small["position_reliability"]) == ("auto", "none", None)
    framed = texture(24, SIZE, seed=1)
    framed[:, :8], framed[:, -8:], framed[:, :, :8], framed[:, :, -8:] = 255, 255, 255, 255
    aligned = detect(config(), pile(framed)).metrics
    assert aligned["cells_used"] == "zmax" and aligned["position_reliability"] >= 0.5
    assert detect(config(cells="none"), pile(framed)).metrics["cells_used"] == "none"
    one_pass = detect(config(rescore=0, discriminator=0), pile(framed)).metrics  # the same maps whatever the cells
    asked = detect(config(cells="none", rescore=0, discriminator=0), pile(framed)).metrics
    assert asked["cells_used"] == "none" and asked["position_reliability"] == one_pass["position_reliability"]


def test_the_radius_read_from_the_pile_is_the_one_that_reaches_farthest_and_scores_as_given():
    images = plant(texture(12, 256, seed=4), 2, 60, 90, 72, 255)  # a defect of 9 x 9 cells at stride 8
    read = detect(config(max_side=256, self_radius=0, seed=0), pile(images))
    radius = read.metrics["self_radius"]
    assert radius["chosen_from"] == [1, 2, 6] and list(radius["reach"]) == ["1", "2", "6"]
    assert radius["used"] == max(radius["chosen_from"], key=lambda r: (radius["reach"][str(r)], -r))
    assert radius["used"] == 6  # under radius 1 or 2 the wide defect finds its like in its own surroundings
    given = detect(config(max_side=256, self_radius=radius["used"], seed=0), pile(images))
    assert given.metrics["self_radius"] == {"used": radius["used"], "why": f"--self-radius {radius['used']}"}
    np.testing.assert_allclose(read.table["score"], given.table["score"], rtol=1e-6)
    assert detect(config(method="mutual"), pile(images[:4, :128, :128])).metrics["self_radius"] is None


def test_a_radius_read_from_the_pile_is_for_self_alone():
    with pytest.raises(ConfigError, match=r"--self-radius 0 \(chosen from the pile\) needs --method self"):
        config(method="fused", self_radius=0)
