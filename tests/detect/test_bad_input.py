"""What a demanding user does wrong with `steelnb detect`, through the command line: every case exits with its
code and a one-line message, and leaves no output half-written or mixed with another run's (issue 10, and
issue 9's piles: one image, identical images, images smaller than a tile, a pile that is all defective)."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from steelnb.cli import main
from steelnb.detect import DETECT_FILES
from steelnb.errors import SteelnbWarning
from steelnb.runfolder import claim_run_folder
from tests.detect.conftest import FAST_FLAGS, save_pngs, texture
from tests.test_bad_input import config_file_refused, one_line_error, run_cli, snapshot, unusable_pile


def detect_cli(capsys, dataset: Path | str, out: Path, *flags: str) -> tuple[int, str, str]:
    return run_cli(capsys, "detect", "--dataset", dataset, "--out-dir", out, *FAST_FLAGS, *flags)


@pytest.fixture(scope="module")
def pile(tmp_path_factory) -> Path:
    """Six 64 x 64 images of one texture."""
    return save_pngs(tmp_path_factory.mktemp("pile") / "pile", texture(6, 64))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, pile) -> Path:
    """A finished detect run on `pile` with 4 overlays (do not change it: copy it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["detect", "--dataset", str(pile), "--out-dir", str(run), *FAST_FLAGS, "--overlays", "4"]) == 0
    return run


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# --- piles detection cannot score, or scores at an edge ----------------------------------------


def test_a_pile_of_one_image_with_the_bank_names_the_method_that_works(tmp_path, capsys):
    one = save_pngs(tmp_path / "one", texture(1, 64))
    out = tmp_path / "run"
    code, _, err = detect_cli(capsys, one, out, "--method", "bank")
    assert code == 2
    one_line_error(err, "the bank method needs at least 2 images, the pile has 1", "use --method self")
    assert not out.exists()  # the run made the folder and took it away again


def test_a_pile_of_one_image_with_self_is_scored(tmp_path, capsys):
    one = save_pngs(tmp_path / "one", texture(1, 64))
    out = tmp_path / "run"
    with pytest.warns(SteelnbWarning, match="a pile of 1 image is too small for the label-free decision"):
        code, stdout, _ = detect_cli(capsys, one, out, "--method", "self")
    assert code == 0 and "0 flagged defective" in stdout
    scores = pd.read_csv(out / "scores.csv")
    assert scores[["rank", "defective"]].values.tolist() == [[1, 0]] and (out / scores.overlay[0]).is_file()


@pytest.mark.parametrize("n", [2, 3])
def test_a_pile_too_small_for_the_decision_says_so_once_and_in_metrics(tmp_path, capsys, n):
    images = texture(n, 64)
    images[-1, 20:40, 20:40] = 255  # a defect the decision could flag in a pile large enough
    folder = save_pngs(tmp_path / "few", images)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, _ = detect_cli(capsys, folder, tmp_path / "run", "--method", "self")
    assert code == 0
    said = [w for w in caught if issubclass(w.category, SteelnbWarning) and "label-free decision" in str(w.message)]
    note = json.loads((tmp_path / "run" / "metrics.json").read_text())["label_free"].get("note", "")
    if n == 2:
        assert len(said) == 1 and "a pile of 2 images is too small" in note and "at least 3" in note
    else:
        assert not said and not note


@pytest.mark.parametrize("method", ["bank", "self", "mutual"])
def test_identical_images_run_and_flag_nothing(tmp_path, capsys, method):
    same = save_pngs(tmp_path / "same", np.repeat(texture(1, 64), 5, axis=0))
    out = tmp_path / "run"
    code, stdout, err = detect_cli(capsys, same, out, "--method", method, "--batch-size", "2")
    assert code == 0 and err == "", err
    assert "0 flagged defective" in stdout
    assert pd.read_csv(out / "scores.csv")["defective"].sum() == 0


