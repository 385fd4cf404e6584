"""`steelnb detect` end to end on a small flat folder and on a labelled one: the files a person reads."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from steelnb.cli import main
from steelnb.detect import DETECT_FILES
from steelnb.detect.record import STRIP
from tests.detect.conftest import FAST_FLAGS, plant, save_pngs, texture
from tests.test_bad_input import run_cli
from tests.test_ksdd import SQUARE, write_ksdd

COLUMNS = ["path", "score", "rank", "defective", "peak_y", "peak_x"]


@pytest.fixture(scope="module")
def images():
    """Ten 64 x 64 images of one texture; a bright square in image 2, a dark one in image 7."""
    found = plant(texture(10, 64, seed=3), 2, 30, 12, 12, 250)
    return plant(found, 7, 8, 40, 10, 5)


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory, images) -> Path:
    folder = save_pngs(tmp_path_factory.mktemp("flat") / "pile", images)
    out = folder.parent / "run"
    assert main(["detect", "--dataset", str(folder), "--out-dir", str(out), *FAST_FLAGS, "--method", "bank",
                 "--overlays", "3"]) == 0
    return out


def test_a_flat_folder_gets_a_ranking_overlays_and_a_report(flat_run):
    out = flat_run
    assert {p.name for p in out.iterdir()} == set(DETECT_FILES) - {"report_files"}
    scores = pd.read_csv(out / "scores.csv", keep_default_na=False)
    assert scores.columns.tolist() == [*COLUMNS, "overlay"]  # no truth, no label: none known
    assert scores["rank"].tolist() == list(range(1, 11)) and scores["score"].is_monotonic_decreasing
    assert set(scores.path.head(2)) == {"02.png", "07.png"}  # the planted squares first
    flagged = scores.defective.sum()  # overlays: the top 3, and the STRIP images either side of the threshold
    near = (scores["rank"] > flagged - STRIP) & (scores["rank"] <= flagged + STRIP)
    assert scores["overlay"].astype(bool).tolist() == ((scores["rank"] <= 3) | near).tolist()
    drawn = scores.overlay[scores.overlay != ""]
    for name in drawn:
        with Image.open(out / name) as picture:
            assert picture.size == (2 * 64 + 4, 64)  # the image beside its map
    assert sorted(p.name for p in (out / "overlays").iterdir()) == sorted(Path(n).name for n in drawn)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scored"] == "not scored: pile has no defect / defect-free labels"
    assert metrics["n_images"] == 10 and metrics["skipped"] == 0 and "auroc" not in metrics
    assert json.loads((out / "config.json").read_text())["overlays"] == 3
    page = (out / "report.html").read_text()
    assert "02.png" in page and "overlays/00001_" in page


def test_a_runs_config_reruns_it_to_the_same_scores(flat_run, tmp_path, capsys):
    out = flat_run
    again = tmp_path / "again"
    code, _, _ = run_cli(capsys, "detect", "--config", out / "config.json", "--out-dir", again)
    assert code == 0
    first, second = (pd.read_csv(run / "scores.csv") for run in (out, again))
    pd.testing.assert_frame_equal(first[COLUMNS], second[COLUMNS])


def test_a_labelled_folder_is_measured_against_its_labels(tmp_path, images, capsys):
    folder = tmp_path / "parts"
    save_pngs(folder / "good", images[[0, 1, 3, 4, 5, 6, 8, 9]])
    save_pngs(folder / "scratch", images[[2, 7]], ["a.png", "b.png"])
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "detect", "--dataset", folder, "--out-dir", out, *FAST_FLAGS, "--method", "self")
    assert code == 0
    assert "parts: 10 images at 64 x 64; self scoring with resnet18 (random)" in stdout
    assert "defect-free class: 'good' (found by its name" in stdout
    assert "against the labels: image AUROC 1.000" in stdout and "everything defect-free: ACC 0.800" in stdout
    assert f"ranking: {out / 'scores.csv'}" in stdout and f"report: {(out / 'report.html').resolve()}" in stdout
    scores = pd.read_csv(out / "scores.csv", keep_default_na=False)
    assert scores.columns.tolist() == [*COLUMNS, "truth", "label", "overlay"]
    assert scores.truth.head(2).tolist() == [1, 1] and scores.label.head(2).tolist() == ["scratch"] * 2
    assert scores.overlay.astype(bool).all()  # 10 images, 16 overlays by default: all of them
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"auroc", "ap", "label_free", "calibrated", "everything_defect_free"} <= set(metrics)
    assert metrics["auroc"] == 1.0 and metrics["defect_rate"] == 0.2
    assert {"acc", "mdr", "fdr", "eacc"} <= set(metrics["label_free"]) and "localisation" not in metrics


def test_a_ksdd_pile_reports_where_its_peaks_fall(tmp_path, capsys):
    """KSDD's outlines score the maps' peaks: the defects drawn in the outlines are found in them."""
    write_ksdd(tmp_path / "ksdd", good=8, defective=2, height=128, width=64)
    out = tmp_path / "run"
    code, _, _ = run_cli(capsys, "detect", "--dataset", "ksdd", "--data-root", tmp_path, "--out-dir", out, *FAST_FLAGS,
                         "--max-side", "128", "--method", "self")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["image_shape"] == [1, 128, 64]  # the strips at their own aspect
    assert metrics["localisation"] == {"peak_in_defect": 1.0, "n": 2}
    scores = pd.read_csv(out / "scores.csv")
    top = scores[scores["truth"] == 1]
    (x0, y0), (x1, y1) = SQUARE[0], SQUARE[2]
    assert top["peak_x"].between(x0 - 0.1, x1 + 0.1).all() and top["peak_y"].between(y0 - 0.1, y1 + 0.1).all()
