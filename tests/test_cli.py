"""The command line: data info, train from flags and profiles, predict, and clear errors."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from steelnb.cli import main, make_parser
from steelnb.cli.flags import build_config
from steelnb.profiles import get_profile


def test_data_info_prints_counts_and_defect_rate(capsys):
    assert main(["data", "info", "synthetic", "--image-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "synthetic: 600 images" in out
    assert "defect rate: 20.0%" in out
    assert "read by: detect / inspect at their own aspect, the longer side at most --max-side px (default 512" in out
    assert "shown here at 32 x 32" in out


def test_data_info_on_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "info", "neu", "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # Without a name every named set is listed; one that is not there says why, and that is no error.
    assert main(["data", "info", "--data-root", str(tmp_path / "nowhere"), "--image-size", "32"]) == 0
    assert "neu: not available" in capsys.readouterr().out


def test_flags_override_the_profile_which_overrides_defaults(tmp_path):
    args = make_parser().parse_args(["train", "--profile", "ci", "--epochs", "5", "--no-whiten",
                                     "--pca-dim", "none", "--out-dir", str(tmp_path)])
    config = build_config(args)
    assert config.epochs == 5  # flag
    assert config.image_size == 64  # ci profile
    assert config.pca_dim is None and config.whiten is False
    assert config.optimizer == "radam"  # dataclass default


def test_train_then_predict_on_a_users_flat_folder(tmp_path, capsys):
    folder = tmp_path / "strips"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8)).save(folder / f"{i:03}.png")
    run = tmp_path / "run"
    common = ["--profile", "ci", "--dataset", str(folder), "--out-dir", str(run), "--n-clusters", "2",
              "--steps-per-epoch", "1", "--epochs", "1"]
    assert main(["train", *common]) == 0
    assert json.loads((run / "metrics.json").read_text())["eval_clusters"] == 2
    out_csv = tmp_path / "pred.csv"
    assert main(["predict", "--run", str(run), "--dataset", str(folder), "--out", str(out_csv)]) == 0
    assert len(pd.read_csv(out_csv)) == 12


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path / "missing"), "--out-dir", str(tmp_path)]) == 2
    assert "unknown data set" in capsys.readouterr().err
    assert main(["train", "--profile", "ci", "--resume", "--out-dir", str(tmp_path / "fresh")]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--profile", "gpu-please"])


def image_folder(root, classes: dict[str, int], shape=(40, 50)):
    """root/<class>/NNN.png, noise images; a flat folder for the class ""."""
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / name / f"{i:03}.png")
    return root


def test_train_on_a_folder_shows_every_phase_and_quiet_silences_it(tmp_path, capsys):
    folder = image_folder(tmp_path / "parts", {"good": 6, "dent": 6})
    common = ["train", "--profile", "ci", "--dataset", str(folder), "--epochs", "1", "--steps-per-epoch", "2"]
    assert main([*common, "--out-dir", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    phases = ["decoding 12 images", "epoch 1/1: features of 12 images", "epoch 1/1: clustering into 7",
              "epoch 1/1: training", "final features of 12 images", "final clustering into 2"]
    lines = captured.err.splitlines()
    for phase, line in zip(phases, lines, strict=True):
        assert line.startswith(f"{phase} ...") and " done in " in line, (phase, line)
    assert "defect-free class: 'good' (found by its name" in captured.out
    assert "label-free decision (largest cluster = defect-free): ACC" in captured.out
    matched = next(line for line in captured.out.splitlines() if line.startswith("matched to the labels"))
    assert ", MDR " in matched  # scored with 'good' as the defect-free class
    assert main([*common, "--out-dir", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert " ... " not in capsys.readouterr().err


def test_data_info_summarises_mixed_sizes_channels_and_bit_depth(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.zeros((100, 200), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((100, 300), np.uint8)).save(folder / "b.png")
    Image.fromarray(np.zeros((50, 400, 3), np.uint8)).save(folder / "c.png")
    Image.fromarray(np.zeros((100, 200), np.uint16)).save(folder / "d.png")
    assert main(["data", "info", str(folder), "--image-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "source files: 4 files, 3 distinct sizes (--sizes lists them)" in out
    assert "width  200 / 250 / 400 px (min / median / max)" in out
    assert "height 50 / 100 / 100 px" in out
    assert "aspect ratio (W/H) 2.00 / 2.50 / 8.00" in out
    assert "form: 2 grayscale, 8 bit (L), 1 RGB, 8 bit (RGB), 1 grayscale, 16 bit (I;16)" in out
    assert "200x100" not in out  # the list only on request
    assert main(["data", "info", str(folder), "--image-size", "16", "--sizes"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.strip().splitlines()[-3:]]
    assert listed == [["200x100", "2"], ["300x100", "1"], ["400x50", "1"]]


def test_data_info_and_train_take_the_defect_free_folder(tmp_path, capsys):
    folder = image_folder(tmp_path / "parts", {"Good": 3, "dent": 1})
    assert main(["data", "info", str(folder), "--image-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "defect rate: 25.0%" in out and "defect-free class: 'Good' (found by its name" in out
    assert main(["data", "info", str(folder), "--image-size", "16", "--normal-class", "dent"]) == 0
    assert "defect rate: 75.0%" in capsys.readouterr().out
    assert main(["train", "--profile", "ci", "--normal-class", "good", "--out-dir", str(tmp_path / "r")]) == 2
    assert "knows its own classes" in capsys.readouterr().err
    assert main(["train", "--profile", "ci", "--dataset", str(folder), "--normal-class", "good",
                 "--out-dir", str(tmp_path / "r")]) == 2
    assert "'good' is not a sub-folder" in capsys.readouterr().err


def test_train_says_why_there_is_no_defect_decision(tmp_path, capsys):
    folder = image_folder(tmp_path / "types", {"crack": 4, "pit": 4})
    assert main(["train", "--profile", "ci", "--dataset", str(folder), "--epochs", "1", "--steps-per-epoch", "1",
                 "--out-dir", str(tmp_path / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "label-free decision (" not in out
    assert ("label-free defect decision: not scored: types names no defect-free class among ['crack', 'pit']; "
            "--normal-class NAME names one") in out


def test_predict_scores_its_decision_where_the_folder_names_a_defect_free_class(tmp_path, capsys):
    folder = image_folder(tmp_path / "parts", {"ok": 5, "dent": 3})
    run = tmp_path / "run"
    assert main(["train", "--profile", "ci", "--dataset", str(folder), "--epochs", "1", "--steps-per-epoch", "1",
                 "--out-dir", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--dataset", str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "p.csv")
    called = table.predicted_defective.to_numpy()
    truth = np.array([0 if p.startswith("ok") else 1 for p in table.path])
    assert f"against the folder's defect-free class: ACC {np.mean(called == truth):.3f}" in out
    assert main(["predict", "--run", str(run), "--dataset", str(folder), "--normal-class", "",
                 "--out", str(tmp_path / "p.csv"), "--overwrite"]) == 0
    assert "against the folder's" not in capsys.readouterr().out


def synthetic_folder(root, n=24, rate=0.35, size=96):
    """root/good/ and root/<defect type>/ of synthetic steel PNGs: a small labelled pile."""
    from steelnb.data import load_dataset

    data = load_dataset("synthetic", image_size=size, n_images=n, defect_rate=rate, seed=1)
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        folder = root / ("good" if label == 0 else data.class_names[label])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0]).save(folder / f"{i:03}.png")
    return root


def test_inspect_takes_a_folder_to_types_galleries_and_a_report(tmp_path, capsys):
    folder, out = synthetic_folder(tmp_path / "pile"), tmp_path / "run"
    # The rule `top` flags the 6 highest, so that a few images are grouped whatever the random ci backbone ranks;
    # --train-min-crops 2: the ci profile trains on them.
    assert main(["inspect", str(folder), "--out-dir", str(out), "--profile", "ci", "--types", "2", "--rule", "top",
                 "--cutoff", "6", "--train-min-crops", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "then the types with the joint method (profile ci)" in printed and "types from the " in printed
    assert "types: 2 among" in printed and "defect-free + types ACC" in printed and "report:" in printed
    for name in ("scores.csv", "types.csv", "metrics.json", "config.json", "report.html", "galleries", "crops",
                 "overlays", "type_history.csv"):
        assert (out / name).exists(), name
    scores = pd.read_csv(out / "scores.csv", keep_default_na=False, na_values=[""])
    flagged = scores[scores.defective == 1]
    assert len(flagged) >= 2 and set(flagged.type) <= {0, 1} and all((out / c).is_file() for c in flagged.crop)
    page = (out / "report.html").read_text()
    assert "Defect types" in page and "galleries/type_00.png" in page and "crops/" in page
    config = json.loads((out / "config.json").read_text())
    assert config["max_side"] == get_profile("ci").detect["max_side"]  # the ci profile's detection sizes
    assert config["types"]["profile"] == "ci"
    # The folder is claimed like any run folder: a second run needs --overwrite.
    assert main(["inspect", str(folder), "--out-dir", str(out), "--profile", "ci", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--types", "0"], "flag --types: types must be at least 1, got 0"),
    (["--min-types", "5", "--max-types", "3"], "min_types (5) must not exceed max_types (3)"),
    (["--crop-share", "1.5"], "flag --crop-share: crop_share must be at most 1"),
    (["--max-side", "8"], "flag --max-side: max_side must be at least 32"),
])
def test_inspect_bad_settings_are_one_line_errors(tmp_path, capsys, flags, message):
    folder = image_folder(tmp_path / "pile", {"": 3})
    assert main(["inspect", str(folder), "--out-dir", str(tmp_path / "run"), "--profile", "ci", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # refused before any work


def test_inspect_bad_piles_are_one_line_errors(tmp_path, capsys):
    run = ["--out-dir", str(tmp_path / "run"), "--profile", "ci", "--quiet"]
    assert main(["inspect", str(tmp_path / "missing"), *run]) == 2
    assert "unknown data set" in capsys.readouterr().err
    single = image_folder(tmp_path / "single", {"": 1})
    assert main(["inspect", str(single), *run, "--method", "bank"]) == 2
    err = capsys.readouterr().err
    assert "at least 2 images" in err and err.count("\n") == 1
    assert main(["inspect", str(single), *run]) == 0  # the default scorer (self) takes a pile of one
    assert "types: no image was flagged defective" in capsys.readouterr().out  # said, and stopped cleanly
    assert (tmp_path / "run" / "report.html").is_file() and not (tmp_path / "run" / "galleries").exists()
    assert main(["inspect", "--out-dir", str(tmp_path / "run2")]) == 2  # no pile
    assert "inspect needs a pile" in capsys.readouterr().err


def sub_parsers(parser, path=()):
    """(command path, parser) of every command and sub-command below `parser`."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from sub_parsers(sub, (*path, name))