@pytest.mark.parametrize("method", ["bank", "self", "mutual"])
def test_images_smaller_than_a_tile_and_a_patch_grid_are_read(tmp_path, capsys, method):
    """10 x 10 px images: read at the least size the feature levels allow (32 x 32, a 4 x 4 grid)."""
    tiny = save_pngs(tmp_path / "tiny", np.random.default_rng(0).integers(0, 255, (4, 10, 10), dtype=np.uint8))
    out = tmp_path / "run"
    code, stdout, _ = detect_cli(capsys, tiny, out, "--method", method)
    assert code == 0 and "4 images at 32 x 32" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["image_shape"] == [1, 32, 32] and metrics["grid"] == [4, 4]


def test_a_pile_with_every_image_in_a_defect_class_runs_and_says_it_is_not_scored(tmp_path, capsys):
    folder = tmp_path / "defects"
    save_pngs(folder / "scratch", texture(3, 64, seed=1))
    save_pngs(folder / "dent", texture(3, 64, seed=2))
    out = tmp_path / "run"
    code, stdout, _ = detect_cli(capsys, folder, out, "--method", "self")
    assert code == 0
    assert "no defect-free class" in stdout and "not scored: defects has no defect / defect-free labels" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert "auroc" not in metrics and metrics["scored"].startswith("not scored")
    assert pd.read_csv(out / "scores.csv").label.tolist().count("scratch") == 3


@pytest.mark.parametrize("case, message", [
    ("absent", "normal class 'good' is not a sub-folder; the sub-folders are ['dent', 'scratch']"),
    ("empty", "class folder {folder}/good holds no images"),
])
def test_a_normal_class_that_holds_nothing_is_named(tmp_path, capsys, case, message):
    folder = tmp_path / "defects"
    save_pngs(folder / "scratch", texture(2, 64, seed=1))
    save_pngs(folder / "dent", texture(2, 64, seed=2))
    if case == "empty":
        (folder / "good").mkdir()
    out = tmp_path / "run"
    code, stdout, err = detect_cli(capsys, folder, out, "--normal-class", "good")
    assert code == 2 and stdout == ""
    one_line_error(err, message.format(folder=folder))
    assert not out.exists()


@pytest.mark.parametrize("case, message", [
    ("missing", "no folder"),
    ("file", "is a file, not a folder of images"),
    ("empty", "no image files in"),
    ("unreadable", "none of the 2 image files"),
])
def test_a_pile_that_is_not_there_or_holds_no_image_is_named(tmp_path, capsys, case, message):
    target = unusable_pile(tmp_path / case, case)
    out = tmp_path / "run"
    code, stdout, err = detect_cli(capsys, target, out)
    assert code == 2 and stdout == ""
    one_line_error(err, str(target), message)
    assert not out.exists()


def test_normal_class_on_a_named_set_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "detect", "--dataset", "synthetic", "--normal-class", "good", "--out-dir", out,
                           *FAST_FLAGS)
    assert code == 2
    one_line_error(err, "--normal-class", "synthetic knows its own classes")
    assert not out.exists()


