"""steelnb's PatchCore against anomalib's, on the same images, backbone weights, input tensors and threshold rule.

Both read the backbone's stride-8 and stride-16 feature maps (timm out_indices 2 and 3: ResNet layer2/layer3,
EfficientNet blocks 2/4), keep `coreset_ratio` of the training patches by greedy k-center selection and score
an image by its patch distances to that memory bank. anomalib's backbone is built with `pre_trained=False` and
then given steelnb's backbone state dict, so the two see identical features. What still differs is the
implementations': anomalib projects sparsely before its coreset, searches in torch and reweights the image
score by the 9 neighbours of its nearest memory patch (the paper's reweighting); steelnb projects densely,
searches with faiss and takes the largest patch distance.

Needs anomalib (`pip install anomalib` beside steelnb; it brings Lightning, not needed by steelnb itself):

    python benchmarks/anomalib_patchcore.py DATA_ROOT OUT_DIR [BACKBONE WEIGHTS IMAGE_SIZE CORESET_RATIO SEEDS]

SEEDS (default "0,1,2") seed both coresets' random start and projection: one row per implementation and seed.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import torch
from anomalib import __version__ as anomalib_version
from anomalib.models.image.patchcore.torch_model import PatchcoreModel
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from steelnb.baselines.common import Detector, detect
from steelnb.baselines.patchcore import PatchCore, feature_levels
from steelnb.data import load_dataset, protocols
from steelnb.study.records import environment, write_table
from steelnb.views import to_model_input


class AnomalibPatchCore:
    """anomalib's `PatchcoreModel` behind steelnb's `Detector` interface, fed steelnb's backbone and inputs."""

    def __init__(self, reference: PatchCore, coreset_ratio: float, seed: int = 0, batch_size: int = 32):
        self.reference = reference
        self.coreset_ratio = coreset_ratio
        self.seed = seed
        self.batch_size = batch_size
        source = reference.backbone.model
        self.model = PatchcoreModel(layers=feature_levels(source), backbone=source.default_cfg["architecture"],
                                    pre_trained=False)
        missing, _ = self.model.feature_extractor.feature_extractor.load_state_dict(source.state_dict(), strict=False)
        if missing:
            raise RuntimeError(f"anomalib's backbone lacks steelnb's weights for {missing[:3]}...")

    def _inputs(self, images: np.ndarray):
        backbone = self.reference.backbone
        for start in range(0, len(images), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + self.batch_size]))
            yield to_model_input(batch, backbone.mean, backbone.std, self.reference.input_size)

    @torch.no_grad()
    def fit(self, normal: np.ndarray) -> AnomalibPatchCore:
        self.model.train()
        self.model.embedding_store.clear()
        for x in self._inputs(normal):
            self.model(x)
        torch.manual_seed(self.seed)  # anomalib's coreset draws its projection and start from the global generator
        self.model.subsample_embedding(sampling_ratio=self.coreset_ratio)
        self.model.eval()
        return self

    @torch.no_grad()
    def score(self, images: np.ndarray) -> np.ndarray:
        return np.concatenate([self.model(x).pred_score.numpy() for x in self._inputs(images)])


def measure(name: str, seed: int, detector: Detector, normal: np.ndarray, test_images: np.ndarray,
            defective: np.ndarray) -> tuple[dict, np.ndarray]:
    """Table row (AUROC, thresholded rates, seconds) and the test scores of `detector` (`baselines.detect`)."""
    metrics, scores, fit_s, score_s = detect(detector, normal, test_images, defective)
    row = {"implementation": name, "seed": seed, **{k: metrics[k] for k in ("auroc", "acc", "mdr", "fdr", "eacc")},
           "fit_s": fit_s, "s_per_image": score_s / len(test_images)}
    return row, scores


def border_share(maps: np.ndarray) -> float:
    """Share of images whose largest patch distance lies on the outer ring of the patch grid."""
    rows, columns = np.unravel_index(maps.reshape(len(maps), -1).argmax(1), maps.shape[1:])
    on_ring = (rows == 0) | (rows == maps.shape[1] - 1) | (columns == 0) | (columns == maps.shape[2] - 1)
    return float(on_ring.mean())


def main(data_root: str, out_dir: str, backbone: str = "efficientnet_lite0", weights: str = "offline",
         image_size: str = "224", coreset_ratio: str = "0.01", seeds: str = "0,1,2") -> None:
    size, ratio = int(image_size), float(coreset_ratio)
    data = load_dataset("dagm", data_root, size, classes=(1,))
    train, test = protocols.stratified_split(data, 0.5, seed=0)
    normal = train.images[train.defective == 0]
    rows = []
    for seed in map(int, seeds.split(",")):
        ours = PatchCore(backbone, weights, ratio, size, device="cpu", seed=seed)
        theirs = AnomalibPatchCore(ours, ratio, seed)
        ours_row, ours_scores = measure("steelnb", seed, ours, normal, test.images, test.defective)
        theirs_row, theirs_scores = measure(f"anomalib {anomalib_version}", seed, theirs, normal, test.images,
                                            test.defective)
        theirs_row["score_spearman_vs_steelnb"] = spearmanr(ours_scores, theirs_scores).statistic
        ours_row["max_on_border"] = border_share(ours.anomaly_maps(test.images))
        theirs.model.num_neighbors = 1  # the paper's reweighting off: the largest patch distance, as ours
        theirs_row["auroc_no_reweighting"] = roc_auc_score(test.defective, theirs.score(test.images))
        rows += [ours_row, theirs_row]
    table = pd.DataFrame(rows)
    summary = table.groupby("implementation", sort=False)[["auroc", "acc", "mdr", "fdr", "fit_s", "s_per_image",
                                                           "max_on_border", "auroc_no_reweighting"]]
    means = summary.mean().join(summary.std(), rsuffix="_std").reset_index()
    env = environment("cpu")
    caption = (f"PatchCore, steelnb vs anomalib, DAGM 2007 class 1 (test split only, real images): stratified half "
               f"split, seed 0; fitted on the {len(normal)} defect-free train images (80 % fit, 20 % held out for "
               f"the 0.99-quantile threshold), scored on {len(test)} test images ({int(test.defective.sum())} "
               f"defective). {backbone}, weights {ours.weights}, {size} px, coreset ratio {ratio}, seeds {seeds}. "
               f"{env['machine']}, device {env['device']}, commit {env['commit']}.")
    write_table(table, out_dir, "anomalib_patchcore_runs", caption + " One row per implementation and seed.")
    write_table(means, out_dir, "anomalib_patchcore", caption + " Mean and standard deviation over the seeds.")
    print(caption)
    print(table.to_markdown(index=False, floatfmt=".4f"))
    print(means.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main(*sys.argv[1:])
