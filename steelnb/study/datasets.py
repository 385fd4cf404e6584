"""Which images play each experiment, and how many: real data where it is, else a stand-in that says so.

- Both kinds of experiment get a `StudySet`: the images, what they are, whether they stand in for the paper's.
- `capped_set(preferred, ...)` (notebooks 00-03): the preferred real set (NEU, DAGM) capped per class, else the
  built-in synthetic set, with a sentence saying which and why.
- `study_set(kind, data_root, profile)` takes the real set the paper used when it is under the data root
  (Severstal, NEU, DAGM), else the closest real data here, else the synthetic steel texture, and says which
  in `StudySet.note`; `stand_in_sets` gives several at once.
- How big: the paper's counts (Severstal 300 defect-free + 50 per defect class; NEU 250 + 50 per class;
  DAGM class 1 as it is) shrink for a quick profile so that the reference class holds at most the
  profile's `max_per_class` images, every other count keeping its proportion (the defect rate stays the
  paper's).
- `find_dataset` is the one lookup of a real set that notebooks use (also for `capped_set`): the
  `data_root` given, else `$STEELNB_DATA`; a set whose folder is not there is `None` with the reason (a stand-in
  takes its place), a folder that is there but cannot be read is a `DataError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data import DataError, ImageSet, data_root_from_env, load_dataset, protocols, synthetic
from ..method.config import TrainConfig
from ..profiles import get_profile

SEVERSTAL_NORMAL, SEVERSTAL_PER_CLASS = 300, 50  # the paper's Severstal sets: 300 defect-free + 50 per ClassId
NEU_TRAIN, NEU_TEST = 250, 50  # the paper's NEU split per class (1500 / 300)
STAND_IN_TYPES = synthetic.CLASSES[1:5]  # synthetic types standing in for Severstal ClassIds 1-4
STABILITY_KINDS = ("I", "II", "III", "IV", "V")
KINDS = ("2-cluster", "5-cluster", *STABILITY_KINDS, "neu", "dagm")
PAPER_SET = {
    "2-cluster": "Severstal 2-cluster (300 defect-free + 4 x 50 defective strips)",
    "5-cluster": "Severstal 5-cluster (300 defect-free + 50 of each ClassId 1-4)",
    **{k: f"Severstal set {k} (300 defect-free + 200 of ClassId {i})" for i, k in enumerate(STABILITY_KINDS[:4], 1)},
    "V": "Severstal set V (300 defect-free + 50 defective strips of any ClassId)",
    "neu": "NEU (6 defect classes x 300, split 250 / 50 per class)",
    "dagm": "DAGM 2007 class 1",
}


# -- sizes ------------------------------------------------------------------------------------------
def scale(profile: str, reference: int) -> float:
    """Factor that shrinks a protocol whose reference class holds `reference` images to the profile's cap."""
    cap = get_profile(profile).max_per_class
    return 1.0 if cap is None else min(1.0, cap / reference)


def scaled(count: int, factor: float, minimum: int = 1) -> int:
    return max(minimum, round(count * factor))


def image_size(profile: str) -> int:
    """The input size the profile trains at (TrainConfig's default when the profile leaves it)."""
    return get_profile(profile).train.get("image_size", TrainConfig.image_size)


# -- data -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudySet:
    """One experiment's images and what they are.

    kind:     the paper's experiment this plays ("2-cluster", "5-cluster", "I".."V", "neu", "dagm");
    source:   "severstal", "dagm", "neu" or "synthetic";
    stand_in: True when `source` is not the data the paper used for `kind`;
    note:     one sentence for titles and captions: which data, how many images, what it stands in for;
    labels:   what the run is scored against ("defect": defect-free / defective, "classes": the classes).
    A `capped_set` also says what captions call it (`description`) and where it was found (`info`).
    """

    kind: str
    data: ImageSet
    source: str
    stand_in: bool
    note: str
    labels: str
    description: str = ""  # what captions say of the data; "": `short`
    info: dict = field(default_factory=dict)  # where the images were read from and how they were sized (run.json)

    @property
    def n_clusters(self) -> int:
        return 2 if self.labels == "defect" else self.data.n_classes

    @property
    def caption(self) -> str:
        """What a caption says of the data: `description`, else `short`."""
        return self.description or self.short

    @property
    def short(self) -> str:
        """A label for plot titles: e.g. 'DAGM class 1 (stand-in for Severstal 2-cluster)'."""
        names = {"severstal": "Severstal", "dagm": "DAGM class 1", "neu": "NEU", "synthetic": "synthetic steel"}
        paper_name = PAPER_SET[self.kind].split(" (")[0]
        return f"{names[self.source]} (stand-in for {paper_name})" if self.stand_in else names[self.source]


