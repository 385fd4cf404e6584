"""What the anomaly baselines share: the detector interface and the thresholding rule that needs no defect.

Thresholding rule. The defect-free training images are split once, seeded, into a fitting part and a held-out
part (`holdout`, 20 % by default). The detector is fitted on the fitting part only and scores the held-out part;
the threshold is the `quantile` (0.99 by default) of those held-out scores. That same fitted detector then scores
the test images, and an image is predicted defective when its score exceeds the threshold. No defective image
is used, and the held-out scores come from the very model that scores the test, so they are scores of unseen
defect-free images (the fitting images' own scores would be biased low: PatchCore gives them distance ~0).
The expected false-alarm rate on defect-free test images is then about 1 - quantile.
`detect` applies the rule and scores a test set: what every detector row and benchmark reports.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from ..metrics import defect_scores_metrics, evaluate


class Detector(Protocol):
    """An anomaly detector fitted on defect-free inputs; higher scores mean more anomalous."""

    def fit(self, normal: np.ndarray) -> Detector: ...

    def score(self, inputs: np.ndarray) -> np.ndarray: ...


def split_normals(n: int, holdout: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (fit, held-out) indices of `n` defect-free inputs; both parts hold at least one."""
    if n < 2:
        raise ValueError(f"thresholding needs at least 2 defect-free images, got {n}")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    order = np.random.default_rng(seed).permutation(n)
    n_held = min(max(1, round(holdout * n)), n - 1)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def threshold_from_normals(scores: np.ndarray, quantile: float = 0.99) -> float:
    """The `quantile` of held-out defect-free scores (1.0: their maximum)."""
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    return float(np.quantile(np.asarray(scores, np.float64), quantile))


def fit_with_threshold(
    detector: Detector, normal: np.ndarray, holdout: float = 0.2, quantile: float = 0.99, seed: int = 0
) -> float:
    """Fit `detector` on part of the defect-free `normal` inputs; return the threshold set on the rest."""
    fit_index, held_index = split_normals(len(normal), holdout, seed)
    detector.fit(normal[fit_index])
    return threshold_from_normals(detector.score(normal[held_index]), quantile)


def detect(detector: Detector, normal: np.ndarray, inputs: np.ndarray, defective: np.ndarray, holdout: float = 0.2,
           quantile: float = 0.99, seed: int = 0) -> tuple[dict, np.ndarray, float, float]:
    """`detector` fitted and thresholded on `normal` (`fit_with_threshold`), then scoring `inputs`.

    Returns the metrics against the `defective` flags (auroc, acc, mdr, fdr, eacc, and the nmi of the
    thresholded decision), the scores, and the fitting and scoring seconds.
    """
    start = time.perf_counter()
    threshold = fit_with_threshold(detector, normal, holdout, quantile, seed)
    fitted = time.perf_counter()
    scores = detector.score(inputs)
    scored = time.perf_counter()
    metrics = defect_scores_metrics(defective, scores, threshold)
    metrics["nmi"] = evaluate(defective, (scores > threshold).astype(np.int64))["nmi"]
    return metrics, scores, fitted - start, scored - fitted
