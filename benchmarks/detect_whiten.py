"""The pile's own feature whitening before `self` and its second pass (issue 19, fourth round), leaving each pile out.

    python benchmarks/detect_whiten.py --cache .cache/lab --out results/detect/whiten.csv

Reads the detection lab's cache (`detect_lab.py` fills it: stride-16 features of each pile). A setting fits the
whitening on 100,000 patches drawn evenly from every image of the pile, as `steelnb detect --whiten` does
(`steelnb.detect.whiten`): the principal directions that hold the `keep` share of the patches' variance, each
divided by the square root of its variance, shrunk towards their mean by `shrink`. Then the package's default runs
on the whitened features: `self` (radius 2), two clean-then-rescore rounds (clean 0.7, 40,000 patches, `min`),
cells auto, sigma 1, top 1 %. Why it should help, seen in DAGM 1's missed defects: a smooth, texture-less smudge
differs from the woven texture around it in directions of little variance over the pile, which plain Euclidean
distances drown in the texture's large ones. Rows: pile, setting, AUROC of the first pass and of the second,
seconds. The lab's rule then picks the setting leaving each pile out (`detect_lab.choose`).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch
from detect_lab import CHOOSE_ON, choose
from detect_rescore import pipeline, rescored
from sklearn.metrics import roc_auc_score

from steelnb.detect.scorers import SelfSimilarity
from steelnb.detect.whiten import fit_whitening

SETTINGS = [(None, 0.0), *((keep, shrink) for keep in (0.9, 0.95, 0.99, 1.0) for shrink in (0.0, 0.5))]


def label(keep: float | None, shrink: float) -> str:
    return "none" if keep is None else f"keep {keep:g}, shrink {shrink:g}"


def aurocs(features: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """AUROC of the first pass (`self`, radius 2) and after the package's two clean-then-rescore rounds."""
    raw = SelfSimilarity(2).maps(torch.from_numpy(features), np.arange(len(truth))).numpy()
    return roc_auc_score(truth, pipeline(raw)[0]), roc_auc_score(truth, rescored(features, raw, 0.7, 2, 40_000))


def pile_rows(name: str, cache: Path) -> list[dict]:
    levels, truth, _ = torch.load(cache / f"{name}.pt", weights_only=False)
    features = levels[16].float()
    rows = []
    for keep, shrink in SETTINGS:
        started = time.perf_counter()
        whitened = features if keep is None else fit_whitening(
            lambda index: features[index], np.arange(len(truth)), len(truth), keep, shrink, seed=0)(features)
        first, second = aurocs(whitened.numpy(), truth)
        rows.append({"pile": name, "setting": label(keep, shrink), "first_pass_auroc": first, "auroc": second,
                     "directions": whitened.shape[-1], "seconds": time.perf_counter() - started})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=".cache/lab")
    parser.add_argument("--piles", default=",".join(CHOOSE_ON))
    parser.add_argument("--out", default="results/detect/whiten.csv")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    table = pd.DataFrame([row for name in args.piles.split(",") for row in pile_rows(name, Path(args.cache))])
    table["machine"] = f"{platform.machine()} {args.threads} threads"
    table.to_csv(args.out, index=False, float_format="%.4g")
    wide = table.pivot_table(index="setting", columns="pile", values="auroc")
    wide["worst"] = wide[[p for p in CHOOSE_ON if p in wide]].min(axis=1)
    print(wide.sort_values("worst", ascending=False).round(3).to_string())
    print(choose(table).to_string())


if __name__ == "__main__":
    main()
