"""Image-level neighbours (issue 19, after MuSc's RsCIN): each image's score set against the scores of the images
that look most like it, chosen leaving each pile out.

    python benchmarks/detect_neighbours.py --cache .cache/lab --out results/detect/neighbours.csv

Reads the detection lab's cache (`detect_lab.py` fills it). The default's scores (`self`, then two rounds of
clean-then-rescore, `detect_rescore.rescored`) are rescored by an image descriptor: the mean of the stride-16 and
stride-32 features, each level at a unit mean norm, centred on the pile, L2-normalised; an image's neighbours are
the `k` images of highest cosine similarity (itself excluded). With `b` the median log score of the neighbours:
- `sub`: log score - alpha * b (an image whose look-alikes score high too is less surprising: a pattern the pile
  holds, such as DAGM's woven centres), `clip` only where b lies above the pile's median log score;
- `smooth`: the own log score averaged with the neighbours' (RsCIN's direction: look-alikes share their status);
- `look-alike bank`: the second pass's bank drawn per image from its 16 most similar clean images (all their
  patches) instead of a random half of the clean images, 2 rounds, joined by `min` as the default.
Rows: pile, setting, AUROC, AP; then the lab's rule (`detect_lab.choose`: best worst case over the other piles).
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch
from detect_lab import CHOOSE_ON
from detect_lab import choose as lab_choose
from detect_rescore import DEFAULT_MAPS, pipeline, rescored
from sklearn.metrics import average_precision_score, roc_auc_score


def descriptors(levels: dict[int, torch.Tensor]) -> np.ndarray:
    """(N, D) unit image descriptors: stride-16 and -32 features averaged over the image, each level at a unit mean
    norm, joined and centred on the pile."""
    parts = []
    for stride in (16, 32):
        mean = levels[stride].float().flatten(1, 2).mean(1)
        parts.append(mean / mean.norm(dim=1).mean())
    joined = torch.cat(parts, 1)
    return torch.nn.functional.normalize(joined - joined.mean(0), dim=1).numpy()


def look_alikes(descriptor: np.ndarray) -> np.ndarray:
    """(N, N - 1) every image's other images, the most similar first."""
    similarity = descriptor @ descriptor.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1)[:, :-1]


def look_alike_bank_scores(features: torch.Tensor, default: np.ndarray, descriptor: np.ndarray, k: int = 16,
                           share: float = 0.7, rounds: int = 2) -> np.ndarray:
    """Image scores of the second pass with each image's bank = every patch of its `k` most similar clean images."""
    n, h, w, d = features.shape
    flat = features.reshape(n, h * w, d)
    scores = pipeline(default)[0]
    for _ in range(rounds):
        clean = np.sort(np.argsort(scores)[:int(share * n)])
        similarity = descriptor @ descriptor[clean].T
        similarity[clean[None, :] == np.arange(n)[:, None]] = -np.inf
        nearest = clean[np.argsort(-similarity, axis=1)[:, :k]]
        bank = np.stack([torch.cdist(flat[i], flat[nearest[i]].reshape(-1, d)).min(1).values.numpy()
                         for i in range(n)]).reshape(n, h, w)
        scores = pipeline(np.minimum(default, bank))[0]
    return scores


def variants(scores: np.ndarray, descriptor: np.ndarray) -> dict[str, np.ndarray]:
    """Every rescoring of the grid, keyed by its label, beside the default's own scores."""
    log_scores = np.log(scores)
    found = {"default": log_scores}
    ranked = look_alikes(descriptor)
    for k in (10, 20, 40, 80):
        base = np.median(log_scores[ranked[:, :k]], axis=1)  # the k look-alikes' median log score
        above = np.maximum(base - np.median(log_scores), 0)
        for alpha in (0.25, 0.5, 0.75):
            found[f"sub k={k} alpha={alpha}"] = log_scores - alpha * base
            found[f"sub k={k} alpha={alpha} clip"] = log_scores - alpha * above
        found[f"smooth k={k}"] = 0.5 * log_scores + 0.5 * base
    return found


def pile_rows(name: str, cache: Path) -> list[dict]:
    """AUROC and AP of every variant on pile `name`."""
    levels, truth, _ = torch.load(cache / f"{name}.pt", weights_only=False)
    default = torch.load(cache / f"{name}_maps.pt", weights_only=False)["maps"][DEFAULT_MAPS].float().numpy()
    features = levels[16].float()
    scores = rescored(features.numpy(), default, share=0.7, rounds=2, memory=40_000)
    descriptor = descriptors(levels)
    found = variants(scores, descriptor)
    found["look-alike bank k=16"] = look_alike_bank_scores(features, default, descriptor)
    return [{"pile": name, "setting": setting, "auroc": roc_auc_score(truth, values),
             "ap": average_precision_score(truth, values)} for setting, values in found.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/lab"))
    parser.add_argument("--piles", default=",".join(CHOOSE_ON))
    parser.add_argument("--out", type=Path, default=Path("results/detect/neighbours.csv"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    table = pd.DataFrame([row for name in args.piles.split(",") for row in pile_rows(name, args.cache)])
    table["machine"] = f"{platform.machine()}, {torch.get_num_threads()} thread"
    table.to_csv(args.out, index=False, float_format="%.4f")
    wide = table.pivot(index="setting", columns="pile", values="auroc")
    wide["worst"] = wide.min(axis=1)
    print(wide.sort_values("worst", ascending=False).round(3).head(12).to_string())
    print(lab_choose(table).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
