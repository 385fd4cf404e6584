"""What a demanding user does wrong, through the command line: every case exits with its code and a one-line
message, and leaves no output half-written or mixed with another run's (issue 10)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from steelnb.cli import main
from steelnb.errors import SteelnbWarning
from steelnb.method.runfiles import RUN_FILES
from steelnb.method.train import Trainer
from steelnb.runfolder import RunFolderError, claim_run_folder

FAST = ["--profile", "ci", "--n-clusters", "2", "--steps-per-epoch", "1", "--epochs", "1"]


def make_images(folder: Path, n: int = 6, colour: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (24, 24, 3) if colour else (24, 24), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02}.png")
    return folder


def unusable_pile(target: Path, case: str) -> Path:
    """`target` made into a pile no command can read: "missing" (nothing there), "file" (a file, not a folder),
    "empty" (a folder without images) or "unreadable" (two image files that do not decode)."""
    if case == "file":
        target.write_text("x")
    elif case in ("empty", "unreadable"):
        target.mkdir()
    if case == "unreadable":
        (target / "a.png").write_bytes(b"")
        (target / "b.jpg").write_text("no")
    return target


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_files(folder: Path) -> set[str]:
    """What `folder` holds at its top level (a run's files, and folders such as report_files), hidden ones too."""
    return {p.name for p in folder.iterdir()}


# A progress report's line (steelnb/progress.py: one a phase on stderr when it is not a terminal).
PROGRESS_LINE = re.compile(r".* \.\.\. (done in|stopped after|failed after) .*\n")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `steelnb ARGV`; stderr without the progress reports' lines."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, PROGRESS_LINE.sub("", err)


def one_line_error(err: str, *fragments: str) -> None:
    """`err` is one `steelnb: error:` line (no traceback) holding every fragment."""
    assert err.startswith("steelnb: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def config_file_refused(tmp_path: Path, capsys, command: str, text: str, *fragments: str) -> None:
    """`steelnb COMMAND --config FILE` (FILE holding `text`) exits 2 with one line naming the file and `fragments`,
    and leaves no run folder behind."""
    config = tmp_path / "config.json"
    config.write_bytes(text.encode("latin-1"))
    code, _, err = run_cli(capsys, command, "--config", config, "--out-dir", tmp_path / "run")
    assert code == 2
    one_line_error(err, str(config), *fragments)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def gray(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("gray") / "strips")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, gray) -> Path:
    """A finished run on `gray` (do not change it: copy it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *FAST, "--dataset", str(gray), "--out-dir", str(run)]) == 0
    return run


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A folder nobody may write into, root included (chattr +i), or skip where that cannot be made."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", folder], capture_output=True).returncode:
        pytest.skip("running as root and chattr +i is not available: no folder is read-only to root")
    yield folder
    subprocess.run(["chattr", "-i", folder], check=True)


# --- 1. run folders ------------------------------------------------------------------------------


def test_a_second_run_into_a_folder_being_written_fails_at_once(tmp_path, gray, capsys):
    out = tmp_path / "run"
    with claim_run_folder(out, RUN_FILES):
        (out / "config.json").write_text("{}")  # the first run's file
        code, _, err = run_cli(capsys, "train", *FAST, "--dataset", gray, "--out-dir", out)
        assert code == 2
        one_line_error(err, str(out), "in use by another steelnb run", f"pid {os.getpid()}")
        assert snapshot(out).keys() == {"config.json", ".steelnb.lock"}


def test_a_lock_held_by_a_killed_process_does_not_block_the_next_run(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from steelnb.runfolder import claim_run_folder\n"
         f"with claim_run_folder({str(out)!r}, ['a']):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunFolderError, match="in use"), claim_run_folder(out, ["a"]):
        pass
    holder.kill()  # kill -9: no clean-up code runs, the lock file stays behind
    holder.wait()
    assert (out / ".steelnb.lock").exists()
    with claim_run_folder(out, ["a"]) as claimed:
        (claimed / "a").write_text("mine")
    assert snapshot(out) == {"a": hashlib.sha1(b"mine").hexdigest()}


def test_a_finished_run_is_not_overwritten_without_overwrite(tmp_path, finished, gray, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = snapshot(out)
    code, _, err = run_cli(capsys, "train", *FAST, "--dataset", gray, "--out-dir", out)
    assert code == 2
    one_line_error(err, "holds a finished run", "--overwrite")
    assert snapshot(out) == before


def test_an_unfinished_run_is_named_with_resume_and_overwrite(tmp_path, finished, gray, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    (out / "model.pt").unlink()
    before = snapshot(out)
    code, _, err = run_cli(capsys, "train", *FAST, "--dataset", gray, "--out-dir", out)
    assert code == 2
    one_line_error(err, "holds an unfinished run", "--resume", "--overwrite")
    assert snapshot(out) == before


def test_overwrite_replaces_every_file_of_the_earlier_run(tmp_path, finished, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    (out / "history.csv.partial").write_text("left by a killed run")
    other = make_images(tmp_path / "other", n=5, seed=3)
    code, _, _ = run_cli(capsys, "train", *FAST, "--dataset", other, "--out-dir", out, "--overwrite")
    assert code == 0
    assert run_files(out) == set(RUN_FILES)
    assert len(list((out / "report_files" / "images").iterdir())) == 5  # none of the earlier run's 6 thumbnails
    assert json.loads((out / "config.json").read_text())["dataset"] == str(other)
    assert len(pd.read_csv(out / "assignments.csv")) == 5


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_with_files_that_are_not_a_runs_is_never_emptied(tmp_path, gray, capsys, overwrite):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    (out / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, "train", *FAST, "--dataset", gray, "--out-dir", out,
                           *(["--overwrite"] if overwrite else []))
    assert code == 2
    one_line_error(err, "holds files that are not a run's (notes.txt)", "new or empty folder")
    assert set(snapshot(out)) == {"notes.txt", "config.json"}


@pytest.mark.parametrize("where, message", [("file", "is a file, not a folder"),
                                            ("under-file", "cannot be created")])
def test_an_out_dir_that_cannot_be_a_folder_is_refused_before_any_work(tmp_path, gray, capsys, monkeypatch,
                                                                       where, message):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" if where == "file" else tmp_path / "file" / "run"
    monkeypatch.setattr("steelnb.cli.train.prepare_data", lambda config: pytest.fail("work began"))
    code, _, err = run_cli(capsys, "train", *FAST, "--dataset", gray, "--out-dir", out)
    assert code == 2
    one_line_error(err, "--out-dir", message)


def test_a_read_only_out_dir_is_refused_before_any_work(read_only, gray, capsys, monkeypatch):
    monkeypatch.setattr("steelnb.cli.train.prepare_data", lambda config: pytest.fail("work began"))
    for out in (read_only, read_only / "run"):
        code, _, err = run_cli(capsys, "train", *FAST, "--dataset", gray, "--out-dir", out)
        assert code == 2
        one_line_error(err, str(out), "choose")
    assert list(read_only.iterdir()) == []


def test_too_many_clusters_names_the_flag_and_leaves_no_folder(tmp_path, gray, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *FAST, "--n-clusters", "9", "--dataset", gray, "--out-dir", out)
    assert code == 2
    one_line_error(err, "--n-clusters 9", "6 images")
    assert not out.exists()


def test_too_many_answer_clusters_names_the_flag(tmp_path, gray, capsys):
    code, _, err = run_cli(capsys, "train", *FAST, "--eval-clusters", "7", "--dataset", gray,
                           "--out-dir", tmp_path / "run")
    assert code == 2
    one_line_error(err, "--eval-clusters", "6 images")
    assert not (tmp_path / "run").exists()


def test_a_run_interrupted_before_its_first_checkpoint_leaves_the_folder_as_it_was(tmp_path, gray, capsys,
                                                                                   monkeypatch):
    out = tmp_path / "run"
    out.mkdir()

    def interrupted(self, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_run_epoch", interrupted)
    code, _, err = run_cli(capsys, "train", *FAST, "--dataset", gray, "--out-dir", out)
    assert code == 130
    assert err == "steelnb: interrupted\n"  # nothing to resume, so no word of --resume
    assert list(out.iterdir()) == []


def test_a_run_interrupted_after_an_epoch_is_resumed_to_the_end(tmp_path, gray, capsys, interrupt_training):
    out = tmp_path / "run"
    interrupt_training(1)
    argv = ["train", *FAST, "--epochs", "2", "--dataset", gray, "--out-dir", out]
    code, _, err = run_cli(capsys, *argv)
    assert code == 130
    assert "rerun with --resume" in err and str(out / "checkpoint.pt") in err
    assert not (out / "model.pt").exists() and (out / "checkpoint.pt").exists()
    interrupt_training(None)
    assert run_cli(capsys, *argv, "--resume")[0] == 0
    assert run_files(out) == set(RUN_FILES)


def test_resume_without_a_checkpoint_creates_nothing(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", *FAST, "--resume", "--out-dir", tmp_path / "fresh")
    assert code == 2
    one_line_error(err, "nothing to resume", "checkpoint.pt")
    assert not (tmp_path / "fresh").exists()


def test_resume_and_overwrite_together_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--resume", "--overwrite", "--out-dir", str(tmp_path / "run")])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# --- 3. configs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("values, message", [
    ({"whiten": "false"}, 'whiten must be true or false, got "false" (text)'),
    ({"epochs": "2"}, 'epochs must be an integer, got "2" (text)'),
    ({"lr": "fast"}, 'lr must be a finite number, got "fast" (text)'),
    ({"image_size": True}, "image_size must be an integer or null, got true"),
    ({"batch_size": 1.5}, "batch_size must be an integer, got 1.5"),
    ({"epochs": 0}, "epochs must be at least 1, got 0"),
    ({"head": "mlp"}, "head must be one of linear, cosine, centroid"),
    ({"labels": "defects"}, "labels must be one of classes, defect"),
    ({"dataset_options": [1]}, "dataset_options must be an object"),
    ({"epoch": 3}, "unknown config keys ['epoch']"),
])
def test_a_bad_value_in_a_config_file_names_the_file_and_the_field(tmp_path, capsys, values, message):
    config_file_refused(tmp_path, capsys, "train", json.dumps(values), f"config.json: {message}")


@pytest.mark.parametrize("flag, value, message", [
    ("--batch-size", "-4", "batch_size must be at least 1, got -4"),
    ("--batch-size", "0", "batch_size must be at least 1, got 0"),
    ("--epochs", "-1", "epochs must be at least 1, got -1"),
    ("--lr", "0", "lr must be greater than 0, got 0.0"),
    ("--lr", "nan", "lr must be a finite number"),
    ("--temperature", "-0.1", "temperature must be greater than 0"),
    ("--device", "gpu", 'device must be auto, cpu, mps, cuda or cuda:N, got "gpu"'),
    ("--backbone", "resnet19", 'backbone must be a timm model name (see timm.list_models()), got "resnet19"'),
])
def test_a_bad_flag_value_names_the_flag(tmp_path, capsys, flag, value, message):
    code, _, err = run_cli(capsys, "train", "--profile", "ci", flag, value, "--out-dir", tmp_path / "run")
    assert code == 2
    one_line_error(err, f"flag {flag}: {message}")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, message", [
    ('{"epochs": 2,}', "not valid JSON (Expecting property name enclosed in double quotes at line 1, column 14)"),
    ("[1, 2]", "must hold one JSON object of TrainConfig fields, not a list"),
    ("\xff\xfe", "cannot be read"),
])
def test_a_config_file_that_is_not_a_json_object_is_named(tmp_path, capsys, text, message):
    config_file_refused(tmp_path, capsys, "train", text, message)


def test_a_missing_config_file_is_named(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--config", tmp_path / "nope.json")
    assert code == 2
    one_line_error(err, f"--config {tmp_path / 'nope.json'}: no such file")


def test_a_gpu_this_machine_lacks_is_named_not_a_traceback(tmp_path, gray, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, _, err = run_cli(capsys, "train", *FAST, "--device", "cuda", "--dataset", gray, "--out-dir", tmp_path / "run")
    assert code == 2
    one_line_error(err, "--device cuda: no CUDA GPU is available on this machine")
    assert not (tmp_path / "run").exists()


def test_an_unknown_choice_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--optimizer", "adamax"])
    assert exit_.value.code == 2
    assert "invalid choice: 'adamax'" in capsys.readouterr().err


def test_an_unknown_dataset_option_is_named(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dataset": "synthetic", "dataset_options": {"n_image": 10}}))
    code, _, err = run_cli(capsys, "train", "--config", config, "--out-dir", tmp_path / "run")
    assert code == 2
    one_line_error(err, "dataset_options ['n_image']", "n_images")
    assert not (tmp_path / "run").exists()


# --- 2. the data used is the data reported -------------------------------------------------------


def test_train_reports_and_records_every_file_left_out(tmp_path, capsys, monkeypatch):
    data = make_images(tmp_path / "set" / "good")
    make_images(tmp_path / "set" / "bad", n=4, seed=1)
    (data / ".hidden.png").write_bytes((data / "00.png").read_bytes())
    (data / "broken.png").write_bytes(b"not a png")
    make_images(data / "deeper" / "still", n=2, seed=2)  # read: a class is read recursively
    (data / "up").symlink_to("..")  # would pull in the other class: not read
    (data / "loop").symlink_to(".")
    (tmp_path / "set" / "notes.txt").write_text("beside the classes")
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "train", *FAST, "--dataset", tmp_path / "set", "--out-dir", out)
    assert code == 0
    assert f"12 images, 5 files skipped (listed in {out / 'skipped.csv'})" in stdout
    skipped = dict(pd.read_csv(out / "skipped.csv").itertuples(index=False))
    assert set(skipped) == {"good/.hidden.png", "good/broken.png", "good/up", "good/loop", "notes.txt"}
    assert "hidden" in skipped["good/.hidden.png"] and "not an image" in skipped["good/broken.png"]
    assert "outside" in skipped["good/up"] and "loop" in skipped["good/loop"]
    assert json.loads((out / "metrics.json").read_text())["skipped"] == 5
    paths = pd.read_csv(out / "assignments.csv").path
    assert len(paths) == 12 and "good/deeper/still/00.png" in set(paths)


def test_an_image_above_the_decompression_bomb_limit_is_skipped_and_named(tmp_path, capsys, monkeypatch):
    folder = make_images(tmp_path / "set")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64 x 64 is over twice the limit; 24 x 24 is under
    code, out, _ = run_cli(capsys, "data", "info", folder)
    assert code == 0
    assert "set: 6 images" in out and "skipped huge.png: too large to decode safely" in out


def test_predict_reports_and_records_what_it_skipped(tmp_path, finished, gray, capsys):
    new = tmp_path / "new"
    shutil.copytree(gray, new)
    (new / "empty.png").write_bytes(b"")
    out = tmp_path / "p.csv"
    code, stdout, _ = run_cli(capsys, "predict", "--run", finished, "--dataset", new, "--out", out)
    assert code == 0
    assert f"6 images, 1 file skipped (listed in {tmp_path / 'p.skipped.csv'})" in stdout
    assert pd.read_csv(tmp_path / "p.skipped.csv").path.tolist() == ["empty.png"]
    assert len(pd.read_csv(out)) == 6


# --- 5. no traceback for ordinary problems -------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_an_unwritable_cache_warns_once_and_the_work_goes_on(tmp_path, capsys, monkeypatch, request, kind):
    if kind == "file":
        (tmp_path / "file").write_text("x")
        cache = tmp_path / "file" / "cache"
    else:
        cache = request.getfixturevalue("read_only")
    monkeypatch.setenv("STEELNB_CACHE", str(cache))
    folder = make_images(tmp_path / "set")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as a user's Python shows them: each distinct warning once
        for _ in range(2):
            code, out, err = run_cli(capsys, "data", "info", folder)
            assert code == 0 and "set: 6 images" in out and err == ""
    (warning,) = [w for w in caught if issubclass(w.category, SteelnbWarning)]
    assert f"decode cache {cache} cannot be written" in str(warning.message)
    assert "decoding without it" in str(warning.message)


def test_a_damaged_cache_entry_is_decoded_again(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    folder = make_images(tmp_path / "set")
    assert run_cli(capsys, "data", "info", folder)[0] == 0
    (entry,) = (tmp_path / "cache").glob("images-*.npy")
    entry.write_bytes(entry.read_bytes()[:100])
    code, out, _ = run_cli(capsys, "data", "info", folder)
    assert code == 0 and "set: 6 images" in out


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong-dict"])
def test_a_damaged_model_pt_is_named(tmp_path, finished, gray, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    model = run / "model.pt"
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[:1000])
    elif damage == "garbage":
        model.write_text("hello")
    else:
        torch.save({"weights": 1}, model)
    code, _, err = run_cli(capsys, "predict", "--run", run, "--dataset", gray, "--out", tmp_path / "p.csv")
    assert code == 2
    one_line_error(err, str(model), "steelnb train --overwrite")
    assert not (tmp_path / "p.csv").exists()


def test_a_damaged_checkpoint_is_named_and_kept(tmp_path, finished, gray, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 not really")
    before = snapshot(run)
    code, _, err = run_cli(capsys, "train", *FAST, "--dataset", gray, "--out-dir", run, "--resume")
    assert code == 2
    one_line_error(err, str(run / "checkpoint.pt"), "damaged", "--overwrite")
    assert snapshot(run) == before


def test_predict_into_a_missing_folder_creates_it(tmp_path, finished, gray, capsys):
    out = tmp_path / "new" / "deeper" / "p.csv"
    assert run_cli(capsys, "predict", "--run", finished, "--dataset", gray, "--out", out)[0] == 0
    assert len(pd.read_csv(out)) == 6


@pytest.mark.parametrize("where, message", [("folder", "is a folder"), ("under-file", "is a file, not a folder"),
                                            ("read-only", "is not writable")])
def test_predict_checks_its_output_before_any_work(tmp_path, gray, capsys, request, where, message):
    (tmp_path / "file").write_text("x")
    if where == "folder":
        out = tmp_path
    elif where == "under-file":
        out = tmp_path / "file" / "p.csv"
    else:
        out = request.getfixturevalue("read_only") / "p.csv"
    # The run does not exist: a message about --out shows it was checked first.
    code, _, err = run_cli(capsys, "predict", "--run", tmp_path / "no-run", "--dataset", gray, "--out", out)
    assert code == 2
    one_line_error(err, f"--out {out}", message)


def test_predict_warns_when_the_channels_differ_from_training(tmp_path, finished, capsys):
    colour = make_images(tmp_path / "colour", colour=True)
    with pytest.warns(SteelnbWarning, match=r"trained on 1-channel \(grayscale\) images, colour's are 3-channel"):
        code, _, _ = run_cli(capsys, "predict", "--run", finished, "--dataset", colour, "--out", tmp_path / "p.csv")
    assert code == 0


# --- 6. exit codes and messages of data info ------------------------------------------------------


@pytest.mark.parametrize("case, message", [
    ("missing", "no folder"),
    ("file", "is a file, not a folder of images"),
    ("empty", "no image files in"),
    ("unreadable", "none of the 2 image files"),
    ("empty-class", "holds no images"),
])
def test_data_info_on_a_folder_it_cannot_use_exits_2(tmp_path, capsys, case, message):
    target = tmp_path / case
    if case == "empty-class":
        make_images(target / "good")
        (target / "bad").mkdir()
    else:
        unusable_pile(target, case)
    code, out, err = run_cli(capsys, "data", "info", target)
    assert code == 2 and out == ""
    one_line_error(err, str(target), message)


def test_an_unknown_data_set_name_says_no_such_folder_exists(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "data", "info", "nue")
    assert code == 2
    one_line_error(err, "unknown data set 'nue'", f"no folder nue exists (in {tmp_path})", "'neu'")


# --- 7. nothing lost: --overwrite, predict --out, the pile (issue 23) ------------------------------


def weights_json(tmp_path: Path) -> Path:
    """A --weights file that is JSON, not a torch state dict."""
    path = tmp_path / "x.json"
    path.write_text('{"weights": 1}')
    return path


@pytest.fixture
def earlier_train_run(tmp_path, finished) -> tuple[Path, dict[str, str]]:
    """A copy of the finished train run, and its snapshot."""
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out, snapshot(out)


@pytest.mark.parametrize("case", ["unreadable", "empty", "bad-weights", "backbone-typo", "fails-at-work"])
def test_a_refused_train_overwrite_leaves_the_earlier_run_byte_identical(tmp_path, gray, capsys, earlier_train_run,
                                                                         case):
    """Refused before the earlier run is touched, or failing once the new run works (more clusters than images,
    found once the pile is read): the earlier run's files come back byte-identical either way."""
    out, before = earlier_train_run
    flags = {"bad-weights": ["--weights", weights_json(tmp_path)], "backbone-typo": ["--backbone", "resnet19"],
             "fails-at-work": ["--n-clusters", "9"]}
    pile = unusable_pile(tmp_path / "pile", case) if case in ("unreadable", "empty") else gray
    code, _, err = run_cli(capsys, "train", *FAST, *flags.get(case, []), "--dataset", pile, "--out-dir", out,
                           "--overwrite")
    assert code == 2
    one_line_error(err)
    assert snapshot(out) == before


@pytest.mark.parametrize("at", [0, 1])
def test_an_interrupted_train_overwrite_leaves_the_earlier_run_byte_identical(gray, capsys, earlier_train_run,
                                                                              interrupt_training, at):
    """Ctrl-C before the new run's first checkpoint, and after it: the earlier run comes back either way."""
    out, before = earlier_train_run
    interrupt_training(at)
    code, _, err = run_cli(capsys, "train", *FAST, "--epochs", "2", "--dataset", gray, "--out-dir", out,
                           "--overwrite")
    assert code == 130 and err.startswith("steelnb: interrupted")
    assert snapshot(out) == before


@pytest.fixture
def earlier_inspect_run(tmp_path) -> tuple[Path, dict[str, str]]:
    """A folder holding an inspect run's files (their names are what the run folder goes by), and its snapshot."""
    from steelnb.inspection import INSPECT_FILES

    out = tmp_path / "inspected"
    for name in INSPECT_FILES:
        path = out / name / "00001_a.png" if "." not in name else out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"earlier {name}")
    return out, snapshot(out)


