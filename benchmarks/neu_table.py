"""NEU (k = 6): untrained features + k-means, the linear-probe ceiling, and finished joint-training runs.

    python benchmarks/neu_table.py DATA_ROOT OUT_DIR [RUN_DIR ...]

Features are taken at 224 px; "plain" is k-means on the raw features (how the bar of 0.889 was measured),
"pca64+l2" is the preprocessing the method uses. Random backbones are averaged over seeds 0-2 (their
initialisation changes with the seed); the probe is 5-fold cross-validated logistic regression.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold

from steelnb.backbones import create_backbone, extract_features
from steelnb.baselines.fixed import linear_probe
from steelnb.data import load_dataset
from steelnb.method.cluster import Preprocessor, cluster
from steelnb.metrics import evaluate
from steelnb.study.records import environment, write_table

UNTRAINED = (("convnextv2_atto", "random"), ("resnet18", "random"), ("efficientnet_lite0", "offline"))
SEEDS = (0, 1, 2)


def kmeans_scores(features: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, dict]:
    plain = Preprocessor.fit(features, None, l2=False).transform(features)
    reduced = Preprocessor.fit(features, 64, seed=seed).transform(features)
    return {name: evaluate(labels, cluster(points, 6, "kmeans", seed=seed).labels)
            for name, points in (("plain", plain), ("pca64+l2", reduced))}


def untrained_rows(data) -> tuple[list[dict], np.ndarray]:
    rows, lite0 = [], None
    for name, weights in UNTRAINED:
        for seed in SEEDS:
            torch.manual_seed(seed)
            started = time.perf_counter()
            features = extract_features(create_backbone(name, weights), data.images, 224, device="cpu")
            for prep, scores in kmeans_scores(features, data.labels, seed).items():
                rows.append({"features": f"{name} ({weights}), untrained", "preprocessing": prep, "seed": seed,
                             "acc": scores["acc"], "nmi": scores["nmi"], "s": time.perf_counter() - started})
            if weights == "offline":
                lite0 = features
    return rows, lite0


def probe_row(features: np.ndarray, labels: np.ndarray) -> dict:
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    predicted = np.empty_like(labels)
    for train, test in folds.split(features, labels):
        predicted[test] = linear_probe(features[train], labels[train], features[test])
    return {"features": "efficientnet_lite0 (offline), linear probe (supervised ceiling)",
            "preprocessing": "standardised", "seed": 0, "acc": float((predicted == labels).mean()),
            "nmi": evaluate(labels, predicted)["nmi"]}


def run_rows(run_dirs: list[str]) -> list[dict]:
    rows = []
    for run_dir in run_dirs:
        result = json.loads((Path(run_dir) / "metrics.json").read_text())
        config = json.loads((Path(run_dir) / "config.json").read_text())
        name = f"{config['backbone']} ({config['weights']}), joint training ({Path(run_dir).name})"
        rows.append({"features": name, "preprocessing": f"pca{config['pca_dim']}+l2", "seed": config["seed"],
                     "acc": result["metrics"]["acc"], "nmi": result["metrics"]["nmi"], "s": result["run"]["wall_s"]})
    return rows


def main(data_root: str, out_dir: str, *run_dirs: str) -> None:
    data = load_dataset("neu", data_root, 200)
    rows, lite0 = untrained_rows(data)
    rows.append(probe_row(lite0, data.labels))
    rows += run_rows(list(run_dirs))
    table = pd.DataFrame(rows)
    summary = table.groupby(["features", "preprocessing"], sort=False).agg(
        acc=("acc", "mean"), acc_std=("acc", "std"), nmi=("nmi", "mean"), runs=("seed", "count")).reset_index()
    env = environment("cpu")
    caption = (f"NEU, all 1800 images, k = 6; features at 224 px; mean over seeds {SEEDS} where runs > 1. "
               f"Machine: {env['machine']}, device {env['device']}.")
    write_table(summary, out_dir, "neu_table", caption)
    write_table(table, out_dir, "neu_table_runs", "Every run of neu_table.md.")
    print(summary.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main(*sys.argv[1:])