def test_every_flag_of_every_command_says_what_it_means():
    walked = dict(sub_parsers(make_parser()))
    assert {("detect",), ("inspect",), ("train",), ("predict",), ("data", "info"), ("report",)} <= walked.keys()
    for path, parser in walked.items():
        for action in parser._actions:
            if action.dest in ("help", "command", "data_command"):
                continue
            text = (action.help or "").split("(default")[0].split("(profile")[0].strip()
            assert len(text) > 8, f"steelnb {' '.join(path)} {action.option_strings or action.dest}: no help"


def test_help_shows_allowed_values_and_the_profiles_defaults():
    parser = make_parser()
    helps = {path: parser.format_help() for path, parser in sub_parsers(parser)}
    detect, train, inspect = helps[("detect",)], helps[("train",)], helps[("inspect",)]
    assert "mad | gmm | gap" in detect.replace("\n", " ").replace("  ", "")
    assert "profile ci: 64" in " ".join(detect.split())  # --max-side as the ci profile sets it
    train = " ".join(train.split())
    assert "profile ci: resnet18, cpu: efficientnet_lite0, paper: convnextv2_tiny; without --profile: resnet18" \
        in train
    assert "(default resnet18" not in train  # every profile replaces it
    assert "(ci | cpu | paper)" in " ".join(inspect.split())  # inspect --profile lists its choices
    assert "ksdd" in helps[("data", "info")]