@pytest.mark.parametrize("case", ["unreadable", "backbone-typo", "bad-weights", "interrupt"])
def test_a_failed_inspect_overwrite_leaves_the_earlier_run_byte_identical(tmp_path, gray, capsys, monkeypatch,
                                                                          earlier_inspect_run, case):
    out, before = earlier_inspect_run
    flags = {"backbone-typo": ["--backbone", "nosuchnet"], "bad-weights": ["--weights", weights_json(tmp_path)]}
    pile = unusable_pile(tmp_path / "pile", case) if case == "unreadable" else gray
    if case == "interrupt":
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr("steelnb.cli.inspect.inspect_pile", interrupted)
    code, _, err = run_cli(capsys, "inspect", pile, "--out-dir", out, "--profile", "ci", "--overwrite",
                           *flags.get(case, []))
    assert code == (130 if case == "interrupt" else 2)
    if case != "interrupt":
        one_line_error(err)
    assert snapshot(out) == before


def test_predict_does_not_overwrite_a_file_unasked(tmp_path, finished, gray, capsys):
    out = tmp_path / "scores.csv"
    out.write_text("rank,path\n1,a.png\n")  # a detect run's table, say
    code, _, err = run_cli(capsys, "predict", "--run", finished, "--dataset", gray, "--out", out)
    assert code == 2
    one_line_error(err, f"--out: {out} exists", "--overwrite")
    assert out.read_text() == "rank,path\n1,a.png\n"
    assert run_cli(capsys, "predict", "--run", finished, "--dataset", gray, "--out", out, "--overwrite")[0] == 0
    assert len(pd.read_csv(out)) == 6


