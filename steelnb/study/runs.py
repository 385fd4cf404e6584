"""The runs of an experiment: one scored run (train, score, assign a test part), repeated over seeds, per backbone,
per stability repetition, and the baselines beside them; the same protocols answered by detect-then-group
(`steelnb inspect`); a run's history and pruning its weight files."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import metrics
from ..baselines import run_baselines
from ..data import ImageSet, data_root_from_env, protocols
from ..inspection import detect_pile, inspect_pile, pipeline_scores, truth_of
from ..method.config import TrainConfig
from ..method.inputs import target_labels
from ..method.model import TrainedRun
from ..method.predict import predict
from ..method.train import train
from ..profiles import get_profile
from .configs import pipeline_configs, study_config
from .datasets import StudySet, study_set
from .tables import METRICS, initialisation


def score_run(config: TrainConfig, data: ImageSet, test: ImageSet | None = None) -> dict:
    """`fit_and_score` without the test predictions: one flat row of the setting, its scores and seconds.

    >>> from steelnb.data import load_dataset
    >>> from steelnb.method.config import TrainConfig
    >>> data = load_dataset("synthetic", image_size=32, n_images=24, defect_rate=0.5, seed=1)
    >>> row = score_run(TrainConfig(image_size=32, global_size=32, n_global=1, n_local=0, epochs=1, batch_size=8,
    ...                             steps_per_epoch=1, pca_dim=8, clusterer="kmeans", device="cpu"), data)
    >>> row["backbone"], row["n_train"], 0 <= row["train_acc"] <= 1, "untrained_acc" in row
    ('resnet18', 24, True, True)
    """
    return fit_and_score(config, data, test)[0]


def fit_and_score(config: TrainConfig, data: ImageSet, test: ImageSet | None = None
                  ) -> tuple[dict, pd.DataFrame | None]:
    """Train on `data`, score the final clustering, and (given `test`) assign and score the test set.

    Returns one flat row: the setting's key fields, metrics on the training images (`train_*`), the
    untrained features' answer (`untrained_*`, epoch 0 of the same run), metrics on the test images,
    test seconds per image, wall seconds and the weights used; and, given `test`, its predictions
    (`predict.predict`'s table with `truth`, the class index scored against, where known).
    """
    predictions = None
    with tempfile.TemporaryDirectory() as scratch:
        config = replace(config, out_dir=config.out_dir if config.out_dir != "runs/latest" else scratch)
        started = time.perf_counter()
        result = train(config, data)
        row = {"backbone": config.backbone, "weights": result["run"]["weights"], "seed": config.seed,
               "n_train": len(data), "train_s": round(time.perf_counter() - started, 1)}
        row.update({f"train_{k}": v for k, v in result.get("metrics", {}).items()})
        row.update(untrained_scores(Path(config.out_dir) / "history.csv"))
        if test is not None:
            scores, predictions = score_test(TrainedRun.load(config.out_dir), test, config)
            row.update(scores)
    return row, predictions


def untrained_scores(history_csv: Path) -> dict:
    """ACC / NMI of epoch 0: the answer of the untrained features, the bar the training has to beat."""
    history = pd.read_csv(history_csv)
    if history.empty or "acc" not in history:
        return {}
    return {"untrained_acc": float(history.acc.iloc[0]), "untrained_nmi": float(history.nmi.iloc[0])}


def score_test(run: TrainedRun, test: ImageSet, config: TrainConfig) -> tuple[dict, pd.DataFrame]:
    """Nearest-centroid assignment of `test` with a trained run: its metrics and seconds per image, and
    the per-image predictions (with `truth` where known)."""
    started = time.perf_counter()
    table = predict(run, test, device=config.device)
    seconds = (time.perf_counter() - started) / max(len(test), 1)
    truth, _, normal = target_labels(test, config)
    row = {"n_test": len(test), "test_s_per_image": seconds}
    if truth is not None:
        row.update(metrics.evaluate(truth, table.cluster.to_numpy(), normal_label=normal))
        table["truth"] = truth
    return row, table


def repeated_runs(config: TrainConfig, seeds: Iterable[int], data: ImageSet | Callable[[int], ImageSet],
                  test: ImageSet | None = None, columns: dict | None = None) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """One run per seed (`config.seed = seed`; `data(seed)` when `data` is a function, a fresh draw each time).

    Returns one row per run (with `columns` added in front) and, given `test`, each run's test predictions.
    """
    rows, predictions = [], []
    for seed in seeds:
        images = data(seed) if callable(data) else data
        run_config = replace(config, seed=int(seed))
        if test is None:
            row = score_run(run_config, images)
        else:
            row, table = fit_and_score(run_config, images, test)
            predictions.append(table)
        rows.append({**(columns or {}), **row})
    return pd.DataFrame(rows), predictions


def backbone_rows(profile: str, study: StudySet, backbones: Sequence[str], seed: int = 0, split_seed: int = 0,
                  test_fraction: float = 0.5, **overrides) -> pd.DataFrame:
    """Tables 2 / 3: per backbone, train on a seeded stratified split of `study` and score its test part.

    Each row is one of many runs, so it uses the profile's short `sweep` settings.

    Columns: method, backbone, initialisation, weights, the test metrics (`METRICS`), test seconds per image, the
    clustering metrics of the training part (train_acc, train_nmi), sizes, training seconds.
    """
    train, test = protocols.stratified_split(study.data, test_fraction, split_seed)
    rows = []
    for backbone in backbones:
        config = study_config(profile, study, seed, sweep=True, backbone=backbone, **overrides)
        row = score_run(config, train, test)
        rows.append({"method": JOINT_METHOD, "backbone": backbone, "initialisation": initialisation(row["weights"]),
                     "weights": row["weights"], **{m: row.get(m, np.nan) for m in METRICS},
                     "test_s_per_image": row.get("test_s_per_image", np.nan),
                     "train_acc": row.get("train_acc", np.nan), "train_nmi": row.get("train_nmi", np.nan),
                     "n_train": len(train), "n_test": len(test), "train_s": row["train_s"]})
    return pd.DataFrame(rows)


def baseline_rows(config: TrainConfig, train: ImageSet, test: ImageSet, seed: int = 0, **options) -> pd.DataFrame:
    """`baselines.run_baselines` on `train` / `test` with the backbone, weights, feature size and device the
    method's runs use (`config`); `options` go to `run_baselines` (methods, coreset_ratio, ...)."""
    return run_baselines(train, test, config.backbone, config.weights, input_size=config.feature_size, seed=seed,
                         device=config.device, **options)


def stability_rows(kind: str, data_root: str | Path | None, profile: str, repeats: int | None = None,
                   sweep: bool = True, **overrides) -> pd.DataFrame:
    """Experiment `kind` (I..V) repeated: repetition r draws its images with seed r and trains with seed r;
    each run clusters the images it trained on (as the paper's stability experiments do).

    Columns: experiment, data, seed, acc, nmi, mdr, fdr, eacc, weights, train_s.
    """
    repeats = get_profile(profile).repeats if repeats is None else repeats
    first = study_set(kind, data_root, profile, seed=0)
    config = study_config(profile, first, 0, sweep=sweep, **overrides)
    draws = {0: first.data}

    def draw(seed: int) -> ImageSet:
        return draws[seed] if seed in draws else study_set(kind, data_root, profile, seed=seed).data

    rows, _ = repeated_runs(config, range(repeats), draw,
                            columns={"experiment": kind, "method": JOINT_METHOD, "data": first.short})
    renamed = rows.rename(columns={f"train_{m}": m for m in METRICS})
    return renamed[["experiment", "method", "data", "seed", *METRICS, "weights", "train_s"]]


# -- detect, then group (steelnb inspect) -----------------------------------------------------------------

JOINT_METHOD = "joint method (Bai et al. 2024)"
PIPELINE = "detect, then group (steelnb inspect)"


def pipeline_row(profile: str, data: ImageSet, labels: str, seed: int = 0, types: int | None = None,
                 **detect_overrides) -> dict:
    """One detect-then-group run on `data`, no label used, scored as the protocol of `labels` asks:

    "defect" (2 clusters): the detection's label-free decision is the answer (no type stage runs);
    "classes" (defect-free + types): the images left unflagged are one cluster, each type of the flagged
    images another; `types` given (the protocol's number of defect classes) or None, chosen from the data.

    `detect_overrides`: DetectConfig fields over the profile's `detect` table (a test's lower cutoff).

    Columns: method, backbone and weights (detection's; the type stage's weights after it), the metrics
    (`METRICS`, NaN where the protocol cannot be scored: `note` says why), flagged, types, types_how,
    s_per_image (both stages), seed, n_images.
    """
    detect_config, types_config = pipeline_configs(profile, data.name, seed, types, **detect_overrides)
    started = time.perf_counter()
    if labels == "defect":
        pile, detection = detect_pile(detect_config, data)
        _, defective, _ = truth_of(pile)
        decision = detection.table["defective"].to_numpy()
        scores = pipeline_scores(None, defective, None, decision, np.full(len(pile), -1))["two_cluster"]
        metrics_of, stage = detection.metrics, {"k": 0, "how": "none: 2 clusters are the decision"}
    else:
        inspection = inspect_pile(detect_config, types_config, data)
        scores, metrics_of, stage = (inspection.metrics["five_cluster"], inspection.metrics,
                                     inspection.metrics["type_stage"])
    seconds = time.perf_counter() - started
    weights = metrics_of["run"]["weights"]
    if "run" in stage:
        weights = f"{weights}; types: {stage['run']['backbone']} {stage['run']['weights']}"
    row = {"method": PIPELINE + ("" if labels == "defect" else
                                 f", types {'given' if types else 'chosen'}"),
           "backbone": metrics_of["run"]["backbone"], "weights": weights}
    row.update({m: scores[m] if isinstance(scores, dict) else np.nan for m in METRICS})
    row.update(flagged=metrics_of["label_free"]["flagged"], types=stage["k"], types_how=stage["how"],
               s_per_image=seconds / len(data), seed=seed, n_images=len(data),
               note="" if isinstance(scores, dict) else scores)
    return row


def pipeline_stability_rows(kind: str, data_root: str | Path | None, profile: str,
                            repeats: int | None = None) -> pd.DataFrame:
    """`stability_rows` answered by detect-then-group: repetition r detects on the images drawn with seed r
    (the same draws as the joint method's rows) with seed r; the 2-cluster answer is the label-free decision.

    Columns: experiment, method, data, seed, the metrics, weights, train_s (here: seconds of the whole run).
    """
    repeats = get_profile(profile).repeats if repeats is None else repeats
    rows = []
    for seed in range(repeats):
        study = study_set(kind, data_root, profile, seed=seed)
        row = pipeline_row(profile, study.data, study.labels, seed)
        rows.append({"experiment": kind, "method": row["method"], "data": study.short, "seed": seed,
                     **{m: row[m] for m in METRICS}, "weights": row["weights"],
                     "train_s": round(row["s_per_image"] * row["n_images"], 1)})
    return pd.DataFrame(rows)


def severstal_smoke(profile: str, data_root: str | Path | None, seed: int = 0) -> tuple[pd.DataFrame | None, str]:
    """Detect-then-group on the real Severstal images under the data root, all of them, the longer side at the
    profile's `detect` max_side (each side fitted up to detection's grid), the number of types chosen from the
    data: a smoke test of the pipeline on real strips where the sample is too small for the paper's protocols.
    (None, why) when Severstal is not there.

    One row per protocol ("2 clusters", "defect-free + types") with the metrics, flagged, types, seconds.
    """
    root = data_root_from_env(data_root)
    if root is None or not (root / "severstal").is_dir():
        return None, f"no severstal/ folder under {root} (data_root or $STEELNB_DATA)"
    detect_config, types_config = pipeline_configs(profile, "severstal", seed, data_root=str(root))
    started = time.perf_counter()
    inspection = inspect_pile(detect_config, types_config)
    seconds = time.perf_counter() - started
    found, stage = inspection.metrics, inspection.metrics["type_stage"]
    rows = []
    for protocol, key in (("2 clusters (the decision)", "two_cluster"), ("defect-free + types", "five_cluster")):
        scores = found[key]
        rows.append({"protocol": protocol, **{m: scores[m] if isinstance(scores, dict) else np.nan for m in METRICS},
                     "n_images": found["n_images"], "image_shape": "x".join(map(str, found["image_shape"][1:])),
                     "flagged": found["label_free"]["flagged"], "types": stage["k"], "types_how": stage["how"],
                     "auroc": found.get("auroc", np.nan), "backbone": found["run"]["backbone"],
                     "weights": found["run"]["weights"], "seconds": round(seconds, 1), "seed": seed})
    return pd.DataFrame(rows), ""


def history_with_final(run_dir: str | Path, row: dict, **keys) -> pd.DataFrame:
    """A run's history.csv (one row per epoch: the clustering *before* that epoch's training) with one
    more row, `epoch` = number of epochs and stage "final", holding the final clustering's NMI / ACC
    (`row`'s train_nmi / train_acc); `keys` (e.g. optimizer, seed) are added as columns."""
    history = pd.read_csv(Path(run_dir) / "history.csv")
    history.insert(1, "stage", "before training")
    final = {"epoch": int(history.epoch.max()) + 1 if len(history) else 0, "stage": "final",
             "nmi": row.get("train_nmi", float("nan")), "acc": row.get("train_acc", float("nan"))}
    history = pd.concat([history, pd.DataFrame([final])], ignore_index=True)
    for name, value in reversed(keys.items()):
        history.insert(0, name, value)
    return history


def prune_run(run_dir: str | Path, keep: Sequence[str] = ()) -> int:
    """Delete a run's weight files (*.pt: checkpoint.pt, model.pt) but those named in `keep`, keeping its
    CSV / JSON; returns the bytes freed."""
    freed = 0
    for path in Path(run_dir).glob("*.pt"):
        if path.name in keep:
            continue
        freed += path.stat().st_size
        path.unlink()
    return freed
