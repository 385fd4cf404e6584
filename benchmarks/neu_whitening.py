"""Does PCA-whitening help k-means on pretrained features? NEU, ImageNet EfficientNet-Lite0 at 224 px, k = 6.

    python benchmarks/neu_whitening.py DATA_ROOT OUT_DIR
"""

from __future__ import annotations

import sys

import pandas as pd

from steelnb.backbones import create_backbone, extract_features
from steelnb.data import load_dataset
from steelnb.method.cluster import Preprocessor, cluster
from steelnb.metrics import evaluate
from steelnb.study.records import environment, write_table

SETTINGS = {"raw": dict(pca_dim=None, l2=False), "pca64 + l2": dict(pca_dim=64),
            "pca64 + whitening + l2": dict(pca_dim=64, whiten=True), "pca64 + whitening": dict(pca_dim=64, whiten=True,
                                                                                               l2=False)}


def main(data_root: str, out_dir: str) -> None:
    data = load_dataset("neu", data_root, 200)
    features = extract_features(create_backbone("efficientnet_lite0", "offline"), data.images, 224, device="cpu")
    rows = []
    for name, options in SETTINGS.items():
        for seed in (0, 1, 2):
            points = Preprocessor.fit(features, seed=seed, **options).transform(features)
            scores = evaluate(data.labels, cluster(points, 6, "kmeans", seed=seed).labels)
            rows.append({"preprocessing": name, "seed": seed, "acc": scores["acc"], "nmi": scores["nmi"]})
    table = pd.DataFrame(rows).groupby("preprocessing", sort=False)[["acc", "nmi"]].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    caption = (f"NEU, 1800 images, k = 6, offline ImageNet EfficientNet-Lite0 features at 224 px, k-means, "
               f"seeds 0-2. {environment()['machine']}.")
    write_table(table.reset_index(), out_dir, "whitening", caption)
    print(table.to_markdown(floatfmt=".4f"))


if __name__ == "__main__":
    main(*sys.argv[1:])