def test_predict_does_not_overwrite_the_skipped_list_beside_its_table_unasked(tmp_path, finished, gray, capsys):
    (tmp_path / "p.skipped.csv").write_text("mine")
    code, _, err = run_cli(capsys, "predict", "--run", finished, "--dataset", gray, "--out", tmp_path / "p.csv")
    assert code == 2
    one_line_error(err, "p.skipped.csv exists")
    assert not (tmp_path / "p.csv").exists()


def test_images_at_the_root_and_in_a_sub_folder_are_all_read(tmp_path, capsys):
    pile = make_images(tmp_path / "pile", n=5)
    make_images(pile / "rejects", n=3, seed=1)
    code, out, _ = run_cli(capsys, "data", "info", pile)
    assert code == 0
    assert "pile: 8 images" in out and "(unlabelled)" in out
    assert "5 images at the root" in out and "all read as one unlabelled pile" in out


def test_sub_folders_are_classes_when_every_image_lies_in_one(tmp_path, capsys):
    make_images(tmp_path / "pile" / "good", n=4)
    make_images(tmp_path / "pile" / "scratch", n=2, seed=1)
    code, out, _ = run_cli(capsys, "data", "info", tmp_path / "pile")
    assert code == 0 and "pile: 6 images" in out and "scratch" in out and "unlabelled" not in out