@lru_cache(maxsize=8)
def _load(name: str, root: str, size: int, options: tuple) -> ImageSet:
    return load_dataset(name, root, size, **dict(options))


def find_dataset(name: str, data_root: str | Path | None, size: int, **options) -> tuple[ImageSet | None, str]:
    """Real data set `name` at `<root>/<name>/` (or at the root itself), the root being `data_root` or else
    `$STEELNB_DATA`, loaded once per process; (None, why not) when neither holds it.

    Raises DataError when the root does not exist, or when `<root>/<name>/` (or a root named `<name>`) cannot
    be read: a mistyped root or a broken set is not silently replaced by a stand-in.
    """
    root = data_root_from_env(data_root)
    if root is None:
        return None, "no data root given (data_root or $STEELNB_DATA)"
    how = "data_root" if data_root else "$STEELNB_DATA"
    if not root.is_dir():
        raise DataError(f"the data root {root} (from {how}) is not a folder")
    key = (name, str(root), size, tuple(sorted(options.items())))
    if (root / name).is_dir() or root.name.lower() == name:
        return _load(*key), ""
    try:
        return _load(*key), ""  # the root may be the set's own folder, under another name
    except DataError:
        return None, f"no {name}/ folder under {root} (from {how})"


def draw_counts(ds: ImageSet, counts: dict[int, int], seed: int, name: str | None = None) -> ImageSet:
    """`counts[label]` images of each label, drawn without replacement (fewer when fewer exist: the
    numbers wanted and drawn are in `meta["drawn"]`), in the original order."""
    rng = np.random.default_rng(seed)
    picks, drawn = [], {}
    for label, wanted in counts.items():
        pool = np.flatnonzero(ds.labels == label)
        got = min(wanted, len(pool))
        picks.append(rng.choice(pool, size=got, replace=False))
        drawn[ds.class_names[label]] = {"wanted": int(wanted), "drawn": int(got)}
    index = np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)
    subset = ds.subset(index, name)
    return replace(subset, meta={**subset.meta, "drawn": drawn, "draw_seed": seed})


def keep_classes(ds: ImageSet, labels: Sequence[int], name: str | None = None) -> ImageSet:
    """The images of `labels` only, relabelled 0..len(labels)-1 in that order."""
    mapping = np.full(ds.n_classes, -1, np.int64)
    mapping[list(labels)] = np.arange(len(labels))
    kept = ds.subset(np.isin(ds.labels, list(labels)), name)
    return kept.relabel(mapping[kept.labels], tuple(ds.class_names[i] for i in labels))


def synthetic_draw(counts: dict[str, int], size: int, seed: int, name: str) -> ImageSet:
    """Synthetic steel with exactly `counts[class name]` images of each listed class, only those classes
    (labels in the order of `counts`)."""
    types = len(synthetic.CLASSES) - 1
    per_type = max([n for c, n in counts.items() if c != "defect-free"], default=0)
    n_normal = counts.get("defect-free", 0)
    n_images = n_normal + types * per_type
    pool = synthetic.load(image_size=size, n_images=n_images, defect_rate=types * per_type / n_images, seed=seed)
    labels = [synthetic.CLASSES.index(c) for c in counts]
    drawn = draw_counts(pool, {label: counts[c] for label, c in zip(labels, counts, strict=True)}, seed)
    return keep_classes(drawn, labels, name)


