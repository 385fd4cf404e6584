"""What the study notebooks (04 backbones, 05 stability, 06 NEU, 07 DAGM) share.

- Which data plays the paper's: `study_set(kind, data_root, profile)` takes the real set the paper used
  when it is under the data root (Severstal, NEU, DAGM), else the closest real data here, else the
  synthetic steel texture, and says which in `StudySet.note`. `stand_in_sets` gives several at once.
- How big: the paper's counts (Severstal 300 defect-free + 50 per defect class; NEU 250 + 50 per class;
  DAGM class 1 as it is) shrink for a quick profile so that the reference class holds at most the
  profile's `max_per_class` images, every other count keeping its proportion (the defect rate stays the
  paper's).
- Runs: `study_config`, `experiments.fit_and_score` (train on one part, assign the other with the trained run),
  `repeated_runs`, and the summaries: `summed_confusion`, `per_class_table`, `paper_comparison`,
  `all_normal_row`, `neu_acc_table`, `comparison_table`, plus the figures.

Where results go and the thread cap are `steelnb.report`'s `results_path` and `limit_threads`, shared with
notebooks 00-03.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics, paper
from .data import DataError, ImageSet, data_root_from_env, load_dataset, protocols, synthetic
from .experiments import fit_and_score, score_run
from .profiles import get_profile
from .train import TrainConfig

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
    """

    kind: str
    data: ImageSet
    source: str
    stand_in: bool
    note: str
    labels: str

    @property
    def n_clusters(self) -> int:
        return 2 if self.labels == "defect" else self.data.n_classes

    @property
    def short(self) -> str:
        """A label for plot titles: e.g. 'DAGM class 1 (stand-in for Severstal 2-cluster)'."""
        names = {"severstal": "Severstal", "dagm": "DAGM class 1", "neu": "NEU", "synthetic": "synthetic steel"}
        paper_name = PAPER_SET[self.kind].split(" (")[0]
        return f"{names[self.source]} (stand-in for {paper_name})" if self.stand_in else names[self.source]


@lru_cache(maxsize=8)
def _load(name: str, root: str | None, size: int, options: tuple) -> ImageSet:
    return load_dataset(name, root, size, **dict(options))


def find_dataset(name: str, data_root: str | Path | None, size: int, **options) -> tuple[ImageSet | None, str]:
    """Real data set `name` under `data_root` (None: `$STEELNB_DATA`), loaded once per process, or
    (None, why not)."""
    root = data_root_from_env(data_root)
    if root is None:
        return None, "no data root given (data_root or $STEELNB_DATA)"
    try:
        return _load(name, str(root), size, tuple(sorted(options.items()))), ""
    except DataError as error:
        return None, f"no {name}/ folder under {root}" if not (root / name).is_dir() else str(error)


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
    Sizes shrink with the profile (see the module docstring); `seed` draws the images. The note reads
    "<the data>; stands in for <the paper's set>: <why>" for a stand-in.
    """
    if kind not in KINDS:
        raise ValueError(f"study_set: kind must be one of {KINDS}, got {kind!r}")
    size = image_size(profile)
    if kind in ("neu", "dagm"):
        return _real_or_synthetic(kind, data_root, profile, seed, size)
    severstal, reason = find_dataset("severstal", data_root, size)
    if severstal is not None:
        factor = scale(profile, SEVERSTAL_PER_CLASS)
        data = protocols.severstal_set(severstal, kind, seed, n_normal=scaled(SEVERSTAL_NORMAL, factor),
                                       n_per_class=scaled(SEVERSTAL_PER_CLASS, factor))
        labels = "classes" if kind == "5-cluster" else "defect"
        note = f"Severstal {kind}: {_count_note(data)}, draw seed {seed}"
        return StudySet(kind, data, "severstal", False, note, labels)
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


# -- runs -------------------------------------------------------------------------------------------
def study_config(profile: str, study: StudySet, seed: int = 0, sweep: bool = False, **overrides) -> TrainConfig:
    """The profile's TrainConfig (its short `sweep` settings with `sweep=True`) for `study`: scored against
    `study.labels`, pseudo-labels from the profile's K (at least the number of classes), the answer in
    as many clusters as classes, `seed`, then `overrides`."""
    settings = get_profile(profile)
    base = settings.sweep_config() if sweep else dict(settings.train)
    base.pop("max_per_class", None)  # the study set is already sized
    if "backbone" in overrides and "weights" not in overrides:
        overrides["weights"] = settings.weights_for(overrides["backbone"])
    n_clusters = max(base.get("n_clusters", TrainConfig.n_clusters), study.n_clusters)
    values = {**base, "dataset": study.data.name, "labels": study.labels, "n_clusters": n_clusters,
              "eval_clusters": study.n_clusters, "seed": seed, **overrides}
    return TrainConfig.from_dict(values)


def repeated_runs(config: TrainConfig, seeds: Iterable[int], data: ImageSet | Callable[[int], ImageSet],
                  test: ImageSet | None = None, columns: dict | None = None) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """One run per seed (`config.seed = seed`; `data(seed)` when `data` is a function, a fresh draw each time).

    Returns one row per run (with `columns` added in front) and, given `test`, each run's test predictions.
    """
    rows, predictions = [], []
    for seed in seeds:
        images = data(seed) if callable(data) else data
        run_config = replace(config, seed=int(seed))
        if test is None:
            row = score_run(run_config, images)
        else:
            row, table = fit_and_score(run_config, images, test)
            predictions.append(table)
        rows.append({**(columns or {}), **row})
    return pd.DataFrame(rows), predictions


def summed_confusion(predictions: Sequence[pd.DataFrame], class_names: Sequence[str]) -> pd.DataFrame:
    """Sum over runs of each run's confusion matrix (clusters matched to classes per run, as
    `metrics.confusion` does); rows true class, columns predicted class."""
    if not predictions:
        raise ValueError("summed_confusion: no runs")
    tables = [metrics.confusion(p["truth"].to_numpy(), p["cluster"].to_numpy(), class_names) for p in predictions]
    return sum(tables[1:], tables[0])


def per_class_table(confusion: pd.DataFrame, predictions: Sequence[pd.DataFrame] | None = None) -> pd.DataFrame:
    """Per-class accuracy of a summed confusion matrix (correct / images of the class over all runs), with
    the mean and std over runs of each run's per-class accuracy when `predictions` are given."""
    totals = confusion.sum(axis=1).to_numpy(dtype=float)
    correct = np.diag(confusion.to_numpy()).astype(float)
    table = pd.DataFrame({"class": confusion.index.astype(str), "images": totals.astype(int),
                          "correct": correct.astype(int),
                          "accuracy": np.divide(correct, totals, out=np.full_like(correct, np.nan), where=totals > 0)})
    if predictions:
        names = list(confusion.index)
        runs = np.array([metrics.per_class_accuracy(p["truth"].to_numpy(), p["cluster"].to_numpy(), names).to_numpy()
                         for p in predictions])
        table["run_mean"] = runs.mean(axis=0)
        table["run_std"] = runs.std(axis=0, ddof=1) if len(runs) > 1 else 0.0
    return table


