"""Baselines the reproduction is measured against.

- `PatchCore` (Roth et al. 2022) and `PCAHBOS` (Zhang et al. 2023): anomaly detectors fitted on defect-free
  images, thresholded by `fit_with_threshold` (a quantile of held-out defect-free scores; see `common`).
- k-means on fixed features (`raw_pixel_features`, `lbp_features`, pooled backbone features) and a
  `linear_probe` on the backbone features, the supervised ceiling.
- `run_baselines`: all of them on one train/test split, as one table.
"""

from .common import Detector, detect, fit_with_threshold, split_normals, threshold_from_normals
from .compare import COLUMNS, METHODS, normal_class, run_baselines
from .fixed import kmeans_on_features, lbp_features, linear_probe, raw_pixel_features
from .hbos import PCAHBOS
from .patchcore import PatchCore, feature_levels, greedy_coreset, patch_features

__all__ = [
    "COLUMNS",
    "METHODS",
    "PCAHBOS",
    "Detector",
    "PatchCore",
    "detect",
    "feature_levels",
    "fit_with_threshold",
    "greedy_coreset",
    "kmeans_on_features",
    "lbp_features",
    "linear_probe",
    "normal_class",
    "patch_features",
    "raw_pixel_features",
    "run_baselines",
    "split_normals",
    "threshold_from_normals",
]
