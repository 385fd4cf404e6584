"""Assign new images with a trained run, and decide defect / defect-free without labels.

The decision: an image is defect-free when its nearest centroid is the run's largest cluster
(`normal_cluster`), or, with a threshold, when its distance to that cluster's centroid is at most
the threshold. `calibrate_threshold` picks that threshold on a labelled calibration set for a
target miss rate (MDR).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .backbones import OFFLINE, Backbone, create_backbone, extract_features
from .cluster import Preprocessor, nearest_centroid
from .data import ImageSet
from .train import TrainConfig


@dataclass
class TrainedRun:
    """What `model.pt` holds: the trained extractor, the preprocessing and the final centroids."""

    backbone: Backbone
    preprocessor: Preprocessor
    centroids: np.ndarray
    normal_cluster: int
    input_size: int
    image_size: int

    @classmethod
    def load(cls, run_dir: str | Path) -> TrainedRun:
        path = Path(run_dir) / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: train a run first (steelnb train --out {run_dir})")
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only
        config = state["config"]
        # Rebuild the architecture the run trained (offline Lite0 is timm's tf_ variant with its own
        # normalisation), then put the trained weights in.
        started_from = state["backbone_weights"]
        backbone = create_backbone(config["backbone"], OFFLINE if started_from.startswith(OFFLINE) else "random")
        backbone.model.load_state_dict(state["backbone"])
        backbone.weights = f"trained from {started_from}"
        preprocessor = Preprocessor(state["preprocessor_mean"].numpy(), state["preprocessor_projection"].numpy(),
                                    state["preprocessor_l2"])
        return cls(backbone, preprocessor, state["centroids"].numpy(), state["normal_cluster"],
                   TrainConfig.from_dict(config).feature_size, state["image_size"])

    def distances(self, data: ImageSet, device: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest cluster, distance to it, and distance to the normal centroid of every image."""
        features = extract_features(self.backbone, data.images, self.input_size, device=device,
                                    desc="assigning: features")
        points = self.preprocessor.transform(features)
        clusters, distance = nearest_centroid(points, self.centroids)
        to_normal = np.linalg.norm(points - self.centroids[self.normal_cluster], axis=1)
        return clusters, distance, to_normal


def predict(run: TrainedRun, data: ImageSet, threshold: float | None = None, device: str = "auto") -> pd.DataFrame:
    """One row per image: path, cluster, distance, distance to the normal centroid, predicted_defective."""
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