def paper_comparison(measured: dict, experiment: str, study: StudySet | None = None) -> pd.DataFrame:
    """measured | reported (paper) | gap for each metric `paper.REPORTED[experiment]` holds, with a `data`
    column saying whether the measurement is on the paper's data set or a stand-in."""
    reported = paper.REPORTED.get(experiment, {})
    gaps = paper.gap(measured, experiment)
    if study is None or not study.stand_in:
        data = f"same data set as the paper ({study.short})" if study else "same data set as the paper"
    else:
        data = f"DIFFERENT data set: {study.short}; the gap compares different images"
    return pd.DataFrame([{"metric": k, "measured": measured.get(k, np.nan), "reported (paper)": v,
                          "gap": gaps.get(k, np.nan), "data": data} for k, v in reported.items()])


def all_normal_row(test: ImageSet) -> dict:
    """The trivial detector that calls every image defect-free, scored on `test`'s defect flags."""
    defective = test.defective.astype(bool)
    scores = metrics.defect_scores_metrics(defective.astype(int), np.zeros(len(test)), threshold=0.5)
    return {"acc": scores["acc"], "nmi": 0.0, "mdr": scores["mdr"], "fdr": scores["fdr"],
            "eacc": scores["eacc"], "auroc": scores["auroc"]}


def method_auroc(predictions: pd.DataFrame, test: ImageSet) -> float:
    """Image AUROC of a trained run's distance to its defect-free centroid as the defect score."""
    return metrics.defect_scores_metrics(test.defective.astype(int), predictions["normal_distance"].to_numpy())["auroc"]


def initialisation(weights: str) -> str:
    """"pretrained (<weights>)" or "random" for a weights string of `Backbone.weights` or TrainConfig."""
    weights = weights.removeprefix("trained from ")
    return "random" if weights == "random" else f"pretrained ({weights})"


# -- the notebooks' tables -------------------------------------------------------------------------
METRICS = ("nmi", "acc", "mdr", "fdr", "eacc")


