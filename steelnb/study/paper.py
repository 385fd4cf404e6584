"""The paper's reported figures that this repository compares against (Bai et al. 2024), as fractions.

Only the headline figures quoted in the project brief are recorded; a table whose paper values are
not here says "not recorded" rather than inventing them.
"""

from __future__ import annotations

REPORTED = {
    "neu": {"acc": 0.8753},
    "severstal-2": {"acc": 0.9004, "nmi": 0.7661, "mdr": 0.0394, "fdr": 0.0602},
    "dagm": {"acc": 0.9574},
}

# Facts measured before this repository that set the real bar.
BARS = {
    "neu-lite0-kmeans": {"acc": 0.889, "nmi": 0.840},  # ImageNet EfficientNet-Lite0 + k-means, no training
    "neu-linear-probe": {"acc": 0.984},  # supervised ceiling on the same features
    "dagm1-all-normal": {"acc": 0.877},  # "everything is defect-free" on DAGM class 1 (12 % defective)
}


def gap(measured: dict, experiment: str) -> dict:
    """measured - reported for every metric the paper reports for `experiment` (missing: not recorded)."""
    reported = REPORTED.get(experiment, {})
    return {k: measured[k] - v for k, v in reported.items() if k in measured}
