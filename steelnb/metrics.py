"""Clustering and detection metrics: NMI, MI, ARI, Hungarian ACC, and the paper's MDR / FDR / EACC.

Bai et al. (2024), eqs. 15-18, take *defect-free* as the positive class. Over all N images:
MDR = defective images predicted defect-free / N, FDR = defect-free images predicted defective / N, and
EACC = ACC + FDR, implemented literally (a defect-free image sent to a defect class counts as acceptable).
Rates are fractions in 0..1. `y_true` holds class indices (ints >= 0); `y_pred` holds cluster ids (any ints).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm


def _labels(values: Sequence | np.ndarray, name: str, allow_negative: bool) -> np.ndarray:
    """`values` as a 1-D int array; ValueError on empty, non-integer, NaN/inf or (unless allowed) negative."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf")
        if not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{name} must hold integer labels, got non-integer floats")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if not allow_negative and (arr < 0).any():
        raise ValueError(f"{name} must be non-negative class indices, got {arr.min()}")
    return arr


def _check_pair(y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated (class indices, cluster ids) of equal length."""
    true = _labels(y_true, "y_true", allow_negative=False)
    pred = _labels(y_pred, "y_pred", allow_negative=True)
    if true.size != pred.size:
        raise ValueError(f"y_true and y_pred differ in length: {true.size} != {pred.size}")
    return true, pred


def _matching(y_true: np.ndarray, y_pred: np.ndarray) -> dict[int, int]:
    """Hungarian cluster -> class matching, leftover clusters to their majority class (ties: lowest class)."""
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    table = skm.cluster.contingency_matrix(y_true, y_pred)  # rows: sorted classes, columns: sorted clusters
    rows, cols = linear_sum_assignment(table, maximize=True)
    target = table.argmax(axis=0)
    target[cols] = rows
    return {int(k): int(classes[c]) for k, c in zip(clusters, target, strict=True)}


def _predict(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Each image's class after mapping its cluster by `_matching`."""
    mapping = _matching(y_true, y_pred)
    clusters, inverse = np.unique(y_pred, return_inverse=True)
    return np.array([mapping[int(k)] for k in clusters])[inverse]


def cluster_to_class(y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray) -> dict[int, int]:
    """Map every cluster id to a class index.

    Clusters are matched one-to-one to classes by the Hungarian method on the contingency table
    (maximising correctly assigned images). When there are more clusters than classes, each cluster
    left over is mapped to the class it overlaps most (many-to-one). With fewer clusters than classes,
    some classes receive no cluster.
    """
    return _matching(*_check_pair(y_true, y_pred))


def _rates(defective: np.ndarray, predicted_defective: np.ndarray) -> dict[str, float]:
    """MDR and FDR over all images, defect-free being the positive class."""
    return {
        "mdr": float(np.mean(defective & ~predicted_defective)),
        "fdr": float(np.mean(~defective & predicted_defective)),
    }


def evaluate(
    y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray, normal_label: int | None = None
) -> dict[str, float]:
    """Score cluster ids `y_pred` against class indices `y_true`.

    Returns `nmi` (arithmetic normalisation), `mi` (mutual information in nats), `ari`, `acc` (fraction
    correct after `cluster_to_class`, which is many-to-one when clusters outnumber classes), `n_clusters`
    and `n`. With `normal_label` (the defect-free class index) also the paper's `mdr`, `fdr` and
    `eacc = acc + fdr`; an image is predicted defect-free when its cluster is mapped to `normal_label`.

    >>> scores = evaluate([0, 0, 1, 1], [5, 5, 5, 7], normal_label=0)  # cluster 5 -> class 0, cluster 7 -> 1
    >>> scores["acc"], scores["mdr"], scores["fdr"], scores["n_clusters"]
    (0.75, 0.25, 0.0, 2)
    """
    true, pred = _check_pair(y_true, y_pred)
    mapped = _predict(true, pred)
    out = {
        "nmi": float(skm.normalized_mutual_info_score(true, pred)),
        "mi": float(skm.mutual_info_score(true, pred)),
        "ari": float(skm.adjusted_rand_score(true, pred)),
        "acc": float(np.mean(mapped == true)),
        "n_clusters": int(np.unique(pred).size),
        "n": int(true.size),
    }
    if normal_label is not None:
        if normal_label not in set(true.tolist()):
            raise ValueError(f"normal_label {normal_label} is not among the classes of y_true")
        out |= _rates(true != normal_label, mapped != normal_label)
        out["eacc"] = out["acc"] + out["fdr"]
    return out


def _classes(y_true: np.ndarray, class_names: Sequence[str] | None) -> np.ndarray:
    """Class indices to tabulate: all of `class_names`, else those present in `y_true`."""
    if class_names is None:
        return np.unique(y_true)
    if y_true.max() >= len(class_names):
        raise ValueError(f"y_true has class {y_true.max()} but only {len(class_names)} class_names")
    return np.arange(len(class_names))


def confusion(
    y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Confusion counts: rows true class, columns class predicted via `cluster_to_class`."""
    true, pred = _check_pair(y_true, y_pred)
    classes = _classes(true, class_names)
    table = skm.confusion_matrix(true, _predict(true, pred), labels=classes)
    names = classes.tolist() if class_names is None else [class_names[c] for c in classes]
    return pd.DataFrame(table, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def per_class_accuracy(
    y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray, class_names: Sequence[str] | None = None
) -> pd.Series:
    """Fraction of each true class predicted correctly after matching (NaN for a class with no images)."""
    table = confusion(y_true, y_pred, class_names)
    totals = table.sum(axis=1).to_numpy(dtype=float)
    totals[totals == 0] = np.nan
    return pd.Series(np.diag(table.to_numpy()) / totals, index=table.index, name="accuracy")


def defect_scores_metrics(
    defective: Sequence | np.ndarray, scores: Sequence | np.ndarray, threshold: float | None = None
) -> dict[str, float]:
    """Image AUROC of anomaly `scores` for `defective` flags (1 = defect); NaN when only one class is present.

    With `threshold`, images with `scores > threshold` are predicted defective and `mdr`, `fdr` (as in
    `evaluate`, over all images), binary `acc` and `eacc` (= acc + fdr) are added.
    """
    flags = _labels(defective, "defective", allow_negative=False)
    if not np.isin(flags, (0, 1)).all():
        raise ValueError("defective must hold 0/1 flags")
    values = np.asarray(scores, dtype=float)
    if values.shape != flags.shape:
        raise ValueError(f"defective and scores differ in shape: {flags.shape} != {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("scores contains NaN or inf")
    both = np.unique(flags).size == 2
    out = {"auroc": float(skm.roc_auc_score(flags, values)) if both else float("nan"), "n": int(flags.size)}
    if threshold is not None:
        predicted = values > threshold
        out |= _rates(flags.astype(bool), predicted)
        out["acc"] = float(np.mean(predicted == flags.astype(bool)))
        out["eacc"] = out["acc"] + out["fdr"]
    return out