def backbone_rows(profile: str, study: StudySet, backbones: Sequence[str], seed: int = 0, split_seed: int = 0,
                  test_fraction: float = 0.5, **overrides) -> pd.DataFrame:
    """Tables 2 / 3: per backbone, train on a seeded stratified split of `study` and score its test part.

    Each row is one of many runs, so it uses the profile's short `sweep` settings.

    Columns: backbone, initialisation, weights, the test metrics (`METRICS`), test seconds per image, the
    clustering metrics of the training part (train_acc, train_nmi), sizes, training seconds.
    """
    train, test = protocols.stratified_split(study.data, test_fraction, split_seed)
    rows = []
    for backbone in backbones:
        config = study_config(profile, study, seed, sweep=True, backbone=backbone, **overrides)
        row = score_run(config, train, test)
        rows.append({"backbone": backbone, "initialisation": initialisation(row["weights"]),
                     "weights": row["weights"], **{m: row.get(m, np.nan) for m in METRICS},
                     "test_s_per_image": row.get("test_s_per_image", np.nan),
                     "train_acc": row.get("train_acc", np.nan), "train_nmi": row.get("train_nmi", np.nan),
                     "n_train": len(train), "n_test": len(test), "train_s": row["train_s"]})
    return pd.DataFrame(rows)


def reported_row(experiment: str, label: str) -> dict:
    """The paper's reported metrics of `experiment` as a table row (NaN where not recorded)."""
    reported = paper.REPORTED.get(experiment, {})
    return {"backbone": label, "initialisation": "reported (paper)", "weights": "",
            **{m: reported.get(m, np.nan) for m in METRICS}}


def stability_rows(kind: str, data_root: str | Path | None, profile: str, repeats: int | None = None,
                   sweep: bool = True, **overrides) -> pd.DataFrame:
    """Experiment `kind` (I..V) repeated: repetition r draws its images with seed r and trains with seed r;
    each run clusters the images it trained on (as the paper's stability experiments do).

    Columns: experiment, data, seed, acc, nmi, mdr, fdr, eacc, weights, train_s.
    """
    repeats = get_profile(profile).repeats if repeats is None else repeats
    first = study_set(kind, data_root, profile, seed=0)
    config = study_config(profile, first, 0, sweep=sweep, **overrides)
    draws = {0: first.data}

    def draw(seed: int) -> ImageSet:
        return draws[seed] if seed in draws else study_set(kind, data_root, profile, seed=seed).data

    rows, _ = repeated_runs(config, range(repeats), draw, columns={"experiment": kind, "data": first.short})
    renamed = rows.rename(columns={f"train_{m}": m for m in METRICS})
    return renamed[["experiment", "data", "seed", *METRICS, "weights", "train_s"]]


def data_record(sets: dict[str, StudySet]) -> dict:
    """What `write_record(..., data=...)` takes for one or more study sets (`description` for the README)."""
    return {"description": "; ".join(f"{kind}: {study.short}" for kind, study in sets.items()),
            "stand_in": {kind: study.stand_in for kind, study in sets.items()},
            "notes": {kind: study.note for kind, study in sets.items()}}


def neu_acc_table(rows: pd.DataFrame, study: StudySet) -> pd.DataFrame:
    """Test ACC / NMI over runs beside the paper's reported NEU ACC and the bar of untrained ImageNet
    EfficientNet-Lite0 features + k-means (measured on NEU before this repository)."""
    data = study.short
    bar = paper.BARS["neu-lite0-kmeans"]
    return pd.DataFrame([
        {"result": "this repository: trained run, test images assigned", "acc": rows["acc"].mean(),
         "acc_std": rows["acc"].std(ddof=1) if len(rows) > 1 else 0.0, "nmi": rows["nmi"].mean(),
         "runs": len(rows), "data": data, "source": "measured"},
        {"result": "Bai et al. 2024", "acc": paper.REPORTED["neu"]["acc"], "acc_std": np.nan, "nmi": np.nan,
         "runs": np.nan, "data": "NEU, the paper's 1500 / 300 split",
         "source": "reported (paper)" + ("" if not study.stand_in else "; DIFFERENT data from the row above")},
        {"result": "bar: ImageNet EfficientNet-Lite0 + k-means, no training", "acc": bar["acc"], "acc_std": np.nan,
         "nmi": bar["nmi"], "runs": np.nan, "data": "NEU",
         "source": "measured before this repository (steelnb.paper.BARS)"
                   + ("" if not study.stand_in else "; DIFFERENT data from the first row")},
    ])