def _count_note(ds: ImageSet) -> str:
    counts = {c: int((ds.labels == i).sum()) for i, c in enumerate(ds.class_names)}
    return f"{len(ds)} images (" + ", ".join(f"{n} {c}" for c, n in counts.items()) + ")"


def _absent(what: str, reason: str) -> str:
    return f"{what} is not here: {reason.rstrip('.')}"


SYNTHETIC = "synthetic steel texture (generated, not real images)"


def study_set(kind: str, data_root: str | Path | None = None, profile: str = "ci", seed: int = 0) -> StudySet:
    """The images of the paper's experiment `kind`, real when present, else a stand-in that says so.

    2-cluster: Severstal 2-cluster, else DAGM class 1, else synthetic (12 % defective).
    5-cluster: Severstal 5-cluster, else synthetic defect-free + 4 types (no real labelled multi-type set
               with defect-free images is here).
    I..IV:     Severstal set I..IV, else synthetic defect-free + one type each.
    V:         Severstal set V, else DAGM class 1 drawn as 300 defect-free + 50 defective (fewer when DAGM
               has fewer), else synthetic.
    neu:       all of NEU, else synthetic with the 6 defect types (no defect-free class, as NEU).
    dagm:      DAGM class 1, else synthetic with 12 % defective.
    A Severstal folder too small for the protocol (the 37-image sample) counts as absent: the stand-in plays
    the set and the note says why. Sizes shrink with the profile (see the module docstring); `seed` draws the
    images. The note reads
    "<the data>; stands in for <the paper's set>: <why>" for a stand-in.

    >>> import tempfile
    >>> study = study_set("I", tempfile.mkdtemp(), "ci")  # a data root without Severstal: the stand-in plays it
    >>> study.short, study.labels, study.n_clusters, len(study.data)
    ('synthetic steel (stand-in for Severstal set I)', 'defect', 2, 80)
    """
    if kind not in KINDS:
        raise ValueError(f"study_set: kind must be one of {KINDS}, got {kind!r}")
    size = image_size(profile)
    if kind in ("neu", "dagm"):
        return _real_or_synthetic(kind, data_root, profile, seed, size)
    severstal, reason = find_dataset("severstal", data_root, size)
    if severstal is not None:
        factor = scale(profile, SEVERSTAL_PER_CLASS)
        try:
            data = protocols.severstal_set(severstal, kind, seed, n_normal=scaled(SEVERSTAL_NORMAL, factor),
                                           n_per_class=scaled(SEVERSTAL_PER_CLASS, factor))
        except DataError as error:  # a real sample too small for the protocol: the stand-in plays it
            missing = f"Severstal is here ({len(severstal)} images) but too small for this protocol ({error})"
        else:
            labels = "classes" if kind == "5-cluster" else "defect"
            note = f"Severstal {kind}: {_count_note(data)}, draw seed {seed}"
            return StudySet(kind, data, "severstal", False, note, labels)
    else:
        missing = _absent("Severstal", reason)
    if kind in ("2-cluster", "V"):
        counts = None if kind == "2-cluster" else (SEVERSTAL_NORMAL, SEVERSTAL_PER_CLASS)
        binary = _real_or_synthetic("dagm", data_root, profile, seed, size, counts=counts, paper_set=PAPER_SET[kind])
        note = f"{binary.note}; stands in for {PAPER_SET[kind]}: {missing}"
        return replace(binary, kind=kind, stand_in=True, note=note)
    factor = scale(profile, SEVERSTAL_PER_CLASS)
    normal = scaled(SEVERSTAL_NORMAL, factor)
    if kind == "5-cluster":
        counts = {"defect-free": normal, **{t: scaled(SEVERSTAL_PER_CLASS, factor) for t in STAND_IN_TYPES}}
        data = synthetic_draw(counts, size, seed, "synthetic-5-cluster")
        labels, what = "classes", "defect-free + 4 defect types"
    else:
        defect_type = STAND_IN_TYPES[STABILITY_KINDS.index(kind)]
        counts = {"defect-free": normal, defect_type: 4 * scaled(SEVERSTAL_PER_CLASS, factor)}
        data = protocols.defect_vs_normal(synthetic_draw(counts, size, seed, f"synthetic-{kind}"))
        labels, what = "defect", f"defect-free + {defect_type}"
    note = (f"synthetic stand-in: {SYNTHETIC}, {what}, {_count_note(data)}, seed {seed}; stands in for "
            f"{PAPER_SET[kind]}: {missing}, and no real labelled set with defect-free images and several "
            "defect types is here")
    return StudySet(kind, data, "synthetic", True, note, labels)