@pytest.mark.parametrize("layout", ["flat", "classes"])
def test_a_run_folder_inside_the_pile_is_never_read_as_images(tmp_path, capsys, layout):
    pile = tmp_path / "pile"
    if layout == "flat":
        make_images(pile, n=5)
    else:
        make_images(pile / "good", n=4)
        make_images(pile / "bad", n=2, seed=1)
    run = make_images(pile / "runs" / "old" / "overlays", n=3, seed=2).parent  # an earlier run's overlays
    (run / "metrics.json").write_text("{}")
    locked = make_images(pile / "writing", n=2, seed=3)  # a run still writing: only its lock so far
    (locked / ".steelnb.lock").write_text("pid 1")
    code, out, _ = run_cli(capsys, "data", "info", pile)
    assert code == 0, out
    assert f"pile: {5 if layout == 'flat' else 6} images" in out
    assert "skipped runs/old: a steelnb run folder (holds metrics.json)" in out
    assert "skipped writing: a steelnb run folder (holds .steelnb.lock)" in out


@pytest.mark.parametrize("command", ["train", "detect"])
def test_an_out_dir_inside_the_pile_is_refused_before_anything_is_created(tmp_path, gray, capsys, command):
    pile = tmp_path / "pile"
    shutil.copytree(gray, pile)
    out = pile / "runs" / "mine"
    flags = FAST if command == "train" else ["--profile", "ci"]
    code, _, err = run_cli(capsys, command, *flags, "--dataset", pile, "--out-dir", out)
    assert code == 2
    one_line_error(err, f"--out-dir {out} lies inside the pile {pile}")
    assert not (pile / "runs").exists()


