"""Levels scored separately and fused (issue 19, Build 3), against the default, on the detection lab's cache.

    python benchmarks/detect_levels.py   # after benchmarks/detect_lab.py has filled .cache/lab

`self` on stride 16 (radius 2, the default's map, from the lab's cache) and `self` on stride 32 (radius 1 or 2 of
its own cells, upsampled to the stride-16 grid), each as the robust z of its log, averaged (`detect/fusion.py`,
as `--method fused` joins scorers); then cells (`none` / `zmax`) on that z (`lin`) or on its exp (`exp`), a
1-cell Gaussian and the top 1 %. Prints each pile's AUROCs beside the default's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from detect_lab import cell_normalised, image_scores
from sklearn.metrics import roc_auc_score

from steelnb.detect.fusion import log_maps
from steelnb.detect.scorers import SelfSimilarity

CACHE = "../.cache/lab"
DEFAULT = "features=16 scorer=self radius=2"


def pile_aurocs(pile: str) -> dict[str, float]:
    levels, truth, _ = torch.load(f"{CACHE}/{pile}.pt", weights_only=False)
    fine = torch.load(f"{CACHE}/{pile}_maps.pt", weights_only=False)["maps"][DEFAULT].float()
    found = {"default": roc_auc_score(truth, image_scores(cell_normalised(fine, "zmax"), 0.01, 1))}
    for radius in (1, 2):
        coarse = SelfSimilarity(radius).maps(levels[32].float(), np.arange(len(truth)))
        coarse = F.interpolate(coarse[:, None], fine.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        fused = log_maps(torch.stack([fine, coarse], 1))
        for cells in ("none", "zmax"):
            normalised = cell_normalised(fused, cells)
            found[f"16+32 r{radius} {cells} lin"] = roc_auc_score(truth, image_scores(normalised, 0.01, 1))
            found[f"16+32 r{radius} {cells} exp"] = roc_auc_score(
                truth, image_scores(normalised.clamp(max=80).exp(), 0.01, 1))
    return found


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in ("synthetic", "ksdd", "dagm", "edge", "inside"):
        print(name, {k: round(v, 3) for k, v in pile_aurocs(name).items()}, flush=True)
