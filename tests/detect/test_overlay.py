"""The overlay a person looks at (steelnb/detect/overlay.py): the image beside its map, the peak ringed."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
from PIL import Image

from steelnb.cli import main
from steelnb.data import load_dataset
from steelnb.detect import DetectConfig, detect, write_detection
from steelnb.detect.overlay import MAX_SIDE, overlay, save_overlay
from tests.detect.conftest import FAST_FLAGS, save_pngs, texture

CYAN = (0, 255, 255)


def test_the_image_is_left_and_its_map_is_laid_over_the_copy_right():
    image = np.full((1, 40, 60), 100, np.uint8)
    amap = np.zeros((5, 6), np.float32)
    amap[1, 4] = 1.0  # hot around y 8-16, x 40-50
    picture = np.asarray(overlay(image, amap, low=0.0, high=1.0, peak=(0.3, 0.75)))
    assert picture.shape == (40, 2 * 60 + 4, 3)
    assert (picture[:, :60] == 100).all()  # the image as it is
    right = picture[:, 64:].astype(int)
    assert (right[35:, :20] == 100).all()  # a cold place: the image shows through unchanged
    assert np.abs(right[12, 45] - 100).sum() > 60  # the hot place is coloured
    ring = np.argwhere((right == CYAN).all(axis=-1))
    assert len(ring) and np.allclose(ring.mean(axis=0), (0.3 * 40, 0.75 * 60), atol=2)  # round the peak


def test_one_scale_for_the_pile_a_map_below_low_shows_nothing():
    image = np.full((3, 16, 16), 80, np.uint8)
    picture = np.asarray(overlay(image, np.full((2, 2), 0.5, np.float32), low=1.0, high=2.0, peak=(0.5, 0.5)))
    right = picture[:, 20:]
    assert ((right == 80) | (right == CYAN).all(axis=-1, keepdims=True)).all()


def test_a_large_overlay_is_shrunk_and_written_whole(tmp_path):
    image = np.zeros((1, 600, 900), np.uint8)
    path = tmp_path / "big.png"
    save_overlay(path, image, np.zeros((4, 4), np.float32), 0.0, 1.0, (0.5, 0.5))
    with Image.open(path) as written:
        assert max(written.size) == MAX_SIDE
    assert [p.name for p in tmp_path.iterdir()] == ["big.png"]  # no partial file beside it


def test_overlays_for_none_or_for_every_image(tmp_path):
    pile = save_pngs(tmp_path / "pile", texture(5, 64))
    for flag, expected in (("--overlays=0", 0), ("--all-overlays", 5)):
        out = tmp_path / flag.strip("-")
        assert main(["detect", "--dataset", str(pile), "--out-dir", str(out), *FAST_FLAGS, "--method", "self",
                     "--overlays", "2", flag, "--quiet"]) == 0
        written = sorted(p.name for p in (out / "overlays").iterdir()) if (out / "overlays").exists() else []
        listed = pd.read_csv(out / "scores.csv", keep_default_na=False)["overlay"]
        assert len(written) == expected and sorted(name.split("/")[-1] for name in listed if name) == written
        assert json.loads((out / "config.json").read_text())["all_overlays"] == (expected == 5)


def test_a_detection_written_again_replaces_the_overlays_of_the_last(tmp_path):
    config = DetectConfig(max_side=64, backbone="resnet18", weights="random", device="cpu", overlays=0)
    pile = load_dataset("synthetic", image_size=64, n_images=20, defect_rate=0.2)
    found = detect(config, pile)
    listed = []
    for count in (12, 1):  # the top 12, then the top image only (each with the images around the threshold)
        write_detection(found, pile, replace(config, overlays=count), tmp_path)
        overlays = pd.read_csv(tmp_path / "scores.csv", keep_default_na=False)["overlay"]
        listed.append(sorted(name.split("/")[-1] for name in overlays if name))
        assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == listed[-1]
    assert len(listed[1]) < len(listed[0])  # the first write's other overlays are gone
