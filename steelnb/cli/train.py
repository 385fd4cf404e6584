"""`steelnb train`: the joint method on a data set, its run folder and report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import distributed
from ..method.config import TrainConfig
from ..method.inputs import prepare_data
from ..method.runfiles import RUN_FILES
from ..method.train import train
from ..profiles import PROFILES
from ..runfolder import claim_run_folder
from .flags import NORMAL_CLASS_HELP, OVERWRITE_HELP, PROFILE_HELP, add_config_flags, build_config, folder_options
from .runs import announce, check_before_work, processes, processes_of_one_run, skipped_note


def add_flags(fit: argparse.ArgumentParser) -> None:
    """`train`'s flags: --profile, --config, --resume or --overwrite, --normal-class, one per TrainConfig field."""
    fit.add_argument("--profile", choices=sorted(PROFILES), help=PROFILE_HELP)
    fit.add_argument("--config", help="JSON file of TrainConfig fields (e.g. a run's config.json)")
    again = fit.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from OUT_DIR/checkpoint.pt")
    again.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    fit.add_argument("--normal-class", help=NORMAL_CLASS_HELP)
    add_config_flags(fit, TrainConfig)
    fit.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> None:
    from ..html_report import save_thumbnails, write_report

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