def test_a_corrupt_image_is_skipped_and_listed(tmp_path, capsys, pile):
    folder = copy_tree(pile, tmp_path / "pile")
    whole = (folder / "00.png").read_bytes()
    (folder / "broken.png").write_bytes(whole[:len(whole) // 2])  # a PNG cut off half way
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "run"
    code, stdout, _ = detect_cli(capsys, folder, out, "--method", "self")
    assert code == 0
    assert f"6 images at 64 x 64, 2 files skipped (listed in {out / 'skipped.csv'})" in stdout
    skipped = dict(pd.read_csv(out / "skipped.csv").itertuples(index=False))
    assert set(skipped) == {"broken.png", "notes.txt"}
    assert "corrupt or truncated" in skipped["broken.png"] and "not an image file" in skipped["notes.txt"]
    assert json.loads((out / "metrics.json").read_text())["skipped"] == 2
    assert "broken.png" not in set(pd.read_csv(out / "scores.csv").path)


# --- flags and configs --------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value, message", [
    ("--bank-share", "0", "flag --bank-share: bank_share must be greater than 0, got 0.0"),
    ("--bank-share", "2", "flag --bank-share: bank_share must be at most 1, got 2.0"),
    ("--strides", "7", 'flag --strides: strides must be strides out of 4, 8, 16, 32 joined by commas'),
    ("--strides", "8,", 'flag --strides: strides must be strides out of 4, 8, 16, 32'),
    ("--top-share", "-0.1", "flag --top-share: top_share must be at least 0, got -0.1"),
    ("--top-share", "1.5", "flag --top-share: top_share must be at most 1, got 1.5"),
    ("--denoise", "1", "flag --denoise: denoise must be below 1, got 1.0"),
    ("--tile", "32", "flag --tile: tile must be at least 64, got 32"),
    ("--max-side", "16", "flag --max-side: max_side must be at least 32, got 16"),
    ("--references", "0", "flag --references: references must be at least 1, got 0"),
    ("--bank-images", "1", "flag --bank-images: bank_images must be at least 2, got 1"),
    ("--target-mdr", "1.5", "flag --target-mdr: target_mdr must be at most 1, got 1.5"),
    ("--calibration-share", "1", "flag --calibration-share: calibration_share must be below 1, got 1.0"),
    ("--sigma", "nan", "flag --sigma: sigma must be a finite number"),
    ("--device", "gpu", 'flag --device: device must be auto, cpu, mps, cuda or cuda:N, got "gpu"'),
])
def test_a_bad_flag_value_names_the_flag_before_any_work(tmp_path, capsys, monkeypatch, pile, flag, value, message):
    monkeypatch.setattr("steelnb.detect.load_pile", lambda config: pytest.fail("work began"))
    out = tmp_path / "run"
    code, stdout, err = detect_cli(capsys, pile, out, flag, value)
    assert code == 2 and stdout == ""
    one_line_error(err, message)
    assert not out.exists()


def test_a_tile_off_the_coarsest_stride_names_the_flag(tmp_path, capsys, pile):
    out = tmp_path / "run"
    code, _, err = detect_cli(capsys, pile, out, "--tile", "100")
    assert code == 2
    one_line_error(err, "--tile 100 must be a multiple of the coarsest stride, 16 (--strides 8,16)")
    assert not out.exists()


def test_a_gpu_this_machine_lacks_is_named_not_a_traceback(tmp_path, capsys, monkeypatch, pile):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    out = tmp_path / "run"
    code, _, err = detect_cli(capsys, pile, out, "--device", "cuda")
    assert code == 2
    one_line_error(err, "--device cuda: no CUDA GPU is available on this machine", "--device cpu")
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--method", "nope"), ("--rule", "median")])
def test_an_unknown_choice_is_refused_by_the_parser(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_:
        main(["detect", flag, value])
    assert exit_.value.code == 2
    assert f"invalid choice: '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize("values, message", [
    ({"bank_share": "lots"}, 'bank_share must be a finite number, got "lots" (text)'),
    ({"method": "musc"}, "method must be one of bank, self, mutual"),
    ({"all_overlays": "yes"}, 'all_overlays must be true or false, got "yes" (text)'),
    ({"epochs": 3}, "unknown config keys ['epochs']"),
])
def test_a_bad_value_in_a_config_file_names_the_file_and_the_field(tmp_path, capsys, values, message):
    config_file_refused(tmp_path, capsys, "detect", json.dumps(values), f"config.json: {message}")


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "must hold one JSON object of DetectConfig fields, not a list"),
    ('{"method": "self",}', "not valid JSON"),
])
def test_a_config_file_that_is_not_a_json_object_is_named(tmp_path, capsys, text, message):
    config_file_refused(tmp_path, capsys, "detect", text, message)


# --- run folders ----------------------------------------------------------------------------------


