"""`steelnb decide RUN`: a new threshold from a run's saved scores, the same as a fresh `detect` would decide."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from steelnb.cli import main
from steelnb.detect.record import STRIP
from tests.detect.conftest import FAST_FLAGS, plant, save_pngs, texture

DEFECTIVE = (2, 5, 9, 13, 17, 21)


@pytest.fixture(scope="module")
def pile(tmp_path_factory) -> Path:
    """30 images of one texture, 6 with a planted square (in scratch/), the rest in good/."""
    images = texture(30, 64, seed=4)
    for k, i in enumerate(DEFECTIVE):
        images = plant(images, i, 8 + 6 * k, 10 + 5 * k, 6 + 2 * k, 250 if k % 2 else 10)
    folder = tmp_path_factory.mktemp("decide") / "pile"
    good = [i for i in range(30) if i not in DEFECTIVE]
    save_pngs(folder / "good", images[good], [f"g{i:02d}.png" for i in good])
    save_pngs(folder / "scratch", images[list(DEFECTIVE)], [f"s{i:02d}.png" for i in DEFECTIVE])
    return folder


@pytest.fixture(scope="module")
def first_run(pile) -> Path:
    out = pile.parent / "first"
    assert main(["detect", str(pile), "--out-dir", str(out), *FAST_FLAGS, "--overlays", "2", "--quiet"]) == 0
    return out


@pytest.fixture
def run(first_run, tmp_path) -> Path:
    """A copy of the first run, for a test to decide again."""
    return Path(shutil.copytree(first_run, tmp_path / "run"))


def flags(run: Path) -> dict[str, int]:
    scores = pd.read_csv(run / "scores.csv")
    return dict(zip(scores.path, scores.defective, strict=True))


def fresh(pile: Path, out: Path, *settings: str) -> Path:
    assert main(["detect", str(pile), "--out-dir", str(out), *FAST_FLAGS, "--overlays", "2", *settings,
                 "--quiet"]) == 0
    return out


@pytest.mark.parametrize("settings", [["--cutoff", "1"], ["--rule", "gap"], ["--rule", "gmm", "--cutoff", "2"]])
def test_decide_flags_what_a_fresh_detect_with_the_same_settings_flags(pile, run, tmp_path, settings, capsys):
    assert main(["decide", str(run), *settings]) == 0
    assert "images flagged defective" in capsys.readouterr().out
    again = fresh(pile, tmp_path / "fresh", *settings)
    assert flags(run) == flags(again)
    decided, scored = (json.loads((r / "metrics.json").read_text()) for r in (run, again))
    assert decided["label_free"].keys() == scored["label_free"].keys()  # every field, none lost
    for key, value in scored["label_free"].items():
        assert decided["label_free"][key] == (value if isinstance(value, str) else pytest.approx(value, rel=1e-6)), key
    assert decided["calibrated"] == pytest.approx(scored["calibrated"])
    recorded = json.loads((run / "config.json").read_text())
    assert recorded == json.loads((again / "config.json").read_text()) | {"out_dir": recorded["out_dir"]}


@pytest.mark.parametrize("count", [1, 4, 30])
def test_flag_n_flags_exactly_the_n_highest(pile, run, tmp_path, count):
    assert main(["decide", str(run), "--flag", str(count)]) == 0
    scores = pd.read_csv(run / "scores.csv")
    assert scores.defective.sum() == count and (scores.defective == (scores["rank"] <= count)).all()
    config = json.loads((run / "config.json").read_text())
    assert (config["rule"], config["cutoff"]) == ("top", count)
    if count == 4:  # the recorded rule decides the same in a fresh run
        assert flags(run) == flags(fresh(pile, tmp_path / "fresh", "--config", str(run / "config.json")))


def test_the_images_around_the_new_threshold_get_overlays_from_the_saved_maps(run):
    with np.load(run / "maps.npz") as saved:
        assert saved["maps"].dtype == np.float16 and len(saved["maps"]) == 30
    assert main(["decide", str(run), "--flag", "12"]) == 0
    scores = pd.read_csv(run / "scores.csv", keep_default_na=False)
    around = scores[(scores["rank"] > 12 - STRIP) & (scores["rank"] <= 12 + STRIP)]
    assert (around.overlay != "").all() and all((run / name).is_file() for name in around.overlay)
    page = (run / "report.html").read_text()
    assert all(name in page for name in around.overlay)


def test_target_mdr_makes_the_flags_follow_the_calibrated_threshold(run):
    assert main(["decide", str(run), "--target-mdr", "0"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["flagged_by"] == "calibrated" and metrics["calibrated"]["target_mdr"] == 0
    scores = pd.read_csv(run / "scores.csv")
    assert (scores.defective == (scores.score > metrics["calibrated"]["threshold"])).all()
    assert json.loads((run / "config.json").read_text())["target_mdr"] == 0
    assert main(["decide", str(run), "--cutoff", "3"]) == 0  # a label-free rule again: the flags follow it
    assert "flagged_by" not in json.loads((run / "metrics.json").read_text())


def test_decide_refuses_what_it_cannot_do_in_one_line(run, tmp_path, capsys):
    for args, message in [([str(tmp_path), "--cutoff", "2"], "not a finished detection run"),
                          ([str(run), "--flag", "3", "--rule", "mad"], "--flag N is the rule top"),
                          ([str(run)], "decide needs a new decision"),
                          ([str(run), "--cutoff", "-1"], "cutoff must be greater than 0")]:
        before = (run / "scores.csv").read_text()
        assert main(["decide", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert (run / "scores.csv").read_text() == before
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "types": {"types": 2}}))  # as an inspection records it
    assert main(["decide", str(run), "--cutoff", "2"]) == 2
    assert "is an inspection" in capsys.readouterr().err


def test_decide_then_inspect_from_the_run_groups_the_new_flags_without_scoring(run, tmp_path, capsys):
    assert main(["decide", str(run), "--flag", "6"]) == 0
    out = tmp_path / "types"
    assert main(["inspect", "--from", str(run), "--out-dir", str(out), "--profile", "ci", "--types", "2",
                 "--quiet"]) == 0
    assert f"(reused from {run}: no scoring)" in capsys.readouterr().out
    decided, inspected = (pd.read_csv(r / "scores.csv", keep_default_na=False) for r in (run, out))
    columns = ["path", "score", "rank", "defective"]
    pd.testing.assert_frame_equal(decided[columns], inspected[columns])
    assert set(inspected.type[inspected.defective == 1]) <= {0, 1} and (inspected.type[inspected.defective == 0]
                                                                         == -1).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["type_stage"]["grouped"] == 6 and metrics["label_free"]["rule"] == "top"
    assert main(["inspect", "--from", str(run), "--out-dir", str(tmp_path / "x"), "--cutoff", "2"]) == 2
    assert "reuses that run's detection" in capsys.readouterr().err


def test_decide_and_report_import_no_torch(run):
    """Deciding again takes seconds, not the command's start-up of torch and timm: decide and report import neither
    (the same cutoff again: the images around the threshold have their overlays, none is drawn)."""
    cutoff = json.loads((run / "config.json").read_text())["cutoff"]
    program = ("import sys\n"
               "from steelnb.cli import main\n"
               f"assert main(['decide', {str(run)!r}, '--cutoff', '{cutoff}', '--quiet']) == 0\n"
               f"assert main(['report', {str(run)!r}]) == 0\n"
               "print(sorted(name for name in ('torch', 'timm') if name in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
