"""`steelnb predict`: a trained run's clusters and defect decision for new images (a shard a process under
torchrun), written to a table."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import pandas as pd

from .. import distributed
from ..data import DataError, ImageSet, load_dataset
from ..method.inputs import decision_absent, skipped_table
from ..method.model import TrainedRun
from ..method.predict import calibrate_threshold, predict
from ..metrics import defect_scores_metrics
from ..runfolder import atomic_path, check_output_file
from .data_info import data_notes
from .flags import NORMAL_CLASS_HELP, finite, folder_options, fraction
from .runs import processes_of_one_run, skipped_note


def add_flags(assign: argparse.ArgumentParser) -> None:
    """`predict`'s flags: the run, the images, the threshold or its calibration, the table written."""
    assign.add_argument("--run", "--run-dir", dest="run", required=True, help="a train run's folder (holds "
                        "model.pt); --run-dir under torchrun, which reads --run as its own --run-path")
    assign.add_argument("--dataset", required=True, help="data set name or image folder")
    assign.add_argument("--data-root", help="folder holding the named sets (default $STEELNB_DATA)")
    assign.add_argument("--threshold", type=finite, help="distance to the normal centroid above which = defect "
                        "(a finite number; default: none, the nearest cluster decides)")
    assign.add_argument("--calibrate", help="labelled data set to choose the threshold on (overrides --threshold)")
    assign.add_argument("--target-mdr", type=fraction, default=0.05, help="with --calibrate: the miss rate "
                        "allowed, a share in [0, 1] (default 0.05)")
    assign.add_argument("--out", default="predictions.csv", help="table of predictions; the skipped files go to "
                        "OUT's name with .skipped.csv")
    assign.add_argument("--normal-class", help=NORMAL_CLASS_HELP)
    assign.add_argument("--overwrite", action="store_true", help="replace OUT (and its .skipped.csv) if it exists")
    assign.set_defaults(func=cmd_predict)


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
