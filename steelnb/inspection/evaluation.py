"""The pipeline's answer scored against the labels, where a pile has them (labels never enter the answer).

The detection's decision names its groups (unflagged = defect-free, flagged = defective), so they are scored as
named, never re-matched: a pile where nothing is flagged is called all defect-free, whatever the majority. Only
the types, which are unnamed clusters, are matched to the defect classes (Hungarian, many-to-one when they
outnumber them, as `metrics.cluster_to_class`). The rates are the paper's (`steelnb.metrics`: defect-free the
positive class; MDR = defective called defect-free / N, FDR = defect-free called defective / N, EACC = ACC + FDR).

- **2 clusters** (the paper's defect / defect-free protocol): the decision against the defect flags.
- **5-cluster style** (defect-free + defect types): unflagged images called defect-free, each flagged image its
  type's matched defect class, against the classes.
- **types**: among the flagged images that are truly defective, the types against the true defect classes (NMI,
  ACC); how many flagged images are defect-free (false alarms, which the type stage groups too) is said beside.

Where `--top` / `--top-rate` groups the ranking's top as well, the 5-cluster style and the types take every
grouped image as flagged; the 2-cluster protocol stays detection's decision.

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


def named_scores(truth: np.ndarray, predicted: np.ndarray, clusters: np.ndarray, normal: int) -> dict:
    """ACC, MDR, FDR, EACC of class predictions as they are (no matching), NMI of the clusters behind them."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    defective, called = truth != normal, predicted != normal
    acc = float(np.mean(predicted == truth))
    fdr = float(np.mean(~defective & called))
    return {"nmi": metrics.evaluate(truth, clusters)["nmi"], "acc": acc,
            "mdr": float(np.mean(defective & ~called)), "fdr": fdr, "eacc": acc + fdr,
            "n_clusters": len(np.unique(clusters)), "n": len(truth)}


def type_classes(labels: np.ndarray, types: np.ndarray, real: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Each flagged image's predicted defect class: its type matched (`metrics.cluster_to_class`) on the truly
    defective flagged images; a type holding none of them takes their most common class."""
    predicted = np.full(len(labels), -1, np.int64)
    if not real.any():
        return predicted
    mapping = metrics.cluster_to_class(labels[real], types[real])
    fallback = int(np.bincount(labels[real]).argmax())
    predicted[flagged] = [mapping.get(int(t), fallback) for t in types[flagged]]
    return predicted


def pipeline_scores(labels: np.ndarray | None, defective: np.ndarray | None, normal: int | None,
                    decision: np.ndarray, types: np.ndarray, grouped: np.ndarray | None = None) -> dict:
    """The protocols the truth allows (see the module docstring); for one it does not, a sentence saying why.

    `labels`: class indices or None; `defective`: 0/1 flags or None; `normal`: the defect-free class of `labels`
    (None: there is none); `decision`: 0/1 per image, detection's (the 2-cluster protocol); `grouped`: 0/1 per
    image, those given a type (default: the flagged; `--top` adds the ranking's top), called defective by the
    other two; `types`: each grouped image's type (anything elsewhere).
    """
    decision, types = np.asarray(decision).astype(np.int64), np.asarray(types)
    grouped = decision if grouped is None else np.asarray(grouped).astype(np.int64)
    out = {}
    if defective is None:
        out["two_cluster"] = "not scored: the pile has no defect / defect-free labels"
    elif len(np.unique(defective)) < 2:
        out["two_cluster"] = "not scored: every image of the pile is " + \
                             ("defective" if np.all(defective) else "defect-free")
    else:
        flags = np.asarray(defective).astype(np.int64)
        out["two_cluster"] = named_scores(flags, decision, decision, 0)
    if labels is None:
        out["five_cluster"] = out["types"] = "not scored: the pile has no class labels"
        return out
    labels, decision = np.asarray(labels), grouped
    present = normal is not None and bool((labels == normal).any())
    flagged = decision == 1
    real = flagged & (labels != normal) if present else flagged
    if present and (labels != normal).any():
        predicted = np.where(flagged, type_classes(labels, types, real, flagged), normal)
        out["five_cluster"] = named_scores(labels, predicted, groups(decision, types), normal)
    else:
        out["five_cluster"] = "not scored: the pile needs defect-free and defective images"
    if real.sum() == 0:
        out["types"] = "not scored: no truly defective image was flagged"
    else:
        found = metrics.evaluate(labels[real], types[real])
        out["types"] = {"nmi": found["nmi"], "acc": found["acc"], "n": int(real.sum()),
                        "false_alarms": int((flagged & ~real).sum())}
    return out
