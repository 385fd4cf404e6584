"""`run_baselines`: every baseline on one train/test split, one row per method, for the comparison table.

Clustering rows (k-means on pixels, LBP, pooled backbone features, and the same backbone randomly initialised
when `weights` load trained ones) cluster the test images into
k = `test.n_classes` and are scored by `metrics.evaluate` (Hungarian matching). The linear probe is trained on
the train labels and scored without matching. The anomaly detectors (PCA+HBOS, PatchCore) are fitted on the
defect-free train images, thresholded by the rule in `common` (no defective image needed), and predict
defective / defect-free on the test images; their acc and nmi are over those two classes.
MDR / FDR / EACC of clustering and probe rows need a class that is exactly the defect-free images (NaN
otherwise). `s_per_image` is the time spent on the test images (features included) per image; `fit_s` the
total time spent on the train images (features, fitting, thresholding).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import pandas as pd
import torch

from ..backbones import Backbone, create_backbone, extract_features
from ..data.imageset import ImageSet
from ..metrics import defect_scores_metrics, evaluate
from .common import detect
from .fixed import kmeans_on_features, lbp_features, linear_probe, raw_pixel_features
from .hbos import PCAHBOS
from .patchcore import PatchCore

METHODS = ("kmeans", "linear-probe", "pca-hbos", "patchcore")
COLUMNS = ("method", "features", "weights", "acc", "nmi", "mdr", "fdr", "eacc", "auroc", "s_per_image", "fit_s",
           "note")


@dataclass
class FeatureSet:
    """One kind of fixed features (`extract`: uint8 images -> (N, D)) of the train and test images."""

    name: str
    weights: str
    extract: Callable[[np.ndarray], np.ndarray]
    train_images: ImageSet
    test_images: ImageSet

    @cached_property
    def values(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(train features, test features, extraction seconds per image), computed on first use."""
        start = time.perf_counter()
        train, test = self.extract(self.train_images.images), self.extract(self.test_images.images)
        elapsed = time.perf_counter() - start
        return train, test, elapsed / (len(train) + len(test))


def normal_class(images: ImageSet) -> int | None:
    """The class that is exactly the defect-free images, when there is one (DAGM's "defect-free")."""
    if not (images.has_labels and images.has_defect_flags):
        return None
    normal = images.defective == 0
    classes = np.unique(images.labels[normal])
    if len(classes) == 1 and np.array_equal(images.labels == classes[0], normal):
        return int(classes[0])
    return None


