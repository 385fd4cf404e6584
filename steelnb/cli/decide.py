"""`steelnb decide RUN`: a new threshold for a detect run from its saved scores, in seconds; its files and report
rewritten. Imports no torch (the test holds it): only drawing missing overlays needs it.
"""

from __future__ import annotations

import argparse
import time

from .. import validation
from ..detect.config import RULES, DetectConfig
from ..detect.decide import decide
from ..html_report import rule_name, write_report
from ..validation import ConfigError
from .flags import at_least, finite, fraction


def add_flags(redo: argparse.ArgumentParser) -> None:
    """`decide`'s flags: the run, and the new decision (--rule, --cutoff, --flag N, --target-mdr)."""
    helps = validation.field_help(DetectConfig)
    redo.add_argument("run_dir", metavar="RUN", help="a detect run's folder")
    redo.add_argument("--rule", choices=RULES, metavar="RULE", help=helps["rule"])
    redo.add_argument("--cutoff", type=finite, help=helps["cutoff"])
    redo.add_argument("--flag", type=at_least(1), metavar="N", help="flag the N highest scores (the rule top with "
                      "cutoff N; fewer where scores tie), a count >= 1")
    redo.add_argument("--target-mdr", type=fraction, help=helps["target_mdr"] + "; the flags follow the "
                      "threshold calibrated for it")
    redo.set_defaults(func=cmd_decide)


def cmd_decide(args: argparse.Namespace) -> None:
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
    rule = f"label-free rule {rule_name(free)}, cutoff {free['cutoff']:g}"
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
