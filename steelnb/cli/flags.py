"""The flags the commands share: one --flag per config field with its help, the profile's defaults in words, the
config built from defaults, profile, --config file and flags, and the parsers of numbers with a range.

Imports no torch: the profiles and TrainConfig are imported where a command asks for them.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import fields
from pathlib import Path

from .. import validation
from ..data import READERS, DataError
from ..detect.config import DetectConfig
from ..validation import ConfigError

PROFILE_HELP = "settings of a whole run; flags override them (ci: seconds, cpu: 2 cores, paper: a GPU)"
OVERWRITE_HELP = "replace the earlier run in OUT_DIR (kept aside until the new run has finished)"
NORMAL_CLASS_HELP = ("the defect-free sub-folder of an image folder (default: the one named good, ok, normal, "
                     "defect-free or the like, any case; '' for none)")


def common_parser() -> argparse.ArgumentParser:
    """The parent parser of the flags every command takes: --quiet, --debug."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common.add_argument("--debug", action="store_true", help="show the traceback of an error (one line without)")
    return common


def _parse_optional(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "null") else kind(text)
    parse.__name__ = kind.__name__
    return parse


def add_config_flags(parser: argparse.ArgumentParser, config_class: type, skip: tuple[str, ...] = (),
                      part: str | None = "train", implied: str | None = None) -> None:
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
    from ..profiles import PROFILES

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


def add_detect_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = (), implied: str | None = None,
                      pile: str = "default synthetic") -> None:
    """The flags `steelnb detect` and `steelnb inspect` share: the pile (PILE, or --dataset; `pile` says its
    default), --overwrite, --normal-class and one per `DetectConfig` field (except `skip`)."""
    about = validation.field_help(DetectConfig)["dataset"]
    parser.add_argument("dataset", nargs="?", metavar="PILE", default=argparse.SUPPRESS, help=f"{about} ({pile})")
    parser.add_argument("--dataset", default=argparse.SUPPRESS, metavar="PILE", help="the same as PILE")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--normal-class", help=NORMAL_CLASS_HELP + "; used to score the answer only")
    add_config_flags(parser, DetectConfig, ("dataset", "normal_class", *skip), "detect", implied)


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


def build_config(args: argparse.Namespace, config_class: type | None = None, profile_part: str | None = "train",
                 profile: str | None = None):
    """Dataclass defaults <- profile <- --config file <- explicit flags; an error names the source of the value.

    `config_class`: TrainConfig where not given. The profile (`profile`, else --profile) contributes its table
    `profile_part` ("train", "detect"; None: none).

    >>> from steelnb.cli import make_parser
    >>> config = build_config(make_parser().parse_args(["train", "--profile", "ci", "--epochs", "1"]))
    >>> config.epochs, config.backbone, config.clusterer  # the flag over the ci profile over the defaults
    (1, 'resnet18', 'kmeans')
    >>> build_config(make_parser().parse_args(["train", "--epochs", "0"]))
    Traceback (most recent call last):
    ...
    steelnb.validation.ConfigError: flag --epochs: epochs must be at least 1, got 0
    """
    from ..method.config import TrainConfig
    from ..profiles import get_profile

    config_class = config_class or TrainConfig
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


def at_least(low: int):
    """A parser of whole numbers >= `low`: argparse's error for a smaller one."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    parse.__name__ = "int"
    return parse


def finite(text: str) -> float:
    """A finite number: argparse's error for nan or inf."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def fraction(text: str) -> float:
    """A share in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value
