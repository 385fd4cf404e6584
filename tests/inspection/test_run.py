"""Detect, then group: piles where nothing is found, where everything is defective, and the written folder."""

import json

import numpy as np
import pandas as pd
import pytest

from steelnb.data import load_dataset
from steelnb.detect import DetectConfig
from steelnb.inspection import INSPECT_FILES, TypesConfig, inspect_pile, write_inspection
from steelnb.inspection.crops import crop_side, map_share
from steelnb.inspection.run import NOTHING_FLAGGED, fit_sides

# Random features flag little at the default cutoff: a low one makes sure the type stage has images to group.
FAST = dict(max_side=64, method="self", backbone="resnet18", weights="random", device="cpu", overlays=2, cutoff=0.5)


def pile(n=20, rate=0.3, size=64, seed=0):
    return load_dataset("synthetic", image_size=size, n_images=n, defect_rate=rate, seed=seed)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    """A pile with 2 types asked for, written into a folder."""
    detect_config, types_config = DetectConfig(**FAST), TypesConfig(types=2, profile="ci", gallery=3)
    found = inspect_pile(detect_config, types_config, pile())
    out = tmp_path_factory.mktemp("inspection")
    write_inspection(found, detect_config, types_config, out)
    return found, out


def test_only_the_flagged_images_are_cropped_and_grouped(grouped):
    found, _ = grouped
    flagged = np.flatnonzero(found.table["defective"] == 1)
    assert 3 <= len(flagged) < len(found.table)
    assert found.grouped.tolist() == flagged.tolist()
    assert len(found.crops) == len(flagged) and found.crops.shape[-2:] == (64, 64)  # the ci profile's image_size
    assert set(found.table["type"].iloc[flagged]) <= {0, 1}
    assert (found.table["type"].drop(index=flagged) == -1).all()
    assert found.metrics["type_stage"]["how"] == "given: 2 types"
    crop = found.metrics["type_stage"]["crop"]
    share = map_share(found.detection.maps[flagged], 64, 64)  # detection's sigma is 0: the raw maps
    assert crop["share_of_shorter_side"] == round(share, 4) and crop["how"].startswith("2 x the median extent")
    assert crop["side_px"] == crop_side(64, 64, share) and crop["resized_to"] == 64


