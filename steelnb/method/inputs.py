"""What a run reads from its data: the images a config names, the truth it is scored against, whether the
label-free defect decision can be scored, and the files that were left out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import ImageSet, load_dataset, protocols
from .config import TrainConfig


def prepare_data(config: TrainConfig) -> ImageSet:
    """The ImageSet a config names (capped per class if asked)."""
    data = load_dataset(config.dataset, config.data_root, config.image_size, **config.dataset_options)
    if config.max_per_class:
        data = protocols.cap_per_class(data, config.max_per_class, seed=config.seed)
    return data


def target_labels(data: ImageSet, config: TrainConfig) -> tuple[np.ndarray | None, tuple[str, ...], int | None]:
    """The truth the run is scored against (or None), its class names, and the defect-free class index."""
    if config.labels == "defect":
        if not data.has_defect_flags:
            return None, (), None
        return (data.defective == 1).astype(np.int64), ("defect-free", "defective"), 0
    if not data.has_labels:
        return None, data.class_names, None
    normal_name = data.meta.get("normal_class") or "defect-free"  # a folder's is named by --normal-class
    normal = data.class_names.index(normal_name) if normal_name in data.class_names else None
    return data.labels, data.class_names, normal if normal in data.labels else None


def decision_absent(data: ImageSet) -> str | None:
    """Why the label-free defect decision (largest cluster = defect-free) is not scored on `data`, or None when
    it is: only data with both defect-free and defective images can score it."""
    if data.has_defect_flags:
        if (data.defective == 1).all():
            return (f"none: every image of {data.name} is defective (it has no defect-free class), so calling the "
                    "largest cluster defect-free would mean nothing")
        if (data.defective == 0).all():
            return f"not scored: every image of {data.name} is defect-free"
        return None
    if data.has_labels:
        return (f"not scored: {data.name} names no defect-free class among {list(data.class_names)}; "
                "--normal-class NAME names one")
    return f"not scored: {data.name} has no labels (assignments.csv calls the largest cluster defect-free)"


def skipped_table(data: ImageSet) -> pd.DataFrame:
    """The files of `data` that were left out, and why (skipped.csv)."""
    return pd.DataFrame(list(data.skipped), columns=["path", "reason"])
