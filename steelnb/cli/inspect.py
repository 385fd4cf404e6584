"""`steelnb inspect`: a pile's defective images detected (or a detect run's reused: --from), then grouped into
defect types with the joint method; its run folder."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd

from ..data import ImageSet
from ..detect.config import DetectConfig
from ..detect.decide import read_detection
from ..html_report import types_not_meaningful
from ..inspection import INSPECT_FILES, TypesConfig, inspect_pile, write_inspection
from ..validation import ConfigError
from .detect import detect_summary
from .flags import add_config_flags, add_detect_flags, build_config
from .runs import pile_run


def add_flags(survey: argparse.ArgumentParser) -> None:
    """`inspect`'s flags: --out-dir, --from, the pile, one per DetectConfig and TypesConfig field."""
    survey.add_argument("--out-dir", required=True, help="the run folder to write (new or empty; required)")
    survey.add_argument("--from", dest="from_run", metavar="RUN", help="a detect run's folder: its scores, decision "
                        "(as steelnb decide left it) and maps are reused, the pile not scored again; its settings "
                        "are the detection's")
    add_detect_flags(survey, ("out_dir",), TypesConfig.profile, pile="required: PILE or --dataset")
    add_config_flags(survey, TypesConfig, part=None)
    survey.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> None:
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
