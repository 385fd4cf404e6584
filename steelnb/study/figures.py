"""Figures of the experiments' tables: metrics of a sweep (bars, lines), grouped bars, box plots of repeated runs,
a confusion heatmap. Each returns a matplotlib `Figure` (made with `pyplot`, so a notebook shows it; a script or
test may close it) and leaves the backend alone. The figures of one run's images and features (galleries, 2-D
maps) are `steelnb.plots`."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..plots import wrap
from . import tables


def metric_bars(rows: pd.DataFrame, by: str, metrics: Sequence[str], title: str | None = None,
                labels: dict[str, str] | None = None, ylim: tuple[float, float] | None = (0.0, 1.0)) -> Figure:
    """Grouped bars: one group per value of `by`, one bar per metric, mean over rows with ± std error bars.

    `labels` renames metrics in the legend (e.g. {"train_nmi": "NMI"}).
    """
    table = tables.summarise(rows, by, metrics)
    labels = labels or {}
    width = 0.8 / len(metrics)
    x = np.arange(len(table))
    figure, axis = plt.subplots(figsize=(max(4.0, 1.1 * len(table) + 1.5), 3.6))
    for index, metric in enumerate(metrics):
        offset = (index - (len(metrics) - 1) / 2) * width
        bars = axis.bar(x + offset, table[f"{metric}_mean"], width, yerr=table[f"{metric}_std"], capsize=3,
                        label=labels.get(metric, metric))
        axis.bar_label(bars, fmt="%.3f", fontsize=6, padding=2)
    axis.set_xticks(x, [str(v) for v in table[by]])
    axis.set_xlabel(by)
    if ylim is not None:
        axis.set_ylim(*ylim)
    axis.legend(fontsize=8, frameon=False)
    if title:
        axis.set_title(wrap(title, 80), fontsize=8)
    figure.tight_layout()
    return figure


def metric_lines(rows: pd.DataFrame, x: str, metrics: Sequence[str], hue: str | None = None,
                 title: str | None = None, labels: dict[str, str] | None = None, log2_x: bool = False,
                 ylim: tuple[float, float] | None = (0.0, 1.0)) -> Figure:
    """One panel per metric: the mean over rows against `x`, one line per value of `hue`, ± std as error bars.

    Sweeps (x = batch size) and histories (x = epoch, hue = optimiser) alike. NaN values are ignored.
    """
    labels = labels or {}
    groups = [(None, rows)] if hue is None else list(rows.groupby(hue, sort=False))
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 3.5), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        for name, part in groups:
            table = tables.summarise(part, x, [metric]).sort_values(x)
            axis.errorbar(table[x], table[f"{metric}_mean"], yerr=table[f"{metric}_std"], marker="o",
                          markersize=4, capsize=3, label=None if name is None else str(name))
        if log2_x:
            axis.set_xscale("log", base=2)
            ticks = sorted(rows[x].unique())
            axis.set_xticks(ticks, [str(t) for t in ticks])
        elif pd.api.types.is_integer_dtype(rows[x]):
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel(x)
        axis.set_ylabel(labels.get(metric, metric))
        if ylim is not None:
            axis.set_ylim(*ylim)
        if hue is not None:
            axis.legend(fontsize=8, frameon=False, title=hue, title_fontsize=8)
    if title:
        figure.suptitle(wrap(title), fontsize=8)
    figure.tight_layout()
    return figure


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
    axis.set_title(wrap(title, 90), fontsize=8)
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
    figure.suptitle(wrap(title, 40 * len(columns)), fontsize=8)
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
    axis.set_title(wrap(title, 80), fontsize=8)
    figure.tight_layout()
    return figure