def _real_or_synthetic(kind: str, data_root, profile: str, seed: int, size: int,
                       counts: tuple[int, int] | None = None, paper_set: str | None = None) -> StudySet:
    """NEU or DAGM class 1 (optionally drawn as `counts` = (defect-free, defective)), else synthetic.
    A synthetic fallback standing in for a Severstal set (`paper_set`) leaves the "stands in" part to the caller."""
    options = {"classes": (1,)} if kind == "dagm" else {}
    real, reason = find_dataset(kind, data_root, size, **options)
    if kind == "neu":
        factor = scale(profile, NEU_TRAIN)
        per_class = scaled(NEU_TRAIN, factor) + scaled(NEU_TEST, factor, minimum=2)
        if real is not None:
            data = draw_counts(real, dict.fromkeys(range(real.n_classes), per_class), seed) if factor < 1 else real
            return StudySet(kind, data, "neu", False, f"NEU: {_count_note(data)}", "classes")
        data = synthetic_draw(dict.fromkeys(synthetic.CLASSES[1:], per_class), size, seed, "synthetic-neu")
        note = (f"synthetic stand-in: {SYNTHETIC}, the 6 NEU defect types and no defect-free class, "
                f"{_count_note(data)}, seed {seed}; stands in for {PAPER_SET['neu']}: {_absent('NEU', reason)}")
        return StudySet(kind, data, "synthetic", True, note, "classes")
    if real is not None:
        wanted = np.bincount(real.labels, minlength=2) if counts is None else np.array(counts)
        factor = scale(profile, int(wanted.min()))  # keeps the defect rate of the set (or of `counts`)
        drawn = draw_counts(real, {label: scaled(int(n), factor) for label, n in enumerate(wanted)}, seed,
                            "dagm-class1")
        short = {c: v for c, v in drawn.meta["drawn"].items() if v["drawn"] < v["wanted"]}
        cut = f" (fewer than wanted: {short})" if short else ""
        note = f"DAGM 2007 class 1, test split only (real images): {_count_note(drawn)}{cut}, draw seed {seed}"
        return StudySet(kind, drawn, "dagm", False, note, "defect")
    n_normal, n_defective = counts or (504, 71)  # DAGM class 1's test split, 12.3 % defective
    factor = scale(profile, min(n_normal, n_defective))
    n_normal, n_defective = scaled(n_normal, factor), scaled(n_defective, factor)
    pool = synthetic.load(image_size=size, n_images=n_normal + n_defective,
                          defect_rate=n_defective / (n_normal + n_defective), seed=seed)
    data = protocols.defect_vs_normal(replace(pool, name="synthetic-dagm"))
    note = (f"synthetic stand-in: {SYNTHETIC}, all 6 defect types, {n_defective / len(data):.1%} defective, "
            f"{_count_note(data)}, seed {seed}; {_absent('DAGM', reason)}")
    if paper_set is None:
        note += f"; stands in for {PAPER_SET['dagm']}"
    return StudySet(kind, data, "synthetic", True, note, "defect")


def stand_in_sets(data_root: str | Path | None = None, profile: str = "ci", kinds: Iterable[str] = KINDS,
                  seed: int = 0) -> dict[str, StudySet]:
    """`study_set` of every kind in `kinds`."""
    return {kind: study_set(kind, data_root, profile, seed) for kind in kinds}


