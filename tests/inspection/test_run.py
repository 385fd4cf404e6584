"""Detect, then group: piles where nothing is found, where everything is defective, and the written folder."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from steelnb.data import load_dataset
from steelnb.data.imageset import UNKNOWN
from steelnb.detect import DetectConfig
from steelnb.detect.scoring import smooth
from steelnb.inspection import INSPECT_FILES, TypesConfig, inspect_pile, truth_of, write_inspection
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
    assert (found.table["grouped"].iloc[flagged] == "flagged").all() and (found.table["grouped"] != "").sum() == \
        len(flagged)
    assert sorted(set(found.regions["image"])) == flagged.tolist()  # at least one region an image
    assert len(found.crops) == len(found.regions) and found.crops.shape[-2:] == (64, 64)  # ci's image_size
    assert found.table["regions"].iloc[flagged].tolist() == found.regions.groupby("image").size().tolist()
    assert set(found.table["type"].iloc[flagged]) <= {0, 1}
    assert (found.table["type"].drop(index=flagged) == -1).all()
    assert found.metrics["type_stage"]["how"] == "given: 2 types"
    assert found.metrics["type_stage"]["why_grouped"] == {"flagged": len(flagged)}
    crop = found.metrics["type_stage"]["crop"]
    share = map_share(smooth(torch.from_numpy(found.detection.maps[flagged]), 1.0).numpy(), 64, 64)  # as the peaks
    assert crop["share_of_shorter_side"] == round(share, 4) and crop["how"].startswith("2 x the median extent")
    assert crop["side_px"] == crop_side(64, 64, share) and crop["resized_to"] == 64


def test_the_folder_holds_every_image_type_and_crop_and_a_gallery_per_type(grouped):
    _, out = grouped
    # no type_choice.csv: the number was given; no report: the command line writes it
    # no type_choice.csv: the number was given; no type_history.csv: too few crops to train on
    assert {p.name for p in out.iterdir()} == set(INSPECT_FILES) - {"type_choice.csv", "type_history.csv",
                                                                     "report.html", "report_files"}
    scores = pd.read_csv(out / "scores.csv", keep_default_na=False, na_values=[""])
    assert len(scores) == 20 and {"score", "defective", "grouped", "regions", "type", "crop", "overlay",
                                  "label"} <= set(scores.columns)
    flagged = scores[scores.defective == 1]
    regions = pd.read_csv(out / "regions.csv")
    assert sorted(regions.crop) == sorted(f"crops/{p.name}" for p in (out / "crops").iterdir())  # a crop each
    assert set(flagged.crop) == set(regions.crop[regions.region == 1])  # an image's crop: its strongest region's
    assert len(regions) == flagged.regions.sum() and set(regions["rank"]) == set(flagged["rank"])
    main = regions[regions.region == 1].set_index("rank")
    assert (main.type.loc[flagged["rank"]].to_numpy() == flagged.type.to_numpy()).all()
    assert (scores[scores.defective == 0].type == -1).all()
    types = pd.read_csv(out / "types.csv")
    assert types.type.tolist() == [0, 1] and types["count"].sum() == len(flagged)
    assert types.regions.sum() == len(regions) and (types.regions > 0).all()
    assert types.gallery.tolist() == ["galleries/type_00.png", "galleries/type_01.png"]
    assert sorted(p.name for p in (out / "galleries").iterdir()) == ["all_types.png", "type_00.png", "type_01.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"auroc", "label_free", "type_stage", "two_cluster", "five_cluster", "types"} <= set(metrics)
    training = metrics["type_stage"]["training"]
    assert training["used"] == "starting features" and training["why"].startswith(f"{len(regions)} crops, fewer")
    assert metrics["type_stage"]["run"] == {"backbone": "resnet18", "weights": "random", "trained": False,
                                            "pooling": "region", "levels": "16,32"}
    config = json.loads((out / "config.json").read_text())
    assert config["types"]["types"] == 2 and config["type_training"] is None


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
    assert found.grouping.k == len(found.regions) >= n
    assert found.note.startswith(f"50 types asked for, but only {len(found.regions)} crops to group")
    assert found.metrics["type_stage"]["note"].startswith(f"only {n} images grouped, fewer than the 50 types")


def test_map_pooling_weights_each_crop_by_its_own_map():
    found = inspect_pile(DetectConfig(**FAST), TypesConfig(types=2, profile="ci", pooling="map"), pile())
    assert found.metrics["type_stage"]["run"]["pooling"] == "map" and (found.table["type"][found.grouped] >= 0).all()


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
    assert few.k == 1 and few.how.startswith("2 crops are too few to choose among 2..8")


def test_the_top_of_the_ranking_is_grouped_even_when_nothing_is_flagged(tmp_path):
    detect_config = DetectConfig(**{**FAST, "cutoff": 50.0})  # nothing clears this threshold
    types_config = TypesConfig(types=2, profile="ci", top=5, gallery=2)
    found = inspect_pile(detect_config, types_config, pile(n=12))
    top = found.table.index[found.table["rank"] <= 5]
    assert sorted(found.grouped.tolist()) == sorted(top.tolist()) and (found.table["defective"] == 0).all()
    assert (found.table["grouped"].loc[top] == "top 5").all() and (found.table["type"].loc[top] >= 0).all()
    assert found.metrics["type_stage"]["why_grouped"] == {"top 5": 5} and found.grouping.k == 2
    assert found.metrics["two_cluster"]["fdr"] == 0  # the decision is still detection's: nothing flagged
    assert found.metrics["types"]["n"] + found.metrics["types"]["false_alarms"] == 5  # the grouped are scored
    write_inspection(found, detect_config, types_config, tmp_path)
    scores = pd.read_csv(tmp_path / "scores.csv", keep_default_na=False)
    assert sorted(scores.loc[scores.grouped != "", "rank"]) == [1, 2, 3, 4, 5]
    assert (scores.loc[scores["rank"] > 5, "grouped"] == "").all()


def test_a_share_of_the_ranking_adds_to_what_is_flagged():
    found = inspect_pile(DetectConfig(**FAST), TypesConfig(types=2, profile="ci", top_rate=0.5), pile(n=20))
    flagged = set(np.flatnonzero(found.table["defective"] == 1))
    top = set(np.flatnonzero(found.table["rank"] <= 10))
    assert set(found.grouped) == flagged | top
    assert set(found.table["grouped"].iloc[sorted(flagged & top)]) == {"flagged, top 10"}


def test_fewer_flagged_than_types_asked_for_says_so_and_how_to_group_more():
    found = inspect_pile(DetectConfig(**{**FAST, "cutoff": 50.0}), TypesConfig(types=5, profile="ci", top=2),
                         pile(n=12))
    stage = found.metrics["type_stage"]
    assert stage["note"] == "only 2 images grouped, fewer than the 5 types asked for; give a larger --top or " \
                            "--top-rate to group more"
    few = inspect_pile(DetectConfig(**{**FAST, "cutoff": 50.0}), TypesConfig(types=5, profile="ci"), pile(n=12))
    assert few.note.endswith("; give --top N (or --top-rate S) to group the N highest-ranked images as well")
    assert found.grouping.k == len(found.regions) <= 5


def test_an_image_with_two_separate_defects_gives_two_regions_with_their_own_crops(monkeypatch, tmp_path):
    from steelnb.inspection import run

    images = np.full((6, 1, 64, 64), 120, np.uint8)
    images[0, :, 4:12, 4:12] = 255  # image 0: two defects, far apart
    images[0, :, 48:56, 44:52] = 0
    images[1, :, 28:36, 28:36] = 255  # image 1: one
    data = pile(n=6, rate=0.5)
    data = type(data)("two", images, data.labels, data.defective, data.class_names, data.paths)

    def planted(config, given):
        fitted, detection = real(config, given)
        maps = np.zeros((6, 8, 8), np.float32)
        maps[0, 1, 1], maps[0, 6, 6] = 5.0, 4.0  # cells of 8 px: the defects' centres
        maps[1, 4, 4] = 5.0
        detection.maps = maps
        detection.threshold = 1.0
        table = detection.table
        table["score"] = maps.reshape(6, -1).max(1)
        table["defective"] = (table["score"] > 1.0).astype(int)
        table["rank"] = table["score"].rank(ascending=False, method="first").astype(int)
        table["peak_y"], table["peak_x"] = [0.1875, 0.5625, 0.5, 0.5, 0.5, 0.5], [0.1875, 0.5625, 0.5, 0.5, 0.5, 0.5]
        return fitted, detection

    real = run.detect_pile
    monkeypatch.setattr(run, "detect_pile", planted)
    types_config = TypesConfig(types=2, profile="ci", crop_share=0.25)  # 16 px squares
    detect_config = DetectConfig(**{**FAST, "sigma": 0.0})  # the planted cells as they are
    found = inspect_pile(detect_config, types_config, data)
    regions = found.regions
    assert regions[["image", "region"]].values.tolist() == [[0, 0], [0, 1], [1, 0]]
    assert regions[["peak_y", "peak_x"]].values.tolist() == [[0.1875, 0.1875], [0.8125, 0.8125], [0.5625, 0.5625]]
    assert found.crops[0].max() == 255 and found.crops[0].min() == 120  # the bright square alone
    assert found.crops[1].min() == 0 and found.crops[1].max() == 120  # the dark one alone
    assert found.table["regions"].tolist() == [2, 1, 0, 0, 0, 0]
    write_inspection(found, detect_config, types_config, tmp_path)
    written = pd.read_csv(tmp_path / "regions.csv")
    assert written.region.tolist() == [1, 2, 1] and written.type.tolist() == regions["type"].tolist()
    stem = Path(data.paths[0]).stem
    assert written.crop.tolist()[:2] == [f"crops/00000_{stem}.png", f"crops/00000_{stem}_region2.png"]
    assert all((tmp_path / name).is_file() for name in written.crop)
    scores = pd.read_csv(tmp_path / "scores.csv", keep_default_na=False).set_index("rank")
    assert scores.loc[1, "crop"] == f"crops/00000_{stem}.png" and scores.loc[1, "regions"] == 2


def test_the_defect_free_class_is_the_one_the_defect_flags_leave_whatever_its_name():
    """KSDD names it "good": scored as a defect type, its false alarms would count as found types."""
    data = pile(n=12, rate=0.5)
    flags = data.defective.astype(np.int64)
    good_first = replace(data, labels=flags, class_names=("good", "defective"), meta={})
    assert truth_of(good_first)[2] == 0
    good_last = replace(data, labels=1 - flags, class_names=("crack", "ok"), meta={})
    assert truth_of(good_last)[2] == 1
    unflagged = replace(data, defective=np.full(len(data), UNKNOWN, np.int8))
    assert truth_of(unflagged)[2] == data.class_names.index("defect-free")
    no_name = replace(unflagged, class_names=("a", *data.class_names[1:]))
    assert truth_of(no_name)[2] is None