def test_the_folder_holds_every_image_type_and_crop_and_a_gallery_per_type(grouped):
    _, out = grouped
    # no type_choice.csv: the number was given; no report: the command line writes it
    assert {p.name for p in out.iterdir()} == set(INSPECT_FILES) - {"type_choice.csv", "report.html", "report_files"}
    scores = pd.read_csv(out / "scores.csv", keep_default_na=False, na_values=[""])
    assert len(scores) == 20 and {"score", "defective", "type", "crop", "overlay", "label"} <= set(scores.columns)
    flagged = scores[scores.defective == 1]
    assert sorted(flagged.crop) == sorted(f"crops/{p.name}" for p in (out / "crops").iterdir())  # a crop each
    assert (scores[scores.defective == 0].type == -1).all()
    types = pd.read_csv(out / "types.csv")
    assert types.type.tolist() == [0, 1] and types["count"].sum() == len(flagged) and (types["count"] > 0).all()
    assert types.gallery.tolist() == ["galleries/type_00.png", "galleries/type_01.png"]
    assert sorted(p.name for p in (out / "galleries").iterdir()) == ["all_types.png", "type_00.png", "type_01.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"auroc", "label_free", "type_stage", "two_cluster", "five_cluster", "types"} <= set(metrics)
    assert metrics["type_stage"]["run"]["backbone"] == "resnet18"
    config = json.loads((out / "config.json").read_text())
    assert config["types"]["types"] == 2 and config["type_training"]["eval_clusters"] == 2


def test_a_pile_with_no_defect_found_stops_after_detection_and_says_so(tmp_path):
    detect_config = DetectConfig(**{**FAST, "cutoff": 50.0})  # nothing clears this threshold
    found = inspect_pile(detect_config, TypesConfig(profile="ci"), pile(n=12))
    assert found.grouping is None and len(found.grouped) == 0 and len(found.crops) == 0
    assert found.note == NOTHING_FLAGGED and found.metrics["type_stage"]["k"] == 0
    assert (found.table["type"] == -1).all()
    assert found.metrics["types"] == "not scored: no truly defective image was flagged"
    write_inspection(found, detect_config, TypesConfig(profile="ci"), tmp_path)
    assert pd.read_csv(tmp_path / "types.csv").empty
    assert not (tmp_path / "galleries").exists() and not (tmp_path / "crops").exists()


def test_a_pile_where_every_image_is_defective_is_grouped_whole():
    everything = pile(n=14, rate=1.0, seed=2)
    found = inspect_pile(DetectConfig(**FAST), TypesConfig(types=3, profile="ci", crop_share=0.5), everything,
                         only_flagged=False)
    assert len(found.grouped) == 14 and (found.table["type"] >= 0).all()
    assert found.metrics["type_stage"]["crop"] == {"share_of_shorter_side": 0.5, "side_px": 32,
                                                   "how": "given (--crop-share)", "resized_to": 64}
    assert found.metrics["two_cluster"] == "not scored: every image of the pile is defective"
    assert found.metrics["five_cluster"].startswith("not scored")
    assert found.metrics["types"]["n"] == 14 and found.metrics["types"]["false_alarms"] == 0


def test_an_all_defective_pile_inspected_as_any_pile_groups_what_detection_flags():
    everything = pile(n=12, rate=1.0, seed=4)
    found = inspect_pile(DetectConfig(**{**FAST, "cutoff": 0.1}), TypesConfig(types=2, profile="ci"), everything)
    flagged = np.flatnonzero(found.table["defective"] == 1)
    assert found.grouped.tolist() == flagged.tolist() and len(flagged) >= 2
    assert found.metrics["two_cluster"] == "not scored: every image of the pile is defective"
    assert found.metrics["types"]["n"] == len(flagged) and found.metrics["types"]["false_alarms"] == 0


def test_the_number_of_types_is_chosen_when_not_given():
    found = inspect_pile(DetectConfig(**{**FAST, "cutoff": 0.1}), TypesConfig(profile="ci", max_types=4),
                         pile(n=16, rate=0.5, seed=3))
    stage = found.metrics["type_stage"]
    assert stage["how"].startswith("silhouette: k = ")
    assert found.grouping.choice.k.tolist() == list(range(2, min(4, len(found.grouped) - 1) + 1))
    assert found.grouping.k == stage["k"] == len(stage["sizes"])


def test_more_types_asked_for_than_images_flagged_gives_one_type_per_image():
    found = inspect_pile(DetectConfig(**FAST), TypesConfig(types=50, profile="ci"), pile(n=10))
    n = len(found.grouped)
    assert found.grouping.k == n
    assert found.note.startswith(f"50 types asked for, but only {n} images were flagged")


def test_sides_are_fitted_to_the_detection_grid_only_when_needed():
    odd = load_dataset("synthetic", image_size=72, n_images=2)
    fitted = fit_sides(odd, 32)
    assert fitted.images.shape[-2:] == (64, 64) and fitted.meta["resized_for_detection"] == [72, 72]
    assert fit_sides(fitted, 32) is fitted


def test_one_type_asked_for_needs_no_training():
    from steelnb.data import UNKNOWN, ImageSet
    from steelnb.inspection.grouping import group_types

    crops = ImageSet("crops", np.zeros((4, 1, 32, 32), np.uint8), np.full(4, UNKNOWN), np.full(4, UNKNOWN, np.int8),
                     (), tuple("abcd"))
    found = group_types(crops, TypesConfig(types=1, profile="ci"))
    assert found.k == 1 and found.types.tolist() == [0, 0, 0, 0] and found.how == "given: 1 type"
    assert found.history is None and found.train_config is None
    few = group_types(crops.subset([0, 1]), TypesConfig(profile="ci"))
    assert few.k == 1 and few.how.startswith("2 flagged images are too few to choose among 2..8")
