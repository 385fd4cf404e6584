"""`steelnb detect`: a pile's defective images and where their defects are, no labels used; its run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data import ImageSet
from ..detect import DETECT_FILES, detect, write_detection
from ..detect.config import DetectConfig
from ..html_report import rule_name
from ..profiles import PROFILES
from .flags import add_detect_flags, build_config
from .runs import pile_run


def add_flags(find: argparse.ArgumentParser) -> None:
    """`detect`'s flags: --profile, --config, the pile, one per DetectConfig field."""
    find.add_argument("--profile", choices=sorted(PROFILES), help="ci: a run of seconds (tiny model); cpu, paper: "
                      "the defaults (ci | cpu | paper)")
    find.add_argument("--config", help="JSON file of DetectConfig fields (e.g. a detect run's config.json)")
    add_detect_flags(find)
    find.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> None:
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
             f"label-free decision ({rule_name(decision)}): {decision['flagged']} flagged defective "
             f"(threshold {decision['threshold']:.4g})"]
    if "auroc" in metrics:
        lines.append(f"against the labels: image AUROC {metrics['auroc']:.3f}, AP {metrics['ap']:.3f}; decision "
                     f"ACC {decision['acc']:.3f}, MDR {decision['mdr']:.3f}, FDR {decision['fdr']:.3f} "
                     f"(everything defect-free: ACC {metrics['everything_defect_free']['acc']:.3f})")
    else:
        lines.append(metrics.get("scored", ""))
    lines.append(f"ranking: {out / 'scores.csv'}; overlays: {out / 'overlays'}; all numbers: {out / 'metrics.json'}")
    return "\n".join(line for line in lines if line)
