"""The tables of the experiments: mean ± std per setting, summed confusion and per-class accuracy, the paper's
figures beside the measured ones, Table 5's comparison."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import metrics
from ..data import ImageSet
from . import paper
from .datasets import StudySet

METRICS = ("nmi", "acc", "mdr", "fdr", "eacc")


def summarise(rows: pd.DataFrame, by: str | list[str], columns: Sequence[str]) -> pd.DataFrame:
    """Mean, std (ddof 1; 0 for a single run) and run count of `columns` per group of `by`, in first-seen order:
    the one summary of repeated runs that every table and figure here takes.

    Columns: the `by` columns, then `<column>_mean`, `<column>_std` for each column, and `runs`.

    >>> rows = pd.DataFrame({"method": ["b", "b", "a"], "acc": [0.5, 0.7, 0.2]})
    >>> summarise(rows, "method", ["acc"]).round(4).to_dict("list")
    {'method': ['b', 'a'], 'acc_mean': [0.6, 0.2], 'acc_std': [0.1414, 0.0], 'runs': [2, 1]}
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, *columns] if c not in rows.columns]
    if missing:
        raise ValueError(f"summarise: rows lack the columns {missing}")
    grouped = rows.groupby(by, sort=False)[list(columns)]
    out = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).fillna(0.0).add_suffix("_std"))
    out["runs"] = grouped.size()
    ordered = [c for m in columns for c in (f"{m}_mean", f"{m}_std")] + ["runs"]
    return out[ordered].reset_index()


def mean_std(rows: pd.DataFrame, by: str | list[str], columns: Sequence[str]) -> pd.DataFrame:
    """`summarise` as a results table shows it: the `by` columns, the numeric `<column>_mean`s, then each column as
    "mean ± std" text, in first-seen order.

    >>> rows = pd.DataFrame({"method": ["b", "b", "a"], "acc": [0.5, 0.7, 0.2]})
    >>> mean_std(rows, "method", ["acc"]).acc.tolist()
    ['0.6000 ± 0.1414', '0.2000 ± 0.0000']
    """
    summary = summarise(rows, by, columns)
    table = summary[[*([by] if isinstance(by, str) else by), *(f"{c}_mean" for c in columns)]].copy()
    for column in columns:
        table[column] = [f"{m:.4f} ± {s:.4f}" for m, s in
                         zip(summary[f"{column}_mean"], summary[f"{column}_std"], strict=True)]
    return table


def sweep_table(rows: pd.DataFrame, by: str, metrics: dict[str, str] | None = None,
                order: Sequence | None = None) -> pd.DataFrame:
    """One row per setting of a sweep: "mean ± std" over its runs for each metric (renamed by `metrics`,
    default train NMI / ACC), the numeric means (`<name>_mean`), seconds per run and the number of runs.

    Rows in `order` (default: first seen); std is 0 for a single run.
    """
    metrics = metrics or {"train_nmi": "NMI", "train_acc": "ACC"}
    table = mean_std(rows, by, list(metrics))
    table["s_per_run"] = table[by].map(rows.groupby(by)["train_s"].mean()) if "train_s" in rows else float("nan")
    table["runs"] = table[by].map(rows.groupby(by).size())
    order = list(order) if order is not None else list(dict.fromkeys(rows[by]))
    table = table.set_index(by).loc[[o for o in order if o in set(rows[by])]].reset_index()
    renamed = {**metrics, **{f"{k}_mean": f"{v.lower()}_mean" for k, v in metrics.items()}}
    columns = [by, *metrics, "s_per_run", "runs", *(f"{k}_mean" for k in metrics)]
    return table[columns].rename(columns=renamed)


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
    """The one comparison with the paper: measured | reported (paper) | gap for each metric
    `paper.REPORTED[experiment]` holds (NaN where not measured), with a `data` column saying whether the
    measurement is on the paper's data set or a stand-in. The results README shows it too (`readme`).

    >>> paper_comparison({"acc": 0.9}, "neu").drop(columns="data").round(4).to_dict("records")
    [{'metric': 'acc', 'measured': 0.9, 'reported (paper)': 0.8753, 'gap': 0.0247}]
    """
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


def reported_row(experiment: str, label: str) -> dict:
    """The paper's reported metrics of `experiment` as a table row (NaN where not recorded)."""
    reported = paper.REPORTED.get(experiment, {})
    return {"backbone": label, "initialisation": "reported (paper)", "weights": "",
            **{m: reported.get(m, np.nan) for m in METRICS}}


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
         "source": "measured before this repository (steelnb.study.paper.BARS)"
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