@pytest.mark.parametrize("command", ["detect", "inspect"])
def test_detect_and_inspect_take_the_pile_the_same_way(command):
    parser = make_parser()
    out = ["--out-dir", "run"]
    assert parser.parse_args([command, "pile/", *out]).dataset == "pile/"
    assert parser.parse_args([command, "--dataset", "pile/", *out]).dataset == "pile/"


@pytest.mark.parametrize("labels, shown", [(["crack", "crack"], False), (["crack", "pit"], True)])
def test_inspect_prints_no_type_accuracy_where_one_defect_class_makes_it_mean_nothing(tmp_path, labels, shown):
    from steelnb.cli.inspect import inspect_summary

    pd.DataFrame({"path": ["a", "b", "c"], "defective": [1, 1, 0], "truth": [1, 1, 0], "label": [*labels, "good"],
                  "type": [0, 1, -1]}).to_csv(tmp_path / "scores.csv", index=False)
    scored = {"acc": 1.0, "nmi": 1.0}
    run = {"wall_s": 1, "s_per_image": 0.3, "backbone": "b", "weights": "w", "device": "cpu"}
    metrics = {"n_images": 3, "run": run,
               "label_free": {"rule": "mad", "flagged": 2, "threshold": 1.0},
               "type_stage": {"k": 2, "grouped": 2, "how": "given", "sizes": [1, 1]},
               "two_cluster": scored, "types": {**scored, "n": 2, "false_alarms": 0}}
    printed = inspect_summary(metrics, tmp_path)
    assert ("types ACC 1.000" in printed) is shown
    assert ("no type accuracy: the 2 truly defective flagged images all hold one defect class" in printed) is not shown


@pytest.mark.parametrize("decision, shown", [({"rule": "auto", "rule_used": "null"}, "(auto: null)"),
                                             ({"rule": "mad"}, "(mad)")])
def test_detect_says_which_rule_decided_where_auto_chose_it(tmp_path, decision, shown):
    from steelnb.cli.decide import decide_summary
    from steelnb.cli.detect import detect_summary

    run = {"wall_s": 1, "s_per_image": 0.3, "backbone": "b", "weights": "w", "device": "cpu"}
    metrics = {"n_images": 3, "run": run, "label_free": {**decision, "flagged": 1, "threshold": 1.0}, "scored": ""}
    assert f"label-free decision {shown}: 1 flagged defective" in detect_summary(metrics, tmp_path)
    again = decide_summary({**metrics, "label_free": {**metrics["label_free"], "cutoff": 3.0}}, 0.1)
    assert f"label-free rule {shown.strip('()')}, cutoff 3;" in again
