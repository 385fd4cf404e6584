"""The pipeline's answer scored against the labels, where a pile has them (labels never enter the answer).

- **2 clusters** (the paper's defect / defect-free protocol): the detection's label-free decision as two clusters,
  scored by `metrics.evaluate` against the defect flags (NMI, ACC, MDR, FDR, EACC, defect-free positive).
- **5-cluster style** (defect-free + defect types): every image the detection left unflagged in one cluster, each
  type of the flagged images a cluster of its own, scored by `metrics.evaluate` against the classes, with the
  paper's definitions (clusters matched to classes by the Hungarian method, many-to-one when they outnumber them).
- **types**: among the flagged images that are truly defective, the types against the true defect classes (NMI,
  ACC); how many flagged images are defect-free (false alarms, which the type stage groups too) is said beside.

>>> import numpy as np
>>> labels = np.array([0, 0, 0, 1, 1, 2, 2])  # 0: defect-free
>>> decision = np.array([0, 0, 1, 1, 1, 1, 1])
>>> types = np.array([-1, -1, 0, 0, 0, 1, 1])  # -1: not flagged
>>> scores = pipeline_scores(labels, labels > 0, 0, decision, types)
>>> round(scores["two_cluster"]["acc"], 3), scores["types"]["acc"], scores["types"]["false_alarms"]
(0.857, 1.0, 1)
>>> round(scores["five_cluster"]["acc"], 3), round(scores["five_cluster"]["fdr"], 3)
(0.857, 0.143)
"""

from __future__ import annotations

import numpy as np

from .. import metrics

KEYS = ("nmi", "acc", "mdr", "fdr", "eacc")


def groups(decision: np.ndarray, types: np.ndarray) -> np.ndarray:
    """One cluster id per image: 0 for an unflagged image, 1 + its type for a flagged one."""
    decision = np.asarray(decision).astype(bool)
    return np.where(decision, np.asarray(types) + 1, 0).astype(np.int64)


def _scores(truth: np.ndarray, clusters: np.ndarray, normal: int | None) -> dict:
    found = metrics.evaluate(truth, clusters, normal_label=normal)
    return {k: found[k] for k in (*KEYS, "n_clusters", "n") if k in found}


def pipeline_scores(labels: np.ndarray | None, defective: np.ndarray | None, normal: int | None,
                    decision: np.ndarray, types: np.ndarray) -> dict:
    """The protocols the truth allows (see the module docstring); for one it does not, a sentence saying why.

    `labels`: class indices or None; `defective`: 0/1 flags or None; `normal`: the defect-free class of `labels`
    (None: there is none); `decision`: 0/1 per image; `types`: each flagged image's type (anything elsewhere).
    """
    decision = np.asarray(decision).astype(np.int64)
    out = {}
    if defective is None:
        out["two_cluster"] = "not scored: the pile has no defect / defect-free labels"
    elif len(np.unique(defective)) < 2:
        out["two_cluster"] = "not scored: every image of the pile is " + \
                             ("defective" if np.all(defective) else "defect-free")
    else:
        out["two_cluster"] = _scores(np.asarray(defective).astype(np.int64), decision, 0)
    if labels is None:
        out["five_cluster"] = out["types"] = "not scored: the pile has no class labels"
        return out
    labels = np.asarray(labels)
    present = normal is not None and bool((labels == normal).any())
    if present and (labels != normal).any():
        out["five_cluster"] = _scores(labels, groups(decision, types), normal)
    else:
        out["five_cluster"] = "not scored: the pile needs defect-free and defective images"
    flagged = decision == 1
    real = flagged & (labels != normal) if present else flagged
    if real.sum() == 0:
        out["types"] = "not scored: no truly defective image was flagged"
    else:
        found = metrics.evaluate(labels[real], np.asarray(types)[real])
        out["types"] = {"nmi": found["nmi"], "acc": found["acc"], "n": int(real.sum()),
                        "false_alarms": int((flagged & ~real).sum())}
    return out