def test_a_finished_detect_run_is_not_overwritten_without_overwrite(tmp_path, capsys, finished, pile):
    out = copy_tree(finished, tmp_path / "run")
    before = snapshot(out)
    code, _, err = detect_cli(capsys, pile, out)
    assert code == 2
    one_line_error(err, "holds a finished run", "--overwrite")
    assert snapshot(out) == before


def test_overwrite_replaces_every_file_of_the_earlier_detect_run(tmp_path, capsys, finished):
    out = copy_tree(finished, tmp_path / "run")
    (out / "scores.csv.partial").write_text("left by a killed run")
    assert len(list((out / "overlays").iterdir())) == 4
    other = save_pngs(tmp_path / "other", texture(3, 64, seed=9))
    code, _, _ = detect_cli(capsys, other, out, "--overwrite", "--overlays", "2", "--method", "self")
    assert code == 0
    assert {p.name for p in out.iterdir()} == {p.name for p in finished.iterdir()}
    scores = pd.read_csv(out / "scores.csv", keep_default_na=False)
    drawn = {Path(name).name for name in scores.overlay if name}  # the top 2 and those around the threshold
    assert {p.name for p in (out / "overlays").iterdir()} == drawn  # none of the earlier run's four
    assert json.loads((out / "config.json").read_text())["dataset"] == str(other)
    assert len(scores) == 3


def test_a_folder_with_files_that_are_not_a_runs_is_never_emptied(tmp_path, capsys, pile):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    (out / "scores.csv").write_text("path\n")
    code, _, err = detect_cli(capsys, pile, out, "--overwrite")
    assert code == 2
    one_line_error(err, "holds files that are not a run's (notes.txt)")
    assert set(snapshot(out)) == {"notes.txt", "scores.csv"}


def test_a_second_detect_into_a_folder_being_written_fails_at_once(tmp_path, capsys, pile):
    out = tmp_path / "run"
    with claim_run_folder(out, DETECT_FILES):
        (out / "scores.csv").write_text("path\n")  # the first run's file
        code, _, err = detect_cli(capsys, pile, out)
        assert code == 2
        one_line_error(err, str(out), "in use by another steelnb run", f"pid {os.getpid()}")
        assert snapshot(out).keys() == {"scores.csv", ".steelnb.lock"}


def test_an_out_dir_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch, pile):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr("steelnb.detect.load_pile", lambda config: pytest.fail("work began"))
    code, _, err = detect_cli(capsys, pile, tmp_path / "file")
    assert code == 2
    one_line_error(err, "--out-dir", "is a file, not a folder")


def test_an_interrupted_detect_leaves_the_folder_as_it_found_it(tmp_path, capsys, monkeypatch, pile):
    out = tmp_path / "run"
    out.mkdir()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("steelnb.detect.overlay.save_overlay", interrupted)  # after the scores, amid the files
    code, _, err = detect_cli(capsys, pile, out)
    assert code == 130 and err == "steelnb: interrupted\n"
    assert list(out.iterdir()) == []


