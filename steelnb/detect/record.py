"""A detection run as its folder keeps it: the files it writes, the scored pile (`Detection`), metrics.json's
records of the decision (the label-free rule's, its rates against the labels, the calibrated one), which images get
an overlay, the maps saved for deciding again, each file written whole. Imports no torch: `steelnb decide` rewrites
a run from these alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SteelnbWarning
from ..metrics import defect_scores_metrics
from ..runfolder import atomic_path
from .config import DetectConfig
from .decision import NULL_MIN, auto_rule, calibrated_threshold, null_fit

# Every file a detection run writes into its folder (the run-folder policy of steelnb.runfolder).
DETECT_FILES = ("config.json", "skipped.csv", "scores.csv", "metrics.json", "overlays", "maps.npz", "report.html",
                "report_files")
OVERLAYS = "overlays"
MAPS = "maps.npz"  # every image's raw anomaly map, float16, compressed: for tools that decide again (decide.py)
STRIP = 4  # overlays of the images just above and just below the threshold (the report's threshold strip)
MINORITY = 0.5  # an estimated defective share above this breaks the decision's assumption: warned
DECISION_MIN = 3  # images a pile needs before the label-free decision can flag one (of 2, neither is an outlier)


@dataclass
class Detection:
    """A scored pile: one row per image (`table`), its raw anomaly maps (N, h, w) and the run's numbers."""

    table: pd.DataFrame
    maps: np.ndarray
    metrics: dict
    threshold: float


def _rates(defective: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """The paper's ACC / MDR / FDR / EACC (MDR and FDR as shares of all images) and the recall of the defects."""
    found = defect_scores_metrics(defective, scores, threshold)
    caught = (np.asarray(scores) > threshold) & (np.asarray(defective) == 1)
    recall = float(caught.sum() / max(1, int((np.asarray(defective) == 1).sum())))
    return {**{k: found[k] for k in ("acc", "mdr", "fdr", "eacc")}, "recall": recall}


def label_free_record(scores: np.ndarray, threshold: float, config: DetectConfig, warn: bool = True) -> dict:
    """metrics.json's `label_free`, without the labels' rates: the rule (with `auto`, the one it used), its
    threshold, what it flags, the empirical null's estimated defective share (warned above MINORITY) and a note
    where the pile is too small to decide (warned too; `warn` False: neither, as on the processes after rank 0
    under torchrun)."""
    flagged = int((scores > threshold).sum())
    fit = null_fit(scores)
    share = fit.defective_share
    record = {"rule": config.rule, "cutoff": config.cutoff, "threshold": threshold, "flagged": flagged,
              "flagged_share": flagged / len(scores), "estimated_defective_share": share}
    if config.rule == "auto":
        record["rule_used"] = auto_rule(scores, config.cutoff, fit)
    if share > MINORITY and len(scores) >= NULL_MIN and warn:
        warnings.warn(f"{share:.0%} of the pile looks defective by its empirical null: the label-free decision "
                      "assumes defects are a minority (auto's empirical null as well: its bulk must be the "
                      "defect-free images); read the ranking, or decide with --flag N", SteelnbWarning,
                      stacklevel=3)
    if len(scores) < DECISION_MIN:
        record["note"] = (f"a pile of {len(scores)} image{'s' * (len(scores) > 1)} is too small for the label-free "
                          f"decision (it needs at least {DECISION_MIN}): none can be flagged; read the scores in "
                          "scores.csv")
        if warn:
            warnings.warn(record["note"], SteelnbWarning, stacklevel=3)
    return record


def _calibrated(truth: np.ndarray, scores: np.ndarray, config: DetectConfig) -> dict:
    """The --target-mdr decision: its threshold chosen on a labelled share, scored on the rest of the pile."""
    if min(truth.sum(), len(truth) - truth.sum()) < 2:
        return {"absent": "needs at least 2 defective and 2 defect-free images"}
    threshold, calibration = calibrated_threshold(scores, truth, config.target_mdr, config.calibration_share,
                                                  config.seed)
    held = ~calibration
    return {"target_mdr": config.target_mdr, "calibration_share": config.calibration_share, "threshold": threshold,
            "n_calibration": int(calibration.sum()), "n_scored": int(held.sum()),
            **_rates(truth[held], scores[held], threshold)}


def overlay_rows(table: pd.DataFrame, count: int, strip: int = STRIP) -> pd.Index:
    """The rows that get an overlay: the `count` top-ranked, and the `strip` just above and below the threshold."""
    flagged = int(table["defective"].sum())
    rank = table["rank"]
    return table.index[(rank <= count) | ((rank > flagged - strip) & (rank <= flagged + strip))]


def save_maps(path: Path, maps: np.ndarray, paths: tuple[str, ...]) -> None:
    """The raw anomaly maps (N, h, w) as float16 and the images' `paths`, in the pile's order, in a compressed .npz
    (keys `maps`, `paths`), whole or not at all."""
    limit = np.finfo(np.float16).max
    with atomic_path(path) as partial, open(partial, "wb") as file:
        np.savez_compressed(file, maps=np.clip(maps, -limit, limit).astype(np.float16), paths=np.array(paths))


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text)
