"""Assign new images with a trained run, and decide defect / defect-free without labels.

The decision: an image is defect-free when its nearest centroid is the run's largest cluster
(`normal_cluster`), or, with a threshold, when its distance to that cluster's centroid is at most
the threshold. `calibrate_threshold` picks that threshold on a labelled calibration set for a
target miss rate (MDR).

Under torchrun each process assigns its shard of the images and every process gets the whole
table (`TrainedRun.distances`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data import ImageSet
from ..errors import SteelnbWarning

if TYPE_CHECKING:  # calibrate_threshold serves detection's decision, which imports no torch
    from .model import TrainedRun


def predict(run: TrainedRun, data: ImageSet, threshold: float | None = None, device: str = "auto") -> pd.DataFrame:
    """One row per image: path, cluster, distance, distance to the normal centroid, predicted_defective (the
    nearest centroid is not the largest cluster's, or, given `threshold`, the distance to that one is above it).

    >>> import tempfile
    >>> from steelnb.data import load_dataset
    >>> from steelnb.method.config import TrainConfig
    >>> from steelnb.method.model import TrainedRun
    >>> from steelnb.method.train import train
    >>> data = load_dataset("synthetic", image_size=32, n_images=24, defect_rate=0.5, seed=1)
    >>> folder = tempfile.mkdtemp()
    >>> _ = train(TrainConfig(image_size=32, global_size=32, n_global=1, n_local=0, epochs=1, batch_size=8,
    ...                       steps_per_epoch=1, pca_dim=8, clusterer="kmeans", device="cpu", out_dir=folder), data)
    >>> table = predict(TrainedRun.load(folder), data, device="cpu")
    >>> list(table.columns), len(table)
    (['path', 'cluster', 'distance', 'normal_distance', 'predicted_defective'], 24)
    """
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

    >>> distance = np.array([1.0, 2.0, 3.0, 5.0, 6.0])  # the last two images are defective
    >>> calibrate_threshold(distance, np.array([0, 0, 0, 1, 1]), target_mdr=0.0) < 5.0
    True
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
