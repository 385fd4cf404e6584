"""Assign new images with a trained run, and decide defect / defect-free without labels.

The decision: an image is defect-free when its nearest centroid is the run's largest cluster
(`normal_cluster`), or, with a threshold, when its distance to that cluster's centroid is at most
the threshold. `calibrate_threshold` picks that threshold on a labelled calibration set for a
target miss rate (MDR).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .backbones import OFFLINE, Backbone, create_backbone, extract_features
from .cluster import Preprocessor, nearest_centroid
from .data import ImageSet
from .errors import SteelnbWarning
from .runfolder import RunFolderError, read_state
from .train import TrainConfig

MODEL_KEYS = ("config", "backbone", "backbone_weights", "preprocessor_mean", "preprocessor_projection",
              "preprocessor_l2", "centroids", "normal_cluster", "image_size")


@dataclass
class TrainedRun:
    """What `model.pt` holds: the trained extractor, the preprocessing and the final centroids."""

    backbone: Backbone
    preprocessor: Preprocessor
    centroids: np.ndarray
    normal_cluster: int
    input_size: int
    image_size: int
    channels: int | None = None  # of the training images (1 grey, 3 colour); None: a model.pt older than that

    @classmethod
    def load(cls, run_dir: str | Path) -> TrainedRun:
        path = Path(run_dir) / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: train a run first (steelnb train --out-dir {run_dir})")
        again = f"train the run again (steelnb train --overwrite --out-dir {run_dir})"
        state = read_state(path, MODEL_KEYS, again, map_location="cpu", weights_only=True)  # tensors, plain values
        config = TrainConfig.from_dict(state["config"], source=str(path))
        # Rebuild the architecture the run trained (offline Lite0 is timm's tf_ variant with its own
        # normalisation), then put the trained weights in.
        started_from = state["backbone_weights"]
        backbone = create_backbone(config.backbone, OFFLINE if started_from.startswith(OFFLINE) else "random")
        try:
            backbone.model.load_state_dict(state["backbone"])
        except RuntimeError as error:  # weights of another architecture
            raise RunFolderError(f"{path}: its weights do not fit {config.backbone} ({str(error)[:80]}...); {again}") \
                from None
        backbone.weights = f"trained from {started_from}"
        preprocessor = Preprocessor(state["preprocessor_mean"].numpy(), state["preprocessor_projection"].numpy(),
                                    state["preprocessor_l2"])
        return cls(backbone, preprocessor, state["centroids"].numpy(), state["normal_cluster"], config.feature_size,
                   state["image_size"], state.get("channels"))

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