def test_masks_and_labels_are_left_out_and_a_named_layout_is_named(tmp_path, capsys):
    """A DAGM split (images, Label/ with masks and Labels.txt) and a KolektorSDD folder (images/, polygons/)."""
    split = make_images(tmp_path / "dagm" / "Class1" / "Test", n=4)
    label = make_images(split / "Label", n=2, seed=1)
    for mask in label.iterdir():
        mask.rename(label / f"{mask.stem}_label.png")
    (label / "Labels.txt").write_text("ID Flag Name _ Mask\n")
    (split / "0001_label.png").write_bytes((split / "00.png").read_bytes())  # a mask astray beside the images
    for root, shown in ((tmp_path / "dagm", "Class1/Test/Label"), (split, "Label")):
        code, out, _ = run_cli(capsys, "data", "info", root)
        assert code == 0 and ": 4 images" in out, out
        assert f"skipped {shown}: a folder of defect masks or labels" in out and "_label.png: a defect mask" in out
        assert f"laid out like the dagm set: steelnb data info dagm --data-root {tmp_path / 'dagm'}" in out
    ksdd = tmp_path / "ksdd"
    make_images(ksdd / "images" / "good", n=3)
    make_images(ksdd / "images" / "defective", n=1, seed=1)
    (ksdd / "polygons").mkdir()
    (ksdd / "polygons" / "00.txt").write_text("0 0.1 0.1 0.2 0.2")
    code, out, _ = run_cli(capsys, "data", "info", ksdd)
    assert code == 0 and "ksdd: 4 images" in out and "skipped polygons: a folder of defect masks" in out
    assert f"laid out like the ksdd set: steelnb data info ksdd --data-root {ksdd}" in out


