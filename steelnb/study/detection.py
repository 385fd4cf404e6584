"""Notebook 08's table: fully unsupervised detection on every pile, beside the rows it must be judged against;
and notebook 07's `steelnb detect` row (`detect_on_test_row`: the whole study scored, measured on its test part).

- `detection_pile(name, data_root, profile)`: a pile read as `steelnb detect` reads it (its own aspect), capped
  per class for a quick profile; None with the reason when it is not under the data root.
- `detect_row(pile, config, label)`: one `steelnb detect` setting, no label used; scored with the labels.
- Reference rows: `patchcore_row` (PatchCore fitted on a clean half of the defect-free images: one-class, it
  needs labels, so an upper reference, scored on the other images), `joint_row` (the paper's joint method,
  trained on the pile, its distance to the defect-free (largest) cluster's centroid as the score), and
  `all_normal_row` ("everything defect-free").
Every row carries the same columns (`COLUMNS`); a metric a row cannot have is NaN.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from ..baselines import PatchCore
from ..baselines.common import detect as detect_with_normals
from ..data import DataError, ImageSet, load_dataset, protocols
from ..detect import DetectConfig, Detection, detect
from ..detect.pile import load_pile
from ..metrics import defect_scores_metrics
from ..profiles import get_profile
from .configs import profile_config
from .datasets import StudySet
from .runs import fit_and_score

COLUMNS = ("pile", "row", "uses_labels", "backbone", "weights", "strides", "auroc", "ap", "acc", "mdr", "fdr", "eacc",
           "flagged", "calibrated_acc", "calibrated_mdr", "calibrated_fdr", "peak_in_defect", "n_scored",
           "s_per_image")


SMALLER_SIDE = {"synthetic": 256}  # as `make run` reads it; every other pile as `steelnb detect` does by default


def detect_config(profile: str, pile: str | None = None, **overrides) -> DetectConfig:
    """The DetectConfig of a profile (its `detect` overrides on the defaults), reading `pile` as a user's
    `steelnb detect` does (the default `max_side`, 512; the synthetic pile at 256 as `make run`; at most the
    profile's `max_side` where the profile sets one), with `overrides` on top. Reading KSDD at its own 1248 x 512
    scored worse than at 512 (README), so the notebook measures what a user gets.

    >>> [detect_config(p, pile).max_side for p, pile in (("ci", "ksdd"), ("cpu", "ksdd"), ("cpu", "synthetic"))]
    [64, 512, 256]
    """
    settings = dict(get_profile(profile).detect)
    if pile in SMALLER_SIDE:
        settings["max_side"] = min(SMALLER_SIDE[pile], settings.get("max_side", SMALLER_SIDE[pile]))
    return DetectConfig.from_dict({**settings, **overrides})


def detection_pile(name: str, data_root: str | Path | None, config: DetectConfig, profile: str,
                   seed: int = 0) -> tuple[ImageSet | None, str]:
    """Pile `name` read at `config`'s size and aspect, capped at the profile's `detect_cap` images per class
    (None: all); (None, why) when it is not there."""
    try:
        pile = _read(name, data_root, config)
    except DataError as error:
        return None, str(error)
    cap = get_profile(profile).detect_cap
    if cap is not None:
        pile = protocols.cap_per_class(pile, cap, seed)
    return pile, ""


def _read(name: str, data_root: str | Path | None, config: DetectConfig) -> ImageSet:
    """Pile `name` as `steelnb detect` reads it with `config` (`detect.pile.load_pile`)."""
    return load_pile(replace(config, dataset=name, data_root=str(data_root) if data_root else None))


def _row(pile: ImageSet, label: str, uses_labels: bool, **values) -> dict:
    return {**dict.fromkeys(COLUMNS, np.nan), "pile": pile.name, "row": label, "uses_labels": uses_labels, **values}


def detect_row(pile: ImageSet, config: DetectConfig, label: str) -> tuple[dict, Detection]:
    """`steelnb detect` with `config` on the whole pile (no label used), scored against its labels: the row,
    and the detection itself (to write its ranking and overlays)."""
    found = detect(config, pile)
    m, decision, calibrated = found.metrics, found.metrics["label_free"], found.metrics.get("calibrated", {})
    row = _row(pile, label, False, backbone=config.backbone, weights=m["run"]["weights"], strides=config.strides,
               auroc=m.get("auroc"), ap=m.get("ap"), **{k: decision.get(k) for k in ("acc", "mdr", "fdr", "eacc")},
               flagged=decision["flagged"], calibrated_acc=calibrated.get("acc"),
               calibrated_mdr=calibrated.get("mdr"), calibrated_fdr=calibrated.get("fdr"),
               peak_in_defect=m.get("localisation", {}).get("peak_in_defect"), n_scored=len(pile),
               s_per_image=m["run"]["s_per_image"])
    return row, found


def patchcore_row(pile: ImageSet, config: DetectConfig, coreset_ratio: float = 0.01, max_fit: int = 100,
                  seed: int = 0) -> dict:
    """PatchCore (the same backbone and strides, the pile's own aspect) fitted on up to `max_fit` defect-free
    images, half of them at most, thresholded on held-out defect-free ones; scored on every other image."""
    normal = np.flatnonzero(pile.defective == 0)
    rng = np.random.default_rng(seed)
    fit = np.sort(rng.permutation(normal)[:min(max_fit, len(normal) // 2)])
    rest = np.setdiff1d(np.arange(len(pile)), fit)
    detector = PatchCore(config.backbone, config.weights, coreset_ratio, input_size=None,
                         device=config.device, seed=seed)
    truth = pile.defective[rest].astype(int)
    metrics, scores, fit_s, score_s = detect_with_normals(detector, pile.images[fit], pile.images[rest], truth,
                                                          seed=seed)
    flagged = round((metrics["fdr"] + truth.mean() - metrics["mdr"]) * len(rest))  # called defective, of `rest`
    return _row(pile, f"PatchCore on {len(fit)} clean defect-free images (one-class, uses labels)", True,
                backbone=config.backbone, weights=detector.weights, strides="8,16", auroc=metrics["auroc"],
                ap=float(average_precision_score(truth, scores)),
                **{k: metrics[k] for k in ("acc", "mdr", "fdr", "eacc")}, flagged=flagged, n_scored=len(rest),
                s_per_image=(fit_s + score_s) / len(rest))


def joint_row(pile_name: str, data_root: str | Path | None, profile: str, pile: ImageSet, seed: int = 0) -> dict:
    """The paper's joint method trained on the pile (square images at the profile's size, defect / defect-free
    scoring), its distance to the largest cluster's centroid as the defect score; the label-free decision is
    its own (largest cluster = defect-free)."""
    config = profile_config(profile, dataset=pile_name, data_root=str(data_root) if data_root else None,
                            labels="defect", seed=seed, eval_clusters=2)
    square = load_dataset(pile_name, data_root, config.image_size or 224)
    position = {path: i for i, path in enumerate(square.paths)}
    square = square.subset([position[path] for path in pile.paths])  # the images of the (capped) pile
    started = time.perf_counter()
    row, predictions = fit_and_score(replace(config, max_per_class=None), square, square)
    seconds = (time.perf_counter() - started) / len(square)
    truth = square.defective.astype(int)
    called = predictions["predicted_defective"].to_numpy()
    rates = defect_scores_metrics(truth, called.astype(float), threshold=0.5)
    return _row(pile, f"joint method (Bai et al.), {config.epochs} epochs, distance to the defect-free cluster",
                False, backbone=config.backbone, weights=row["weights"], strides="pooled",
                auroc=defect_scores_metrics(truth, predictions["normal_distance"].to_numpy())["auroc"],
                **{k: rates[k] for k in ("acc", "mdr", "fdr", "eacc")}, flagged=int(called.sum()),
                n_scored=len(square), s_per_image=seconds)


def all_normal_row(pile: ImageSet) -> dict:
    """"Everything defect-free": the accuracy any detector has to beat."""
    rate = float(pile.defective.mean())
    return _row(pile, "everything defect-free", False, auroc=0.5, acc=1 - rate, mdr=rate, fdr=0.0, eacc=1 - rate,
                flagged=0, n_scored=len(pile))


def detect_on_test_row(study: StudySet, test: ImageSet, config: DetectConfig, data_root: str | Path | None) -> dict:
    """Notebook 07's `steelnb detect` row: every image of the study (training and test parts together) scored
    without any label, as a user's pile would be, read as detect reads it (a stand-in as it is); its score (AUROC)
    and its label-free decision (ACC / MDR / FDR / EACC) measured on the `test` images only."""
    pile = study.data
    if not study.stand_in:
        read = _read(study.source, data_root, config)
        position = {path: i for i, path in enumerate(read.paths)}
        pile = read.subset([position[path] for path in study.data.paths])
    found = detect(config, pile)
    scores = found.table.set_index("path").loc[list(test.paths), "score"].to_numpy(np.float64)
    rates = defect_scores_metrics(test.defective.astype(int), scores, found.threshold)
    return {"method": "steelnb detect (label-free)", "features": f"{config.backbone}:patches-s{config.strides}",
            **{k: rates[k] for k in ("acc", "mdr", "fdr", "eacc", "auroc")}, "nmi": np.nan,
            "s_per_image": found.metrics["run"]["s_per_image"], "weights": found.metrics["run"]["weights"],
            "note": f"{config.method} on all {len(pile)} images (both parts, no label), {pile.images.shape[-2]} x "
                    f"{pile.images.shape[-1]} px; measured on the test images"}
