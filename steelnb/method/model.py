"""`TrainedRun`: what a finished run's model.pt holds, and reading it back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backbones import OFFLINE, Backbone, create_backbone, extract_features
from ..data import ImageSet
from ..runfolder import RunFolderError, read_state
from .cluster import Preprocessor, nearest_centroid
from .config import TrainConfig

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
