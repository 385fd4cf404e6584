"""`TrainedRun`: what a finished run's model.pt holds. It writes the file (`save`) and reads it back (`load`);
no other module spells the file's keys.

>>> import numpy as np, tempfile
>>> from steelnb.backbones import create_backbone
>>> from steelnb.method.cluster import Preprocessor
>>> from steelnb.method.config import TrainConfig
>>> run = TrainedRun(TrainConfig(backbone="resnet18", global_size=32), create_backbone("resnet18", "random"),
...                  Preprocessor(np.zeros(512, np.float32), np.eye(512, 4, dtype=np.float32)),
...                  np.eye(2, 4, dtype=np.float32), normal_cluster=0, image_size=32, channels=1)
>>> folder = tempfile.mkdtemp()
>>> run.save(folder).name
'model.pt'
>>> again = TrainedRun.load(folder)
>>> again.backbone.weights, again.input_size, again.centroids.shape
('trained from random', 32, (2, 4))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .. import distributed
from ..backbones import OFFLINE, Backbone, create_backbone, extract_features, resolve_device
from ..data import ImageSet
from ..runfolder import RunFolderError, atomic_path, read_state
from .cluster import Preprocessor, nearest_centroid
from .config import TrainConfig

MODEL_FILE = "model.pt"
_REQUIRED = ("config", "backbone", "backbone_weights", "preprocessor_mean", "preprocessor_projection",
             "preprocessor_l2", "centroids", "normal_cluster", "image_size")  # "channels" came later: optional


@dataclass
class TrainedRun:
    """The trained extractor, the preprocessing and the final centroids of a run, with its config.

    `started_from`: the weights the training started from ("random", "offline", ...); None: the backbone's own
    (`backbone.weights`, as for a backbone the trainer just trained). A loaded run's backbone says
    "trained from <started_from>".
    """

    config: TrainConfig
    backbone: Backbone
    preprocessor: Preprocessor
    centroids: np.ndarray
    normal_cluster: int
    image_size: int  # decode size of the training images
    channels: int | None = None  # of the training images (1 grey, 3 colour); None: a model.pt older than that
    started_from: str | None = None

    def __post_init__(self) -> None:
        if self.started_from is None:
            self.started_from = self.backbone.weights

    @property
    def input_size(self) -> int:
        """The size the features are extracted at (the config's `feature_size`)."""
        return self.config.feature_size

    # -- model.pt ---------------------------------------------------------------------------------
    def state(self) -> dict:
        """model.pt's dict: tensors and plain values only (it loads with `weights_only=True`)."""
        return {"config": asdict(self.config), "backbone": self.backbone.model.state_dict(),
                "backbone_weights": self.started_from,
                "preprocessor_mean": torch.from_numpy(self.preprocessor.mean),
                "preprocessor_projection": torch.from_numpy(self.preprocessor.projection),
                "preprocessor_l2": self.preprocessor.l2, "centroids": torch.from_numpy(self.centroids),
                "normal_cluster": int(self.normal_cluster), "image_size": int(self.image_size),
                "channels": None if self.channels is None else int(self.channels)}

    @classmethod
    def from_state(cls, state: dict, source: str = MODEL_FILE, again: str = "train the run again") -> TrainedRun:
        """The run `state()` describes. The architecture the run trained is rebuilt (offline Lite0 is timm's tf_
        variant with its own normalisation), then the trained weights are put in; RunFolderError when they do
        not fit."""
        config = TrainConfig.from_dict(state["config"], source=source)
        started_from = state["backbone_weights"]
        backbone = create_backbone(config.backbone, OFFLINE if started_from.startswith(OFFLINE) else "random")
        try:
            backbone.model.load_state_dict(state["backbone"])
        except RuntimeError as error:  # weights of another architecture
            raise RunFolderError(f"{source}: its weights do not fit {config.backbone} ({str(error)[:80]}...); "
                                 f"{again}") from None
        backbone.weights = f"trained from {started_from}"
        preprocessor = Preprocessor(state["preprocessor_mean"].numpy(), state["preprocessor_projection"].numpy(),
                                    state["preprocessor_l2"])
        return cls(config, backbone, preprocessor, state["centroids"].numpy(), state["normal_cluster"],
                   state["image_size"], state.get("channels"), started_from)

    def save(self, run_dir: str | Path) -> Path:
        """Write `run_dir/model.pt` whole (atomically; the folder is made if need be); returns its path."""
        path = Path(run_dir) / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as partial:
            torch.save(self.state(), partial)
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> TrainedRun:
        """The run whose model.pt is in `run_dir`; a missing or damaged file says what to do."""
        path = Path(run_dir) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: train a run first (steelnb train --out-dir {run_dir})")
        again = f"train the run again (steelnb train --overwrite --out-dir {run_dir})"
        state = read_state(path, _REQUIRED, again, map_location="cpu", weights_only=True)  # tensors, plain values
        return cls.from_state(state, str(path), again)

    # -- assigning --------------------------------------------------------------------------------
    def distances(self, data: ImageSet, device: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest cluster, distance to it, and distance to the normal centroid of every image. Under torchrun each
        process extracts the features of its shard of the images on its own device, and the points are gathered
        in rank order on every process."""
        mine = extract_features(self.backbone, data.images[distributed.share(len(data))], self.input_size,
                                device=distributed.local_device(resolve_device(device)), desc="assigning: features")
        points = distributed.gather(self.preprocessor.transform(mine))
        clusters, distance = nearest_centroid(points, self.centroids)
        to_normal = np.linalg.norm(points - self.centroids[self.normal_cluster], axis=1)
        return clusters, distance, to_normal
