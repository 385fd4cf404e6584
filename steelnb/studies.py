"""What the study notebooks (04 backbones, 05 stability, 06 NEU, 07 DAGM) run on `studysets.study_set` data.

- Runs: `study_config`, `experiments.fit_and_score` (train on one part, assign the other with the trained run),
  `repeated_runs`, `backbone_rows`, `baseline_rows`, `stability_rows`.
- Summaries: `summed_confusion`, `per_class_table`, `paper_comparison`, `all_normal_row`, `neu_acc_table`,
  `comparison_table`, plus the figures.

Where results go and the thread cap are `steelnb.report`'s `results_path` and `limit_threads`, shared with
notebooks 00-03.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics, paper
from .baselines import run_baselines
from .data import ImageSet, protocols
from .experiments import fit_and_score, score_run
from .method.config import TrainConfig
from .profiles import get_profile
from .studysets import StudySet, study_set


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


def baseline_rows(config: TrainConfig, train: ImageSet, test: ImageSet, seed: int = 0, **options) -> pd.DataFrame:
    """`baselines.run_baselines` on `train` / `test` with the backbone, weights, feature size and device the
    method's runs use (`config`); `options` go to `run_baselines` (methods, coreset_ratio, ...)."""
    return run_baselines(train, test, config.backbone, config.weights, input_size=config.feature_size, seed=seed,
                         device=config.device, **options)


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
