"""`steelnb bench`: one epoch of the joint method timed by phase, the loop's speed next to the bare model's."""

from __future__ import annotations

import argparse

from ..method.config import TrainConfig
from ..method.inputs import prepare_data
from ..profiles import PROFILES
from .flags import PROFILE_HELP, add_config_flags, at_least, build_config


def add_flags(bench: argparse.ArgumentParser) -> None:
    """`bench`'s flags: --profile, --config, --repeats, one per TrainConfig field."""
    bench.add_argument("--profile", choices=sorted(PROFILES), help=PROFILE_HELP)
    bench.add_argument("--config", help="JSON file of TrainConfig fields")
    bench.add_argument("--repeats", type=at_least(1), default=1, help="median of this many epochs, after a "
                       "warm-up (>= 1; default 1)")
    add_config_flags(bench, TrainConfig)
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> None:
    from ..method.bench import format_report, median_report

    config = build_config(args)
    report = median_report(config, prepare_data(config), args.repeats)
    print(format_report(report))
