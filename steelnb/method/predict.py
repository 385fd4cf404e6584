"""Assign new images with a trained run, and decide defect / defect-free without labels.

The decision: an image is defect-free when its nearest centroid is the run's largest cluster
(`normal_cluster`), or, with a threshold, when its distance to that cluster's centroid is at most
the threshold. `calibrate_threshold` picks that threshold on a labelled calibration set for a
target miss rate (MDR).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..data import ImageSet
from ..errors import SteelnbWarning
from .model import TrainedRun


def predict(run: TrainedRun, data: ImageSet, threshold: float | None = None, device: str = "auto") -> pd.DataFrame:
    """One row per image: path, cluster, distance, distance to the normal centroid, predicted_defective."""
    if run.channels is not None and data.images.shape[1] != run.channels:
        kinds = {1: "1-channel (grayscale)", 3: "3-channel (colour)"}
        warnings.warn(f"the run was trained on {kinds[run.channels]} images, {data.name}'s are "
                      f"{kinds[data.images.shape[1]]}: its clusters may not mean much for them", SteelnbWarning,
                      stacklevel=2)
    clusters, distance, to_normal = run.distances(data, device)
    defective = to_normal > threshold if threshold is not None else clusters != run.normal_cluster
    return pd.DataFrame({"path": data.paths, "cluster": clusters, "distance": distance,
                         "normal_distance": to_normal, "predicted_defective": defective.astype(int)})


def calibrate_threshold(normal_distance: np.ndarray, defective: np.ndarray, target_mdr: float) -> float:
    """The largest distance threshold whose MDR (defective called defect-free / N) is at most `target_mdr`.

    The largest such threshold calls the fewest defect-free images defective (lowest FDR).
    """
    normal_distance = np.asarray(normal_distance, float)
    defective = np.asarray(defective).astype(bool)
    if not defective.any() or defective.all():
        raise ValueError("calibration needs both defective and defect-free images")
    allowed = int(np.floor(target_mdr * len(defective) + 1e-9))  # defective images that may pass
    defect_distances = np.sort(normal_distance[defective])
    if allowed >= len(defect_distances):
        return float(normal_distance.max())
    return float(np.nextafter(defect_distances[allowed], -np.inf))