def method_summary(rows: pd.DataFrame, predictions: Sequence[pd.DataFrame], test: ImageSet,
                   label: str = "joint (this repo)") -> dict:
    """One row for the method over its runs: mean test metrics, AUROC of the distance to the defect-free
    centroid, the std of ACC over runs, seconds per image, weights."""
    aurocs = [method_auroc(p, test) for p in predictions]
    return {"method": label, "features": rows["backbone"].iloc[0],
            **{m: float(rows[m].mean()) for m in ("acc", "nmi", "mdr", "fdr", "eacc")},
            "auroc": float(np.mean(aurocs)) if aurocs else np.nan,
            "acc_std": float(rows["acc"].std(ddof=1)) if len(rows) > 1 else 0.0,
            "s_per_image": float(rows["test_s_per_image"].mean()), "weights": rows["weights"].iloc[0],
            "source": f"measured, mean of {len(rows)} runs (seeds {', '.join(map(str, rows['seed']))})"}


def comparison_table(method: dict, baselines: pd.DataFrame, test: ImageSet, experiment: str = "dagm",
                     study: StudySet | None = None) -> pd.DataFrame:
    """Table 5: the method, the baselines, "everything defect-free" on the same test images, and the paper's
    reported figures (marked "reported (paper)", other data where `study` is a stand-in)."""
    columns = ["method", "features", "acc", "nmi", "mdr", "fdr", "eacc", "auroc", "acc_std", "s_per_image",
               "weights", "source"]
    rows = [method]
    for record in baselines.to_dict("records"):
        note = f"; {record['note']}" if isinstance(record.get("note"), str) and record["note"] else ""
        rows.append({**{k: record.get(k, np.nan) for k in columns}, "acc_std": np.nan,
                     "source": f"measured, baseline{note}"})
    rows.append({"method": "everything defect-free", "features": "none", **all_normal_row(test),
                 "acc_std": np.nan, "s_per_image": 0.0, "weights": "none", "source": "trivial, same test images"})
    reported = paper.REPORTED.get(experiment, {})
    if reported:
        other = f"; other images: this table uses {study.short}" if study is not None and study.stand_in else ""
        rows.append({"method": "Bai et al. 2024", "features": "the paper's model", "weights": "",
                     **{m: reported.get(m, np.nan) for m in METRICS},
                     "source": f"reported (paper), the paper's own split{other}"})
    return pd.DataFrame(rows).reindex(columns=columns)


# -- figures ----------------------------------------------------------------------------------------
def _wrap(title: str, width: int = 90) -> str:
    """`title` with each of its lines wrapped at `width` characters."""
    import textwrap

    return "\n".join(textwrap.fill(line, width) for line in title.splitlines())


def bar_figure(table: pd.DataFrame, label: str, columns: Sequence[str], title: str):
    """Grouped bars of `columns` (0..1) for each row, labelled by `table[label]`."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(max(5.0, 1.2 * len(table) + 2), 3.6))
    width = 0.8 / len(columns)
    x = np.arange(len(table))
    for i, column in enumerate(columns):
        axis.bar(x + (i - (len(columns) - 1) / 2) * width, table[column].astype(float), width, label=column.upper())
    axis.set_xticks(x, table[label].astype(str), rotation=20, ha="right")
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.set_title(_wrap(title), fontsize=8)
    figure.tight_layout()
    return figure


def box_figure(rows: pd.DataFrame, by: str, columns: Sequence[str], title: str):
    """One box plot per metric of `columns`, a box per group of `by` (the runs of one experiment)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.4), squeeze=False)
    groups = list(dict.fromkeys(rows[by]))
    for axis, column in zip(axes[0], columns, strict=True):
        values = [rows.loc[rows[by] == g, column].astype(float).to_numpy() for g in groups]
        axis.boxplot(values, tick_labels=[str(g) for g in groups])
        for i, v in enumerate(values, start=1):
            axis.plot(np.full(len(v), i), v, "k.", alpha=0.5)
        axis.set_title(column.upper())
        axis.set_ylim(-0.02, 1.02)
    figure.suptitle(_wrap(title, 40 * len(columns)), fontsize=8)
    figure.tight_layout()
    return figure


def confusion_figure(confusion: pd.DataFrame, title: str):
    """Heatmap of a (summed) confusion matrix, rows normalised, counts written in the cells."""
    import matplotlib.pyplot as plt

    counts = confusion.to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)
    figure, axis = plt.subplots(figsize=(1.1 * len(confusion) + 2.5, 0.9 * len(confusion) + 2))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        axis.text(j, i, str(count), ha="center", va="center", color="white" if shares[i, j] > 0.6 else "black")
    axis.set_xticks(range(len(confusion)), confusion.columns, rotation=30, ha="right")
    axis.set_yticks(range(len(confusion)), confusion.index)
    axis.set_xlabel("predicted (clusters matched to classes per run)")
    axis.set_ylabel("true class")
    figure.colorbar(image, ax=axis, fraction=0.046, label="share of the true class")
    axis.set_title(_wrap(title, 80), fontsize=8)
    figure.tight_layout()
    return figure