def test_a_pile_of_mixed_sizes_and_channels_is_read_at_one_shape(tmp_path, capsys):
    """Colour and grayscale, tall and wide files in one pile: read at one shape and channel count."""
    folder = tmp_path / "mixed"
    save_pngs(folder, texture(3, (48, 80)))
    Image.fromarray(np.stack([texture(1, (80, 48), seed=4)[0]] * 3, axis=-1) // 2).convert("RGB").save(
        folder / "tall-colour.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 60, 3), dtype=np.uint8)).save(folder / "c.png")
    out = tmp_path / "run"
    code, stdout, _ = detect_cli(capsys, folder, out, "--method", "self")
    assert code == 0 and "5 images at 32 x 64" in stdout  # the median 48 x 80 at max-side 64, in multiples of 32
    assert json.loads((out / "metrics.json").read_text())["image_shape"] == [3, 32, 64]


# --- --overwrite never loses the earlier run (issue 23) -------------------------------------------


@pytest.mark.parametrize("case", ["unreadable", "empty", "backbone-typo", "bad-weights", "fails-at-work", "interrupt"])
def test_a_failed_detect_overwrite_leaves_the_earlier_run_byte_identical(tmp_path, capsys, monkeypatch, finished, pile,
                                                                         case):
    """Refused before the earlier run is touched, or failing (interrupted) once the new run works: the earlier run's
    files come back byte-identical either way."""
    out = copy_tree(finished, tmp_path / "run")
    before = snapshot(out)
    (tmp_path / "x.json").write_text('{"weights": 1}')
    flags = {"backbone-typo": ["--backbone", "nosuchnet"], "bad-weights": ["--weights", tmp_path / "x.json"],
             "fails-at-work": ["--method", "bank"]}
    target = unusable_pile(tmp_path / "pile", case) if case in ("unreadable", "empty") else pile
    if case == "fails-at-work":  # the bank needs 2 images: found once the pile is read, after the claim
        target = save_pngs(tmp_path / "one", texture(1, 64))
    if case == "interrupt":
        def interrupted(*args):
            raise KeyboardInterrupt

        monkeypatch.setattr("steelnb.detect.overlay.save_overlay", interrupted)  # amid the new run's files
    code, _, err = detect_cli(capsys, target, out, *flags.get(case, []), "--overwrite")
    assert code == (130 if case == "interrupt" else 2)
    named = {"backbone-typo": ["--backbone nosuchnet is not a timm model name"],
             "bad-weights": [f"--weights {tmp_path / 'x.json'} is not a torch state dict"]}
    if case != "interrupt":
        one_line_error(err, *named.get(case, []))
    assert snapshot(out) == before



def test_an_undeletable_overlay_does_not_cost_the_new_run_its_files(tmp_path, capsys, finished, pile, immutable):
    out = copy_tree(finished, tmp_path / "run")
    immutable(next((out / "overlays").iterdir()))
    with pytest.warns(SteelnbWarning, match="could not all be deleted"):
        code, _, err = detect_cli(capsys, pile, out, "--overwrite", "--method", "self")
    assert code == 0 and "Traceback" not in err
    assert {"scores.csv", "metrics.json", "overlays"} <= {p.name for p in out.iterdir()}
    assert len(pd.read_csv(out / "scores.csv")) == 6


def test_an_undeletable_overlays_folder_refuses_the_run_with_nothing_changed(tmp_path, capsys, finished, pile,
                                                                            immutable):
    out = copy_tree(finished, tmp_path / "run")
    before = snapshot(out)
    immutable(out / "overlays")
    code, _, err = detect_cli(capsys, pile, out, "--overwrite")
    assert code == 2
    one_line_error(err, "overlays cannot be moved aside", "nothing was changed")
    assert snapshot(out) == before


@pytest.mark.parametrize("damage, fragments", [
    ("semicolons", ["scores.csv is not the table steelnb wrote", "separated by ';'"]),
    ("no-rank", ["scores.csv is not the table steelnb wrote", "lacks the columns ['rank']"]),
    ("truncated-metrics", ["metrics.json is damaged: not valid JSON"]),
])
def test_report_on_a_damaged_run_file_names_the_file(tmp_path, capsys, finished, damage, fragments):
    out = copy_tree(finished, tmp_path / "run")
    scores = pd.read_csv(out / "scores.csv")
    if damage == "semicolons":
        scores.to_csv(out / "scores.csv", sep=";", index=False)  # as a spreadsheet in a comma-decimal locale saves it
    elif damage == "no-rank":
        scores.drop(columns="rank").to_csv(out / "scores.csv", index=False)
    else:
        text = (out / "metrics.json").read_text()
        (out / "metrics.json").write_text(text[:len(text) // 2])
    code, _, err = run_cli(capsys, "report", out)
    assert code == 2
    one_line_error(err, str(out), *fragments)