def run_baselines(
    train: ImageSet,
    test: ImageSet,
    backbone_name: str = "resnet18",
    weights: str = "random",
    *,
    methods: Sequence[str] = METHODS,
    input_size: int | None = None,
    patchcore_input_size: int | None = 224,
    coreset_ratio: float = 0.1,
    pca_dim: int | None = 64,
    quantile: float = 0.99,
    holdout: float = 0.2,
    seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """One row per baseline (columns `COLUMNS`); a baseline the data cannot support gets NaNs and a `note`."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; choose from {METHODS}")
    backbone = create_backbone(backbone_name, weights)
    pixels = FeatureSet("pixels-32", "none", partial(raw_pixel_features, size=32), train, test)
    lbp = FeatureSet("lbp-riu2-r1+2", "none", partial(lbp_features, radii=(1, 2)), train, test)
    deep = _backbone_features(backbone, train, test, input_size, device)
    calibration = {"quantile": quantile, "holdout": holdout, "seed": seed}
    rows = []
    if "kmeans" in methods:
        untrained = []
        if weights != "random":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                untrained.append(_backbone_features(create_backbone(backbone_name), train, test, input_size, device))
        rows += [_kmeans_row(features, test, seed, pca_dim) for features in (pixels, lbp, *untrained, deep)]
    if "linear-probe" in methods:
        rows.append(_probe_row(deep, train, test, seed))
    if "pca-hbos" in methods:
        rows += [_hbos_row(features, train, test, calibration) for features in (pixels, deep)]
    if "patchcore" in methods:
        make = partial(PatchCore, backbone_name, weights, coreset_ratio, patchcore_input_size, device=device, seed=seed)
        rows.append(_patchcore_row(make, f"{backbone_name}:patches-s8+s16", backbone.weights, train, test, calibration))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _backbone_features(backbone: Backbone, train: ImageSet, test: ImageSet, input_size: int | None,
                       device: str) -> FeatureSet:
    extract = partial(extract_features, backbone, input_size=input_size, device=device)
    return FeatureSet(backbone.name, backbone.weights, extract, train, test)


def _row(method: str, features: str, weights: str, metrics: dict | None = None, s_per_image: float = np.nan,
         fit_s: float = np.nan, note: str = "") -> dict:
    """A table row; metrics absent from `metrics` are NaN."""
    metrics = metrics or {}
    values = {c: metrics.get(c, np.nan) for c in ("acc", "nmi", "mdr", "fdr", "eacc", "auroc")}
    return {"method": method, "features": features, "weights": weights, **values, "s_per_image": s_per_image,
            "fit_s": fit_s, "note": note}


def _timed(fn: Callable, *args):
    """`fn(*args)` and the seconds it took."""
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def _kmeans_row(features: FeatureSet, test: ImageSet, seed: int, pca_dim: int | None) -> dict:
    if not test.has_labels:
        return _row("kmeans", features.name, features.weights, note="test images have no class labels")
    _, test_features, extract_s = features.values
    clusters, elapsed = _timed(kmeans_on_features, test_features, test.n_classes, seed, pca_dim)
    metrics = evaluate(test.labels, clusters, normal_class(test))
    return _row("kmeans", features.name, features.weights, metrics, extract_s + elapsed / len(test), 0.0)


def _probe_row(features: FeatureSet, train: ImageSet, test: ImageSet, seed: int) -> dict:
    if not (train.has_labels and test.has_labels):
        return _row("linear-probe", features.name, features.weights, note="train or test images have no class labels")
    if len(np.unique(train.labels)) < 2:
        return _row("linear-probe", features.name, features.weights, note="train images hold fewer than 2 classes")
    train_features, test_features, extract_s = features.values
    predicted, elapsed = _timed(linear_probe, train_features, train.labels, test_features, seed)
    metrics = _prediction_metrics(test.labels, predicted, normal_class(test))
    return _row("linear-probe", features.name, features.weights, metrics, extract_s, extract_s * len(train) + elapsed)


def _prediction_metrics(y_true: np.ndarray, y_pred: np.ndarray, normal_label: int | None) -> dict:
    """acc / nmi of class predictions taken as they are (no matching); mdr / fdr / eacc given a normal class."""
    metrics = {"acc": float(np.mean(y_true == y_pred)), "nmi": evaluate(y_true, y_pred)["nmi"]}
    if normal_label is not None:
        rates = defect_scores_metrics(y_true != normal_label, (y_pred != normal_label).astype(float), threshold=0.5)
        metrics |= {"mdr": rates["mdr"], "fdr": rates["fdr"], "eacc": rates["eacc"]}
    return metrics


def _anomaly_skip_reason(train: ImageSet, test: ImageSet) -> str:
    """Why a detector cannot be fitted on `train` and scored on `test` ("" when it can)."""
    if not test.has_defect_flags:
        return "test images have no defect flags"
    if int((train.defective == 0).sum()) < 2:
        return "train holds fewer than 2 known defect-free images"
    return ""


def _hbos_row(features: FeatureSet, train: ImageSet, test: ImageSet, calibration: dict) -> dict:
    reason = _anomaly_skip_reason(train, test)
    if reason:
        return _row("pca-hbos", features.name, features.weights, note=reason)
    train_features, test_features, extract_s = features.values
    normal = train_features[train.defective == 0]
    metrics, _, fit_s, score_s = detect(PCAHBOS(seed=calibration["seed"]), normal, test_features, test.defective,
                                        **calibration)
    return _row("pca-hbos", features.name, features.weights, metrics, extract_s + score_s / len(test),
                extract_s * len(normal) + fit_s)


def _patchcore_row(make: Callable[[], PatchCore], name: str, weights: str, train: ImageSet, test: ImageSet,
                   calibration: dict) -> dict:
    reason = _anomaly_skip_reason(train, test)
    if reason:
        return _row("patchcore", name, weights, note=reason)
    detector = make()
    metrics, _, fit_s, score_s = detect(detector, train.images[train.defective == 0], test.images, test.defective,
                                        **calibration)
    return _row("patchcore", name, detector.weights, metrics, score_s / len(test), fit_s)

