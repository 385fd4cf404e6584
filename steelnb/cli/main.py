"""The `steelnb` parser, assembled from one module a command, and `main`: a command run, its error one line."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from importlib import import_module
from pathlib import Path

from .. import progress
from ..errors import SteelnbError, SteelnbWarning
from .flags import build_config, common_parser

DESCRIPTION = "The `steelnb` command: data info, train, predict, detect, decide, inspect, bench, report."
# Every command: the module of steelnb.cli that adds its flags (`add_flags`) and runs it, and its line in --help.
COMMANDS = {
    "data": ("data_info", "data-set tools"),
    "train": ("train", "joint feature learning and clustering (Bai et al. 2024); writes report.html"),
    "bench": ("bench", "time one epoch by phase; loop speed next to the bare model's"),
    "predict": ("predict", "assign images with a trained run; defect / defect-free"),
    "detect": ("detect", "find the defective images of a pile and where their defects are, no labels needed; "
                         "writes scores.csv, overlays/ and report.html"),
    "inspect": ("inspect", "detect the defective images of a pile, then group them into defect types with the joint "
                           "method; writes scores.csv, types.csv, galleries/, report.html"),
    "decide": ("decide", "a new threshold for a detect run from its saved scores, in seconds: rewrites scores.csv, "
                         "metrics.json, config.json, report.html"),
    "report": ("report", "(re)write RUN_DIR/report.html from its files"),
}
GROUPS = ("data",)  # commands of sub-commands, each of which takes --quiet and --debug itself
MULTI_PROCESS = ("train", "detect", "predict")  # the commands that run under torchrun


def make_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `steelnb` parser. Given `command`, only its flags are added (only its module imported); the other
    commands are listed by name and help line alone.

    >>> make_parser("decide").parse_args(["decide", "runs/pile", "--flag", "20"]).flag
    20
    """
    parser = argparse.ArgumentParser(prog="steelnb", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    common = common_parser()
    for name, (module, about) in COMMANDS.items():
        sub = commands.add_parser(name, parents=[] if name in GROUPS else [common], help=about)
        if command in (None, name):
            import_module(f"{__package__}.{module}").add_flags(sub)
    return parser


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
    argv = sys.argv[1:] if argv is None else list(argv)
    try:  # importing torch and the rest takes seconds: a Ctrl-C meanwhile ends the command without a traceback
        parser = make_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    except KeyboardInterrupt:
        print("steelnb: interrupted", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)
    warnings.formatwarning = _one_line_warnings
    progress.set_quiet(args.quiet)
    if args.command not in MULTI_PROCESS and _launched():
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


def _launched() -> bool:
    """Whether torchrun started several processes (`distributed.launched`); torch is imported only where a
    launcher set WORLD_SIZE."""
    if "WORLD_SIZE" not in os.environ:
        return False
    from ..distributed import launched

    return launched()


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