def test_exif_orientation_is_applied_on_reading(tmp_path, capsys):
    """A JPEG stored 16 high x 32 wide, dark on the left, with EXIF orientation 6 (shown turned 90 degrees
    clockwise): read 32 high x 16 wide, dark at the top, as a viewer shows it."""
    from steelnb.data.decode import read_image

    pile = tmp_path / "pile"
    pile.mkdir()
    stored = np.full((16, 32), 230, np.uint8)
    stored[:, :16] = 20
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(pile / "turned.jpg", exif=exif, quality=95)
    pixels, source, _ = read_image(pile / "turned.jpg", (32, 16))
    assert source == (32, 16)
    assert pixels[0, :16].mean() < 60 and pixels[0, 16:].mean() > 180  # dark on top
    code, out, _ = run_cli(capsys, "data", "info", pile, "--image-size", "8")
    assert code == 0 and "all 16x32" in out  # W x H, upright


def test_a_learning_rate_that_blows_the_weights_up_is_named_training_diverged(tmp_path, gray, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *FAST, "--epochs", "2", "--lr", "1e30", "--dataset", gray, "--out-dir", out)
    assert code == 2
    one_line_error(err, "training diverged", "lower --lr (now 1e+30)")


@pytest.mark.parametrize("error, status, fragments", [
    (RuntimeError("boom\nsecond line"), 1, ["unexpected RuntimeError: boom second line", "rerun with --debug"]),
    (OSError(28, "No space left on device", "run/scores.csv"), 2, ["the disk is full writing run/scores.csv",
                                                                   "--resume"]),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 98765432100 bytes"), 2, ["out of memory", "lower --batch-size"]),
])
def test_an_unexpected_error_is_one_line_and_its_traceback_needs_debug(tmp_path, capsys, monkeypatch, error, status,
                                                                      fragments):
    def failing(run_dir):
        raise error

    monkeypatch.setattr("steelnb.cli.report.write_report", failing)
    code, _, err = run_cli(capsys, "report", tmp_path)
    assert code == status
    one_line_error(err, *fragments)
    with pytest.raises(type(error)):
        main(["report", str(tmp_path), "--debug"])


