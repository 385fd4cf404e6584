"""`steelnb report RUN_DIR`: a run folder's report.html written again from its files."""

from __future__ import annotations

import argparse

from ..html_report import write_report


def add_flags(report: argparse.ArgumentParser) -> None:
    """`report`'s one argument: the run folder."""
    report.add_argument("run_dir", help="a train, detect or inspect run's folder")
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> None:
    print(f"report: {write_report(args.run_dir).resolve()}")
