"""The paper's splits and evaluation sets, all seeded; each records what it did in `meta`.

- `stratified_split`: train / test by label (DAGM has no training split here; this makes one).
- `neu_split`: NEU 250 train + 50 test per class (1500 / 300).
- `severstal_set`: the Severstal sets: "2-cluster", "5-cluster" and "I".."V".
- `defect_vs_normal`: any set with defect flags, relabelled defect-free / defective.
- `cap_per_class`: at most n images per class (tiny subsets for quick profiles).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .errors import DataError
from .imageset import ImageSet

BINARY = ("defect-free", "defective")
SEVERSTAL_CLASSES = ("defect-free", "1", "2", "3", "4")
SEVERSTAL_KINDS = ("2-cluster", "5-cluster", "I", "II", "III", "IV", "V")


def _with_meta(ds: ImageSet, **entries) -> ImageSet:
    return replace(ds, meta={**ds.meta, **entries})


def _require_labels(ds: ImageSet, what: str) -> None:
    if not ds.has_labels:
        raise DataError(f"{what}: data set {ds.name!r} needs a class label on every image.")


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int, what: str) -> np.ndarray:
    """`n` distinct indices drawn from `pool`; DataError saying how many there are when too few."""
    if len(pool) < n:
        raise DataError(f"{what}: needs {n} images but the data set has only {len(pool)}.")
    return rng.choice(pool, size=n, replace=False)


def _split(ds: ImageSet, train: np.ndarray, test: np.ndarray, record: dict) -> tuple[ImageSet, ImageSet]:
    """`ds` at the sorted `train` and `test` indices, named <name>-train / -test, with `meta["split"]`."""
    return tuple(
        _with_meta(ds.subset(np.sort(index), f"{ds.name}-{part}"), split={**record, "part": part})
        for part, index in (("train", train), ("test", test))
    )


def stratified_split(ds: ImageSet, test_fraction: float, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Train / test with round(n_c * test_fraction) of every class c in test (at least one image on each
    side of a class with two or more); both keep the original image order."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"stratified_split: test_fraction must lie in (0, 1), got {test_fraction!r}")
    _require_labels(ds, "stratified_split")
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(ds.labels):
        members = rng.permutation(np.flatnonzero(ds.labels == label))
        n_test = min(max(round(len(members) * test_fraction), 1), len(members) - 1)
        test.append(members[:n_test])
    test_index = np.concatenate(test)
    record = {"protocol": "stratified", "test_fraction": test_fraction, "seed": seed}
    return _split(ds, np.setdiff1d(np.arange(len(ds)), test_index), test_index, record)


def neu_split(
    ds: ImageSet, n_train_per_class: int = 250, n_test_per_class: int = 50, seed: int = 0
) -> tuple[ImageSet, ImageSet]:
    """The paper's NEU split: `n_train_per_class` train and `n_test_per_class` test images of each class."""
    _require_labels(ds, "neu_split")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, name in enumerate(ds.class_names):
        members = np.flatnonzero(ds.labels == label)
        picked = _pick(rng, members, n_train_per_class + n_test_per_class, f"neu_split: class {name!r}")
        train.append(picked[:n_train_per_class])
        test.append(picked[n_train_per_class:])
    record = {"protocol": "neu", "n_train_per_class": n_train_per_class, "n_test_per_class": n_test_per_class}
    return _split(ds, np.concatenate(train), np.concatenate(test), {**record, "seed": seed})


def _single_class(ds: ImageSet) -> np.ndarray:
    """Whether each image carries at most one ClassId (all do when `meta["class_ids"]` is absent)."""
    class_ids = ds.meta.get("class_ids")
    if class_ids is None:
        return np.ones(len(ds), bool)
    return np.array([len(class_ids.get(path, ())) <= 1 for path in ds.paths])


def severstal_set(ds: ImageSet, kind: str, seed: int = 0, n_normal: int = 300, n_per_class: int = 50) -> ImageSet:
    """One of the paper's Severstal sets, drawn from a `severstal.load` set.

    "2-cluster": n_normal defect-free + n_per_class of each ClassId 1-4, labels defect-free / defective;
    "5-cluster": the same images (same seed), labels defect-free / ClassId 1-4;
    "I".."IV":   n_normal defect-free + 4 * n_per_class of ClassId 1..4, labels defect-free / defective;
    "V":         n_normal defect-free + n_per_class defective images of any ClassIds.
    Per-class picks use only images with a single ClassId. The same seed draws the same defect-free images.
    """
    if kind not in SEVERSTAL_KINDS:
        raise ValueError(f"severstal_set: kind must be one of {SEVERSTAL_KINDS}, got {kind!r}")
    if ds.class_names != SEVERSTAL_CLASSES or not ds.has_labels:
        raise DataError(f"severstal_set: {ds.name!r} is not a labelled Severstal set (classes {SEVERSTAL_CLASSES}).")
    rng = np.random.default_rng(seed)
    what = f"Severstal set {kind}"
    picks = [_pick(rng, np.flatnonzero(ds.labels == 0), n_normal, f"{what}: defect-free")]
    single = _single_class(ds)
    if kind in ("2-cluster", "5-cluster"):
        for class_id in range(1, 5):
            pool = np.flatnonzero((ds.labels == class_id) & single)
            picks.append(_pick(rng, pool, n_per_class, f"{what}: single-ClassId images of ClassId {class_id}"))
    elif kind == "V":
        picks.append(_pick(rng, np.flatnonzero(ds.labels > 0), n_per_class, f"{what}: defective"))
    else:
        class_id = SEVERSTAL_KINDS.index(kind) - 1
        pool = np.flatnonzero((ds.labels == class_id) & single)
        picks.append(_pick(rng, pool, 4 * n_per_class, f"{what}: single-ClassId images of ClassId {class_id}"))
    chosen = ds.subset(np.sort(np.concatenate(picks)), f"severstal-{kind}")
    if kind != "5-cluster":
        chosen = chosen.relabel((chosen.labels > 0).astype(np.int64), BINARY)
    record = {"kind": kind, "seed": seed, "n_normal": n_normal, "n_per_class": n_per_class}
    return _with_meta(chosen, severstal_set=record)


def defect_vs_normal(ds: ImageSet) -> ImageSet:
    """The same images labelled by their defect flag: 0 defect-free, 1 defective."""
    if not ds.has_defect_flags:
        raise DataError(f"defect_vs_normal: data set {ds.name!r} needs a defect flag on every image.")
    relabelled = ds.relabel(ds.defective.astype(np.int64), BINARY)
    return _with_meta(relabelled, relabelled_from=ds.class_names)


def cap_per_class(ds: ImageSet, n: int, seed: int = 0) -> ImageSet:
    """At most `n` images of each label (unlabelled images count as one group), original order kept."""
    if n < 1:
        raise ValueError(f"cap_per_class: n must be >= 1, got {n!r}")
    rng = np.random.default_rng(seed)
    kept = [
        members if len(members) <= n else rng.choice(members, size=n, replace=False)
        for members in (np.flatnonzero(ds.labels == label) for label in np.unique(ds.labels))
    ]
    index = np.sort(np.concatenate(kept)) if kept else np.zeros(0, np.int64)
    return _with_meta(ds.subset(index), cap_per_class={"n": n, "seed": seed})