def test_ctrl_c_while_the_command_starts_up_is_one_line(tmp_path):
    """A Ctrl-C while the command imports torch and the rest (seconds): no traceback."""
    program = ("import sys\n"
               "from steelnb.cli import main\n"
               "class Interrupt:\n"
               "    def find_spec(self, name, *args):\n"
               "        if name == 'torch':\n"
               "            raise KeyboardInterrupt\n"
               "sys.meta_path.insert(0, Interrupt())\n"
               "sys.exit(main(['train', '--help']))\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert (done.returncode, done.stderr) == (130, "steelnb: interrupted\n")


@pytest.mark.parametrize("spelling", ["absolute", "trailing-slash"])
def test_resume_takes_the_same_pile_spelled_another_way(tmp_path, gray, capsys, interrupt_training, monkeypatch,
                                                       spelling):
    monkeypatch.chdir(gray.parent)
    out = tmp_path / "run"
    interrupt_training(1)
    assert run_cli(capsys, "train", *FAST, "--epochs", "2", "--dataset", gray.name, "--out-dir", out)[0] == 130
    interrupt_training(None)
    again = str(gray) if spelling == "absolute" else f"{gray.name}/"
    code, _, err = run_cli(capsys, "train", *FAST, "--epochs", "2", "--dataset", again, "--out-dir", out, "--resume")
    assert code == 0, err
    assert (out / "model.pt").is_file()


def test_resume_on_a_pile_that_changed_says_what_changed(tmp_path, capsys, interrupt_training):
    pile = make_images(tmp_path / "pile", n=6)
    out = tmp_path / "run"
    interrupt_training(1)
    argv = ["train", *FAST, "--epochs", "2", "--dataset", pile, "--out-dir", out]
    assert run_cli(capsys, *argv)[0] == 130
    interrupt_training(None)
    make_images(tmp_path / "more", n=8, seed=5)
    for name in ("06.png", "07.png"):
        shutil.copy(tmp_path / "more" / name, pile / name)
    (pile / "00.png").unlink()
    before = snapshot(out)
    code, _, err = run_cli(capsys, *argv, "--resume")
    assert code == 2
    one_line_error(err, "pile changed since", "2 images added (06.png, 07.png); 1 image gone (00.png)",
                   "--overwrite")
    assert snapshot(out) == before


def test_a_pile_of_links_to_a_sibling_folder_says_the_links_were_refused(tmp_path, capsys):
    images = make_images(tmp_path / "images", n=3)
    links = tmp_path / "links"
    links.mkdir()
    for image in images.iterdir():
        (links / image.name).symlink_to(image)
    code, _, err = run_cli(capsys, "data", "info", links)
    assert code == 2
    one_line_error(err, f"no image files in {links}: 3 symlinks lead outside it and were refused",
                   "give the folder they lead to")


def test_masks_beside_the_images_are_left_out_in_one_line(tmp_path, capsys):
    pile = make_images(tmp_path / "pile", n=6)
    for image in sorted(pile.iterdir())[:5]:
        (pile / f"{image.stem}_mask.png").write_bytes(image.read_bytes())
    code, out, _ = run_cli(capsys, "data", "info", pile)
    assert code == 0 and "pile: 6 images" in out
    skipped = [line for line in out.splitlines() if "skipped" in line]
    assert skipped == ["  skipped 5 files (00_mask.png, 01_mask.png, ...): a defect mask or label (name ends in _label "
                       "/ _mask), not an image"]


def test_exif_orientation_of_a_png_is_read_from_its_header(tmp_path):
    """A PNG stored 16 high x 32 wide with EXIF orientation 6 in its header: its size is read turned, without
    decoding the file, and it decodes turned."""
    from steelnb.data.decode import header_shape
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(tmp_path / "turned.png", exif=exif)
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(tmp_path / "upright.png")
    assert header_shape(tmp_path / "turned.png") == (32, 16)
    assert header_shape(tmp_path / "upright.png") == (16, 32)
