"""The `steelnb` command: data info, train, predict, detect, decide, inspect, bench, report."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path

try:  # importing torch and the rest takes seconds: a Ctrl-C meanwhile ends the command without a traceback
    import pandas as pd

    from . import distributed, progress, validation
    from .backbones import check_backbone
    from .data import READERS, DataError, ImageSet, check_source, load_dataset
    from .data.sources import describe, size_list
    from .detect.config import RULES, DetectConfig
    from .errors import SteelnbError, SteelnbWarning
    from .inspection.config import TypesConfig
    from .method.config import TrainConfig
    from .method.inputs import decision_absent, prepare_data, skipped_table
    from .method.model import TrainedRun
    from .method.predict import calibrate_threshold, predict
    from .method.runfiles import RUN_FILES
    from .method.train import train
    from .metrics import defect_scores_metrics
    from .profiles import PROFILES, get_profile
    from .runfolder import atomic_path, check_output_file, check_outside, claim_run_folder
    from .validation import ConfigError
except KeyboardInterrupt:
    print("steelnb: interrupted", file=sys.stderr)
    raise SystemExit(130) from None


def _parse_optional(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "null") else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _add_config_flags(parser: argparse.ArgumentParser, config_class: type = TrainConfig,
                      skip: tuple[str, ...] = (), part: str | None = "train", implied: str | None = None) -> None:
    """One --flag per field of `config_class` (choices where the field has them), except `skip`; a flag not
    given leaves the profile's or dataclass's value. Its help is the field's `Help` text (`validation.field_help`)
    with the default as the profiles set it (their table `part`; `implied`: the profile taken without --profile)."""
    defaults = {f.name: f.default for f in fields(config_class)}
    helps = validation.field_help(config_class)
    for name, (kind, optional, rules) in validation.specs(config_class).items():
        if kind not in (int, float, str, bool) or name in skip:
            continue
        flag = f"--{name.replace('_', '-')}"
        shown = f"{helps.get(name, '')} ({default_words(name, defaults[name], part, implied)})".replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=shown)
            continue
        choices = next((rule.choices for rule in rules if isinstance(rule, validation.OneOf)), None)
        parser.add_argument(flag, type=_parse_optional(kind) if optional else kind, default=argparse.SUPPRESS,
                            choices=choices, metavar=name.upper(), help=shown)


def default_words(name: str, default, part: str | None, implied: str | None = None) -> str:
    """A field's default as the profiles set it: "default 7; profile cpu: 30", or, where every profile sets it
    (so the dataclass's default holds only without --profile), "profile ci: 64, cpu: 200, ...; without --profile:
    none". `part`: the profiles' table (train, detect; None: no profile sets the field); `implied`: the profile
    taken when none is given.

    >>> default_words("backbone", "resnet18", "train")
    'profile ci: resnet18, cpu: efficientnet_lite0, paper: convnextv2_tiny; without --profile: resnet18'
    >>> default_words("max_side", 512, "detect")
    'default 512; profile ci: 64'
    """
    def word(value) -> str:
        return "none" if value is None else str(value)

    tables = {profile: getattr(PROFILES[profile], part) for profile in PROFILES} if part else {}
    set_by = {profile: table[name] for profile, table in tables.items() if name in table}
    if implied is None and len(set_by) == len(tables) and set(map(str, set_by.values())) != {str(default)}:
        listed = ", ".join(f"{profile}: {word(value)}" for profile, value in set_by.items())
        return f"profile {listed}; without --profile: {word(default)}"
    base = set_by.get(implied, default)
    others = ", ".join(f"{profile}: {word(value)}" for profile, value in set_by.items() if value != base)
    return f"default {word(base)}" + (f"; profile {others}" if others else "")


def _add_detect_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = (), implied: str | None = None,
                      pile: str = "default synthetic") -> None:
    """The flags `steelnb detect` and `steelnb inspect` share: the pile (PILE, or --dataset; `pile` says its
    default), --overwrite, --normal-class and one per `DetectConfig` field (except `skip`)."""
    about = validation.field_help(DetectConfig)["dataset"]
    parser.add_argument("dataset", nargs="?", metavar="PILE", default=argparse.SUPPRESS, help=f"{about} ({pile})")
    parser.add_argument("--dataset", default=argparse.SUPPRESS, metavar="PILE", help="the same as PILE")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--normal-class", help=NORMAL_CLASS_HELP + "; used to score the answer only")
    _add_config_flags(parser, DetectConfig, ("dataset", "normal_class", *skip), "detect", implied)


def read_config_file(path: str, kind: str = "config") -> dict:
    """The JSON object of a --config file of `kind` (TrainConfig, DetectConfig) fields; ConfigError naming the file
    when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--config {path}: cannot be read ({error})") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise ConfigError(f"{path}: not valid JSON ({error.msg} at {where})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: must hold one JSON object of {kind} fields, not a {type(values).__name__}")
    return values


def build_config(args: argparse.Namespace, config_class: type = TrainConfig, profile_part: str | None = "train",
                 profile: str | None = None):
    """Dataclass defaults <- profile <- --config file <- explicit flags; an error names the source of the value.

    The profile (`profile`, else --profile) contributes its table `profile_part` ("train", "detect"; None: none).

    >>> config = build_config(make_parser().parse_args(["train", "--profile", "ci", "--epochs", "1"]))
    >>> config.epochs, config.backbone, config.clusterer  # the flag over the ci profile over the defaults
    (1, 'resnet18', 'kmeans')
    >>> build_config(make_parser().parse_args(["train", "--epochs", "0"]))
    Traceback (most recent call last):
    ...
    steelnb.validation.ConfigError: flag --epochs: epochs must be at least 1, got 0
    """
    values, sources, layers = {}, {}, []
    profile = profile or getattr(args, "profile", None)
    if profile and profile_part:
        layers.append((dict(getattr(get_profile(profile), profile_part)), f"profile {profile}"))
    if getattr(args, "config", None):
        layers.append((read_config_file(args.config, config_class.__name__), args.config))
    given = vars(args)
    for name in (f.name for f in fields(config_class) if f.name in given):
        layers.append(({name: given[name]}, f"flag --{name.replace('_', '-')}"))
    for layer, source in layers:
        values.update(layer)
        sources.update(dict.fromkeys(layer, source))
    return config_class.from_dict(values, sources)


def folder_options(dataset: str, normal_class: str | None) -> dict:
    """The loader options --normal-class means for `dataset`: only an image folder has sub-folders to name."""
    if normal_class is None:
        return {}
    if dataset in READERS:
        raise DataError(f"--normal-class names a sub-folder of your image folder; {dataset} knows its own classes.")
    return {"normal_class": normal_class}


def check_before_work(dataset: str, data_root: str | None, options: dict, out_dir: str | Path, backbone: str,
                      weights: str) -> None:
    """What a run can check before it claims its folder (where --overwrite moves the earlier run aside): the pile
    is there and holds image files, the out-dir lies outside it, the backbone and its weights exist."""
    check_backbone(backbone, weights)
    pile = check_source(dataset, data_root, **options)
    if pile is not None:
        check_outside(out_dir, pile)


def data_notes(data: ImageSet) -> list[str]:
    """What a person should know about how a data set was read: its defect-free class, its layout."""
    return [data.meta[key] for key in ("layout_note", "normal_class_note") if key in data.meta]


def cmd_data_info(args: argparse.Namespace) -> None:
    """One data set asked for: an error when it cannot be read; none: every named set, or why it is not there."""
    names = [args.name] if args.name else ["synthetic", "neu", "dagm", "severstal"]
    for name in names:
        try:
            data = load_dataset(name, args.data_root, args.image_size, **folder_options(name, args.normal_class))
        except DataError as error:
            if args.name:
                raise
            print(f"{name}: not available ({error})\n")
            continue
        summary = data.summary()
        print(f"{summary['name']}: {summary['images']} images, array {summary['array']}")
        for cls, count in summary["classes"].items():
            print(f"  {cls:<20} {count}")
        rate = summary["defect_rate"]
        print(f"  defect rate: {'unknown' if rate is None else f'{rate:.1%}'}")
        for note in data_notes(data):
            print(f"  {note}")
        print("  source files: " + "\n    ".join(describe(summary["source_sizes"], summary["source_modes"])))
        print(f"  {read_sizes(data)}")
        if args.sizes:
            print("\n".join(f"    {line}" for line in size_list(summary["source_sizes"])))
        for line in skipped_lines(data.skipped):
            print(f"  {line}")
        print()


def read_sizes(data: ImageSet) -> str:
    """The size each command reads the images at, beside the one `data info` shows."""
    height, width = data.images.shape[-2:]
    detect = default_words("max_side", DetectConfig.max_side, "detect")
    train = default_words("image_size", None, "train").replace("none", "the set's own")
    return (f"read by: detect / inspect at their own aspect, the longer side at most --max-side px ({detect}); "
            f"train / predict at --image-size ({train}); shown here at {height} x {width}")


def skipped_lines(skipped: tuple[tuple[str, str], ...], most: int = 3) -> list[str]:
    """One line a file left out, or one line for the files left out for the same reason when more than `most` were
    (a set's masks, say).

    >>> skipped_lines((("a_mask.png", "a mask"), ("b_mask.png", "a mask"), ("c.txt", "not an image")), most=1)
    ['skipped 2 files (a_mask.png, b_mask.png): a mask', 'skipped c.txt: not an image']
    """
    by_reason: dict[str, list[str]] = {}
    for path, why in skipped:
        by_reason.setdefault(why, []).append(path)
    lines = []
    for why, paths in by_reason.items():
        if len(paths) > most:
            lines.append(f"skipped {len(paths)} files ({', '.join(paths[:2])}{', ...' * (len(paths) > 2)}): {why}")
        else:
            lines += [f"skipped {path}: {why}" for path in paths]
    return lines


def cmd_train(args: argparse.Namespace) -> None:
    from .html_report import save_thumbnails, write_report

    config = build_config(args)
    config.dataset_options = {**config.dataset_options, **folder_options(config.dataset, args.normal_class)}
    check_before_work(config.dataset, config.data_root, config.dataset_options, config.out_dir, config.backbone,
                      config.weights)
    # Under torchrun every process trains its shard; rank 0 alone claims the folder, prints and writes.
    with processes_of_one_run(config.device, lambda: claim_run_folder(
            config.out_dir, RUN_FILES, overwrite=args.overwrite, resume=args.resume, resume_file="checkpoint.pt",
            finished_file="model.pt")) as world:
        data = distributed.main_first(prepare_data, config)
        announce(world, data, f"{data.name}: {len(data)} images"
                 f"{skipped_note(data, Path(config.out_dir) / 'skipped.csv')}; backbone {config.backbone} "
                 f"({config.weights}); {config.epochs} epochs{processes(world)} -> {config.out_dir}")
        result = train(config, data, resume=args.resume)
        if not world.main:
            return
        save_thumbnails(config.out_dir, data.images)  # report_files/ and report.html are run files (RUN_FILES)
        report = write_report(config.out_dir)
    print(summary(result, config.out_dir))
    print(f"report: {report.resolve()} (open it in a browser)")


@contextlib.contextmanager
def processes_of_one_run(device: str, claim: Callable[[], contextlib.AbstractContextManager]) \
        -> Iterator[distributed.World]:
    """The command's processes (one, or torchrun's) joined for one run: rank 0 alone claims the run folder
    (`claim()`; `contextlib.nullcontext` where there is none) and reports progress."""
    with distributed.session(device) as world, distributed.main_context(claim):
        if not world.main:
            progress.set_quiet(True)
        yield world


def announce(world: distributed.World, data: ImageSet, line: str) -> None:
    """What a run is about to do, and the set's defect-free class note, printed once (by rank 0)."""
    if world.main:
        print("\n".join([line, *data_notes(data)]))


def processes(world: distributed.World) -> str:
    """" on 2 processes" under torchrun, else nothing."""
    return f" on {world.size} processes" if world.size > 1 else ""


def skipped_note(data: ImageSet, listed_in: Path) -> str:
    """", 3 files skipped (listed in x)" when files were left out, else nothing."""
    n = len(data.skipped)
    return f", {n} file{'s' * (n != 1)} skipped (listed in {listed_in})" if n else ""


def summary(result: dict, out_dir: str) -> str:
    """A few lines a person reads after a run; metrics.json holds everything."""
    run = result["run"]
    lines = [f"{result['n_images']} images -> {result['eval_clusters']} clusters in {run['wall_s']} s "
             f"({run['backbone']}, weights {run['weights']}, {run['device']})"]
    if "metrics" in result:
        m = result["metrics"]
        rates = f", MDR {m['mdr']:.3f}, FDR {m['fdr']:.3f}" if "mdr" in m else ""
        lines.append(f"matched to the labels: ACC {m['acc']:.3f}, NMI {m['nmi']:.3f}{rates}")
    if "decision" in result:
        d = result["decision"]
        lines.append(f"label-free decision (largest cluster = defect-free): ACC {d['acc']:.3f}, "
                     f"MDR {d['mdr']:.3f}, FDR {d['fdr']:.3f}")
    elif "decision_absent" in result:
        lines.append(f"label-free defect decision: {result['decision_absent']}")
    lines.append(f"per image: {out_dir}/assignments.csv; all numbers: {out_dir}/metrics.json")
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> None:
    out = Path(args.out)
    for path in (out, skipped_path(out)):
        check_output_file(path, "--out", overwrite=args.overwrite)
    run = TrainedRun.load(args.run)
    # Under torchrun every process assigns its shard of the images; rank 0 alone prints and writes.
    with processes_of_one_run("auto", contextlib.nullcontext) as world:
        threshold = calibrated_threshold(run, args, world) if args.calibrate else args.threshold
        data = distributed.main_first(load_dataset, args.dataset, args.data_root, run.image_size,
                                      **folder_options(args.dataset, args.normal_class))
        table = predict(run, data, threshold)
    if world.main:
        write_predictions(table, data, out)


def calibrated_threshold(run: TrainedRun, args: argparse.Namespace, world: distributed.World) -> float:
    """The distance threshold for MDR <= --target-mdr on the --calibrate set, the same on every process (each
    assigns its shard, every process gets every distance); rank 0 prints it."""
    labelled = distributed.main_first(load_dataset, args.calibrate, args.data_root, run.image_size)
    if not labelled.has_defect_flags:
        raise DataError(f"{args.calibrate}: calibration needs defect / defect-free flags")
    threshold = calibrate_threshold(run.distances(labelled)[2], labelled.defective == 1, args.target_mdr)
    if world.main:
        print(f"threshold {threshold:.4f} for MDR <= {args.target_mdr} on {labelled.name}")
    return threshold


def skipped_path(out: Path) -> Path:
    """Where predict lists the files it skipped: beside `out`, named OUT.skipped.csv."""
    return out.with_name(f"{out.stem}.skipped.csv")


def write_predictions(table: pd.DataFrame, data: ImageSet, out: Path) -> None:
    """`out` and its .skipped.csv beside it, each whole or not at all, and the lines a person reads."""
    skipped_out = skipped_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, frame in ((out, table), (skipped_out, skipped_table(data))):
        with atomic_path(path) as partial:
            frame.to_csv(partial, index=False)
    for note in data_notes(data):
        print(note)
    print(f"{len(table)} images{skipped_note(data, skipped_out)} -> {out}: "
          f"{int(table.predicted_defective.sum())} predicted defective")
    if decision_absent(data) is None:
        rates = defect_scores_metrics(data.defective, table.predicted_defective, threshold=0.5)
        print(f"against the folder's defect-free class: ACC {rates['acc']:.3f}, MDR {rates['mdr']:.3f}, "
              f"FDR {rates['fdr']:.3f}")


def cmd_bench(args: argparse.Namespace) -> None:
    from .method.bench import format_report, median_report

    config = build_config(args)
    report = median_report(config, prepare_data(config), args.repeats)
    print(format_report(report))


def pile_run(config, files: tuple[str, ...], overwrite: bool, score, write, then: str = "") -> None:
    """A detect or inspect run (`DetectConfig` `config`): its processes joined (one, or torchrun's: rank 0 alone
    claims `config.out_dir`, `files` its own, prints and writes), the pile read and announced, `score(data)` on
    every process, then on rank 0 `write(result, data, out)` writes the run's files and returns its summary;
    report.html last, the summary printed."""
    from .detect import load_pile
    from .html_report import write_report

    out = Path(config.out_dir)
    check_before_work(config.dataset, config.data_root, folder_options(config.dataset, config.normal_class), out,
                      config.backbone, config.weights)
    with processes_of_one_run(config.device, lambda: claim_run_folder(
            out, files, overwrite=overwrite, finished_file="metrics.json")) as world:
        data = distributed.main_first(load_pile, config)
        announce(world, data, f"{data.name}: {len(data)} images at {data.images.shape[-2]} x "
                 f"{data.images.shape[-1]}{skipped_note(data, out / 'skipped.csv')}; {config.method} scoring with "
                 f"{config.backbone} ({config.weights}){then}{processes(world)} -> {out}")
        result = score(data)
        if not world.main:
            return
        summary = write(result, data, out)
        report = write_report(out)
    print(summary)
    print(f"report: {report.resolve()} (open it in a browser)")


def cmd_detect(args: argparse.Namespace) -> None:
    from .detect import DETECT_FILES, detect, write_detection

    config = build_config(args, DetectConfig, profile_part="detect")

    def write(detection, data: ImageSet, out: Path) -> str:
        write_detection(detection, data, config, out)
        return detect_summary(detection.metrics, out)

    # Under torchrun every process scores its shard of the pile; rank 0 alone claims the folder, prints and writes.
    pile_run(config, DETECT_FILES, args.overwrite, lambda data: detect(config, data), write)


def detect_summary(metrics: dict, out: Path) -> str:
    """A few lines a person reads after a detection run; metrics.json holds everything."""
    decision = metrics["label_free"]
    run = metrics["run"]
    lines = [f"{metrics['n_images']} images scored in {run['wall_s']} s ({run['s_per_image']:.2f} s an image, "
             f"{run['backbone']}, weights {run['weights']}, {run['device']})",
             f"label-free decision ({decision['rule']}): {decision['flagged']} flagged defective "
             f"(threshold {decision['threshold']:.4g})"]
    if "auroc" in metrics:
        lines.append(f"against the labels: image AUROC {metrics['auroc']:.3f}, AP {metrics['ap']:.3f}; decision "
                     f"ACC {decision['acc']:.3f}, MDR {decision['mdr']:.3f}, FDR {decision['fdr']:.3f} "
                     f"(everything defect-free: ACC {metrics['everything_defect_free']['acc']:.3f})")
    else:
        lines.append(metrics.get("scored", ""))
    lines.append(f"ranking: {out / 'scores.csv'}; overlays: {out / 'overlays'}; all numbers: {out / 'metrics.json'}")
    return "\n".join(line for line in lines if line)


def cmd_inspect(args: argparse.Namespace) -> None:
    from .inspection import INSPECT_FILES, TypesConfig, inspect_pile, write_inspection

    types_config = build_config(args, TypesConfig, profile_part=None)
    detection, then = None, f", then the types with the joint method (profile {types_config.profile})"
    if args.from_run:
        config, detection = reused_detection(args)
        then = f" (reused from {args.from_run}: no scoring){then}"
    elif "dataset" not in vars(args):
        raise ConfigError("inspect needs a pile: steelnb inspect PILE --out-dir RUN (or --dataset PILE, or --from a "
                          "detect run)")
    else:
        config = build_config(args, DetectConfig, "detect", profile=types_config.profile)

    def write(inspection, data: ImageSet, out: Path) -> str:
        write_inspection(inspection, config, types_config, out)
        return inspect_summary(inspection.metrics, out)

    pile_run(config, INSPECT_FILES, args.overwrite,
             lambda data: inspect_pile(config, types_config, data, detection=detection), write, then)


def reused_detection(args: argparse.Namespace):
    """The DetectConfig (its out_dir --out-dir's) and the saved detection of the run `--from` names; ConfigError for
    a detection flag given beside it (the run's own settings decided its scores)."""
    from dataclasses import replace

    from .detect.decide import read_detection

    given = sorted(f"--{f.name.replace('_', '-')}" for f in fields(DetectConfig)
                   if f.name in vars(args) and f.name not in ("out_dir", "normal_class"))
    if given or args.normal_class is not None:
        flags = ", ".join(given + (["--normal-class"] if args.normal_class is not None else []))
        raise ConfigError(f"--from {args.from_run} reuses that run's detection and its settings (its config.json); "
                          f"drop {flags}")
    config, detection = read_detection(args.from_run)
    return replace(config, out_dir=args.out_dir), detection


def inspect_summary(metrics: dict, out: Path) -> str:
    """A few lines a person reads after an inspection; metrics.json holds everything."""
    stage = metrics["type_stage"]
    lines = detect_summary(metrics, out).splitlines()[:-1]
    if stage["k"]:
        lines.append(f"types: {stage['k']} among {stage['grouped']} grouped images ({stage['how']}); "
                     f"sizes {stage['sizes']}")
    else:
        lines.append(f"types: {stage['how']}")
    if "training" in stage:
        lines.append(f"types from the {stage['training']['used']}: {stage['training']['why']}")
    if "note" in stage:
        lines.append(f"note: {stage['note']}")
    from .html_report import types_not_meaningful

    why_not = types_not_meaningful(pd.read_csv(out / "scores.csv", keep_default_na=False, na_values=[""]))
    scored = [f"{name} ACC {metrics[key]['acc']:.3f}, NMI {metrics[key]['nmi']:.3f}"
              for key, name in (("two_cluster", "2 clusters (the decision)"),
                                ("five_cluster", "defect-free + types"), ("types", "types"))
              if isinstance(metrics.get(key), dict) and not (key == "types" and why_not)]
    if scored:
        types = metrics.get("types")
        among = (f" (types among the {types['n']} truly defective flagged images; "
                 f"{types['false_alarms']} flagged defect-free)") if isinstance(types, dict) and not why_not else ""
        among += f" (no type accuracy: {why_not})" if why_not and isinstance(types, dict) else ""
        lines.append("against the labels: " + "; ".join(scored) + among)
    lines.append(f"per image: {out / 'scores.csv'}; per type: {out / 'types.csv'} and {out / 'galleries'}; "
                 f"all numbers: {out / 'metrics.json'}")
    return "\n".join(lines)


def cmd_decide(args: argparse.Namespace) -> None:
    from .detect.decide import decide
    from .html_report import write_report

    if args.flag is not None and (args.rule or args.cutoff):
        raise ConfigError("--flag N is the rule top with cutoff N: give it without --rule and --cutoff")
    if not any(v is not None for v in (args.rule, args.cutoff, args.flag, args.target_mdr)):
        raise ConfigError("decide needs a new decision: --rule, --cutoff, --flag N or --target-mdr")
    started = time.perf_counter()
    metrics = decide(args.run_dir, args.rule, args.cutoff, args.flag, args.target_mdr)
    report = write_report(args.run_dir)
    print(decide_summary(metrics, time.perf_counter() - started))
    print(f"report: {report.resolve()} (open it in a browser)")


def decide_summary(metrics: dict, seconds: float) -> str:
    """What a new decision flags, and how good it is where the pile has labels."""
    free, n = metrics["label_free"], metrics["n_images"]
    rule = f"label-free rule {free['rule']}, cutoff {free['cutoff']:g}"
    if metrics.get("flagged_by") == "calibrated":
        called = metrics["calibrated"]
        lines = [f"calibrated decision (MDR <= {called['target_mdr']:g} on a labelled share): threshold "
                 f"{called['threshold']:.4g}, on the other images MDR {called['mdr']:.3f}, FDR {called['fdr']:.3f}",
                 f"({rule}: {free['flagged']} of {n} flagged)"]
    else:
        lines = [f"{free['flagged']} of {n} images flagged defective ({rule}; threshold {free['threshold']:.4g})"]
        if "acc" in free:
            lines.append(f"against the labels: ACC {free['acc']:.3f}, MDR {free['mdr']:.3f}, FDR {free['fdr']:.3f}")
    lines.append(f"decided again in {seconds:.1f} s: scores.csv, metrics.json and config.json rewritten")
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> None:
    from .html_report import write_report

    print(f"report: {write_report(args.run_dir).resolve()}")


PROFILE_HELP = "settings of a whole run; flags override them (ci: seconds, cpu: 2 cores, paper: a GPU)"
OVERWRITE_HELP = "replace the earlier run in OUT_DIR (kept aside until the new run has finished)"
NORMAL_CLASS_HELP = ("the defect-free sub-folder of an image folder (default: the one named good, ok, normal, "
                     "defect-free or the like, any case; '' for none)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="steelnb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common.add_argument("--debug", action="store_true", help="show the traceback of an error (one line without)")

    data = commands.add_parser("data", help="data-set tools").add_subparsers(dest="data_command", required=True)
    info = data.add_parser("info", parents=[common], help="counts per class, defect rate, image sizes")
    info.add_argument("name", nargs="?", help="synthetic, neu, dagm, ksdd, severstal or an image folder (default: "
                      "every named set)")
    info.add_argument("--data-root", help="folder holding neu/, dagm/, ksdd/, severstal/ (default $STEELNB_DATA)")
    info.add_argument("--image-size", type=_at_least(1), default=None,
                      help="decode size, pixels a side (>= 1; default: the set's own)")
    info.add_argument("--normal-class", help=NORMAL_CLASS_HELP)
    info.add_argument("--sizes", action="store_true", help="list every source image size with its count")
    info.set_defaults(func=cmd_data_info)

    fit = commands.add_parser("train", parents=[common],
                              help="joint feature learning and clustering (Bai et al. 2024); writes report.html")
    fit.add_argument("--profile", choices=sorted(PROFILES), help=PROFILE_HELP)
    fit.add_argument("--config", help="JSON file of TrainConfig fields (e.g. a run's config.json)")
    again = fit.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from OUT_DIR/checkpoint.pt")
    again.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    fit.add_argument("--normal-class", help=NORMAL_CLASS_HELP)
    _add_config_flags(fit)
    fit.set_defaults(func=cmd_train)

    bench = commands.add_parser("bench", parents=[common],
                                help="time one epoch by phase; loop speed next to the bare model's")
    bench.add_argument("--profile", choices=sorted(PROFILES), help=PROFILE_HELP)
    bench.add_argument("--config", help="JSON file of TrainConfig fields")
    bench.add_argument("--repeats", type=_at_least(1), default=1, help="median of this many epochs, after a "
                       "warm-up (>= 1; default 1)")
    _add_config_flags(bench)
    bench.set_defaults(func=cmd_bench)

    assign = commands.add_parser("predict", parents=[common],
                                 help="assign images with a trained run; defect / defect-free")
    assign.add_argument("--run", "--run-dir", dest="run", required=True, help="a train run's folder (holds "
                        "model.pt); --run-dir under torchrun, which reads --run as its own --run-path")
    assign.add_argument("--dataset", required=True, help="data set name or image folder")
    assign.add_argument("--data-root", help="folder holding the named sets (default $STEELNB_DATA)")
    assign.add_argument("--threshold", type=_finite, help="distance to the normal centroid above which = defect "
                        "(a finite number; default: none, the nearest cluster decides)")
    assign.add_argument("--calibrate", help="labelled data set to choose the threshold on (overrides --threshold)")
    assign.add_argument("--target-mdr", type=_fraction, default=0.05, help="with --calibrate: the miss rate "
                        "allowed, a share in [0, 1] (default 0.05)")
    assign.add_argument("--out", default="predictions.csv", help="table of predictions; the skipped files go to "
                        "OUT's name with .skipped.csv")
    assign.add_argument("--normal-class", help=NORMAL_CLASS_HELP)
    assign.add_argument("--overwrite", action="store_true", help="replace OUT (and its .skipped.csv) if it exists")
    assign.set_defaults(func=cmd_predict)

    find = commands.add_parser("detect", parents=[common],
                               help="find the defective images of a pile and where their defects are, no labels "
                                    "needed; writes scores.csv, overlays/ and report.html")
    find.add_argument("--profile", choices=sorted(PROFILES), help="ci: a run of seconds (tiny model); cpu, paper: "
                      "the defaults (ci | cpu | paper)")
    find.add_argument("--config", help="JSON file of DetectConfig fields (e.g. a detect run's config.json)")
    _add_detect_flags(find)
    find.set_defaults(func=cmd_detect)

    survey = commands.add_parser("inspect", parents=[common],
                                 help="detect the defective images of a pile, then group them into defect types "
                                      "with the joint method; writes scores.csv, types.csv, galleries/, report.html")
    survey.add_argument("--out-dir", required=True, help="the run folder to write (new or empty; required)")
    survey.add_argument("--from", dest="from_run", metavar="RUN", help="a detect run's folder: its scores, decision "
                        "(as steelnb decide left it) and maps are reused, the pile not scored again; its settings "
                        "are the detection's")
    _add_detect_flags(survey, ("out_dir",), TypesConfig.profile, pile="required: PILE or --dataset")
    _add_config_flags(survey, TypesConfig, part=None)
    survey.set_defaults(func=cmd_inspect)

    helps = validation.field_help(DetectConfig)
    redo = commands.add_parser("decide", parents=[common], help="a new threshold for a detect run from its saved "
                                "scores, in seconds: rewrites scores.csv, metrics.json, config.json, report.html")
    redo.add_argument("run_dir", metavar="RUN", help="a detect run's folder")
    redo.add_argument("--rule", choices=RULES, metavar="RULE", help=helps["rule"])
    redo.add_argument("--cutoff", type=_finite, help=helps["cutoff"])
    redo.add_argument("--flag", type=_at_least(1), metavar="N", help="flag the N highest scores (the rule top with "
                       "cutoff N; fewer where scores tie), a count >= 1")
    redo.add_argument("--target-mdr", type=_fraction, help=helps["target_mdr"] + "; the flags follow the "
                       "threshold calibrated for it")
    redo.set_defaults(func=cmd_decide)

    report = commands.add_parser("report", parents=[common], help="(re)write RUN_DIR/report.html from its files")
    report.add_argument("run_dir", help="a train, detect or inspect run's folder")
    report.set_defaults(func=cmd_report)
    return parser


def _at_least(low: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    parse.__name__ = "int"
    return parse


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def _one_line_warnings(message, category, filename, lineno, line=None) -> str:
    """Our warnings as `steelnb: warning: ...`; others as Python shows them."""
    if issubclass(category, SteelnbWarning):
        return f"steelnb: warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)


_python_format = warnings.formatwarning


def main(argv: list[str] | None = None) -> int:
    """Run a command; an ordinary problem (`SteelnbError`) is one line on stderr and exit status 2.

    >>> main(["data", "info", "synthetic", "--image-size", "32"])  # doctest: +ELLIPSIS
    synthetic: 600 images, array uint8 (600, 1, 32, 32)
    ...
    0
    """
    args = make_parser().parse_args(argv)
    warnings.formatwarning = _one_line_warnings
    progress.set_quiet(args.quiet)
    if distributed.launched() and args.command not in ("train", "detect", "predict"):
        print(f"steelnb: error: only train, detect and predict run on several processes; run steelnb {args.command} "
              "without torchrun", file=sys.stderr)
        return 2
    try:
        args.func(args)
    except KeyboardInterrupt:
        print(f"steelnb: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130
    except Exception as error:
        if getattr(args, "debug", False):
            raise
        message, status = _explained(error)
        print(f"steelnb: error: {' '.join(message.split())}", file=sys.stderr)
        return status
    return 0


def _explained(error: Exception) -> tuple[str, int]:
    """What the line printed for `error` says, and the exit status: 2 for the user's input, files or machine
    (`SteelnbError`, a missing file, memory, disk, faiss), 1 for anything else (a bug: --debug shows it)."""
    text = str(error)
    if isinstance(error, SteelnbError | FileNotFoundError | ValueError):
        return text, 2
    if isinstance(error, ModuleNotFoundError) and error.name == "faiss":
        return ("faiss is not installed: pip install 'steelnb[cpu]' (faiss-cpu), or on a CUDA machine "
                "'steelnb[gpu]' (faiss-gpu); only one of the two"), 2
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or "allocate memory" in text:
        return f"out of memory ({text[:200]}); lower --batch-size (or --image-size / --max-side)", 2
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left" in text \
            or "file write failed" in text:  # torch.save on a full disk
        where = f" writing {error.filename}" if isinstance(error, OSError) and error.filename else ""
        return (f"the disk is full{where}; free some space and rerun (a train run continues from its last "
                "checkpoint with --resume)"), 2
    if isinstance(error, OSError):
        return f"{error.strerror or text}{f': {error.filename}' if error.filename else ''}", 2
    return f"unexpected {type(error).__name__}: {text[:300]} (a bug: rerun with --debug for its traceback)", 1


def _resume_hint(args: argparse.Namespace) -> str:
    """Where an interrupted train run can be continued from, if anywhere."""
    if args.command != "train":
        return ""
    try:
        checkpoint = Path(build_config(args).out_dir) / "checkpoint.pt"
    except SteelnbError:
        return ""
    return f"; finished epochs are in {checkpoint} (rerun with --resume)" if checkpoint.is_file() else ""


if __name__ == "__main__":
    sys.exit(main())