def neu_split(study: StudySet, profile: str, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """The paper's NEU split (250 / 50 per class, shrunk with the profile) of a "neu" StudySet."""
    factor = scale(profile, NEU_TRAIN)
    return protocols.neu_split(study.data, scaled(NEU_TRAIN, factor), scaled(NEU_TEST, factor, minimum=2), seed)


def data_record(sets: dict[str, StudySet]) -> dict:
    """What `write_record(..., data=...)` takes for one or more study sets (`description` for the README)."""
    return {"description": "; ".join(f"{kind}: {study.short}" for kind, study in sets.items()),
            "stand_in": {kind: study.stand_in for kind, study in sets.items()},
            "notes": {kind: study.note for kind, study in sets.items()}}


# -- a whole set capped per class (notebooks 00-03) ----------------------------------------------------
# How each real data set relates to the paper's experiments.
PAPER_ROLE = {
    "neu": "the paper's NEU",
    "dagm": "DAGM class 1 standing in for Severstal",
    "severstal": "the paper's Severstal",
}


def _find_real(name: str, data_root: str | Path | None, image_size: int) -> tuple[ImageSet | None, dict]:
    """Data set `name` by `find_dataset`, with where it was found; (None, {"not_found": why}) if not."""
    data, why = find_dataset(name, data_root, image_size)
    if data is None:
        return None, {"not_found": why}
    root = data_root_from_env(data_root)
    return data, {"dataset": name, "root": str(root), "found_via": "data_root" if data_root else "$STEELNB_DATA",
                  "role": PAPER_ROLE.get(name, name), "stand_in": name == "dagm"}


def capped_set(preferred: str, data_root: str | Path | None = None, image_size: int = 128,
               max_per_class: int | None = None, seed: int = 0, synthetic_options: dict | None = None) -> StudySet:
    """The `preferred` data set (a real one, or "synthetic"), else the synthetic one, capped at `max_per_class`
    images per class, scored against its classes: the data of the ablation notebooks (00-03).

    Real data is looked up by `find_dataset` (`data_root`, else `$STEELNB_DATA`); where it is not there the
    synthetic set stands in (with a warning) and the set says so. `note` is a sentence to print, `description`
    the short form captions use; `info` (run.json): dataset, root, found_via, role (how it relates to the paper),
    stand_in, n_images, n_classes, max_per_class, image_size, note and description.

    >>> study = capped_set("synthetic", image_size=32, max_per_class=2, synthetic_options={"n_images": 28})
    >>> study.source, study.stand_in, study.labels, study.description.endswith("at most 2 per class)")
    ('synthetic', False, 'classes', True)
    """
    data, info = (None, {}) if preferred == "synthetic" else _find_real(preferred, data_root, image_size)
    if data is None:
        data = load_dataset("synthetic", image_size=image_size, **(synthetic_options or {}))
        role = ("built-in synthetic steel textures, no counterpart in the paper" if preferred == "synthetic"
                else f"synthetic steel textures standing in for {preferred.upper()}")
        info.update(dataset="synthetic", root=None, found_via="built in", role=role,
                    stand_in=preferred != "synthetic")
        if "not_found" in info:
            warnings.warn(f"{preferred} not found ({info['not_found']}); using the built-in "
                          "synthetic data set", stacklevel=2)
    if max_per_class:
        data = protocols.cap_per_class(data, max_per_class, seed=seed)
    counts = ", ".join(f"{c} {n}" for c, n in data.summary()["classes"].items())
    info.update(n_images=len(data), n_classes=data.n_classes, max_per_class=max_per_class, image_size=image_size)
    cap = f", at most {max_per_class} per class" if max_per_class else ""
    info["description"] = f"{info['dataset']} ({info['role']}; {len(data)} images{cap})"
    where = f"read from {info['root']} (found via {info['found_via']})" if info["root"] else "built in"
    info["note"] = f"Data: {info['description']}, {where}. Classes: {counts}."
    if "not_found" in info:
        info["note"] += f" {preferred} was not found: {info['not_found']}."
    return StudySet(preferred, data, info["dataset"], info["stand_in"], info["note"], "classes",
                    info["description"], info)
