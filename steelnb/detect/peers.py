"""Peers: each image's score against the scores of the images that look most like it (`--peers`, image level).

Per-cell normalisation (position.py) judges each place against the same place across the pile; peers judge each
image against its look-alikes. Where a pile's images differ in kind (DAGM 1's woven texture is coarser and more
contrasted in some images than in others), the normal images of a busy kind all score higher than the rest, and
they outrank the defects of a quiet kind. An image's look is its mean patch feature (the scorer's own features:
no extra pass), compared by cosine similarity once the pile's mean look is taken off; its peers are the `k` other
images most like it; its score is divided by the `weight`-th power of their median score (on the log scale that
the decision reads: the log score less `weight` times the peers' median log score), and every score multiplied
back by the same power of the pile's median peer score, so that the scores keep their scale. A defect is rare
among an image's peers, so the median stays normal; `weight` below 1 keeps most of the image's own scale. Each
image's map is scaled as its score was (run.py), so one threshold reads scores and maps alike; its peak stays
where it was. The lab chose `k` and `weight` leaving each pile out (benchmarks/detect_peers.py,
results/detect/peers.md; `k` 40 since a fourth real pile joined the choice: results/detect/aggregation.md).

>>> looks = np.repeat(np.eye(2), 4, axis=0)  # two kinds of image, four of each
>>> scores = np.array([1.0, 1.0, 1.0, 3.0, 4.0, 4.0, 4.0, 4.0])  # image 3 is odd among its kind; kind 2 is busy
>>> int(np.argmax(scores)), int(np.argmax(peer_scores(scores, looks, k=3, weight=1.0)))
(4, 3)
"""

from __future__ import annotations

import faiss
import numpy as np

from .decision import log_scores

ALIKE = 1e-6  # looks whose spread about the pile's mean is under this share of their size: every image alike


def alike(looks: np.ndarray) -> bool:
    """Whether the images' looks (N, D) are all the same, up to rounding: no image has peers more like it."""
    spread = np.linalg.norm(looks - looks.mean(0), axis=1).max()
    return bool(spread <= ALIKE * max(np.linalg.norm(looks, axis=1).max(), np.finfo(np.float32).tiny))


def peers_of(looks: np.ndarray, k: int) -> np.ndarray:
    """(N, k) indices of each image's `k` most similar other images by the cosine of their centred looks (N, D)."""
    if not 0 < k < len(looks):
        raise ValueError(f"{k} peers of each of {len(looks)} images: k must be from 1 to {len(looks) - 1}")
    centred = np.ascontiguousarray(looks - looks.mean(0), np.float32)
    centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(centred.shape[1])
    index.add(centred)
    _, found = index.search(centred, k + 1)
    mine = found == np.arange(len(looks))[:, None]  # each image finds itself, usually first
    mine[mine.sum(1) == 0, -1] = True  # else (a tie with a twin) the last found is dropped
    return found[~mine].reshape(len(looks), k)


def peer_scores(scores: np.ndarray, looks: np.ndarray, k: int, weight: float) -> np.ndarray:
    """Each of the positive `scores` (N,) against the scores of its `k` peers by their looks (`peers_of`,
    `against_peers`)."""
    return against_peers(scores, peers_of(looks, k), weight)


def against_peers(scores: np.ndarray, peers: np.ndarray, weight: float) -> np.ndarray:
    """Each of the positive `scores` (N,) divided by the `weight`-th power of the median score of its peers (N, k
    indices, `peers_of`), rescaled by the pile's median peer score so that the scores keep their magnitude: one
    search for peers serves several sets of scores of the same images."""
    if not np.isfinite(scores).all():
        raise ValueError("peers need finite image scores: one would spoil the median of every image it is a peer of")
    logs = log_scores(scores)
    typical = np.median(logs[peers], axis=1)
    return np.exp(logs - weight * (typical - np.median(typical)))
