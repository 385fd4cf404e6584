"""The figures of the experiments' tables, on tiny tables."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from steelnb.study import figures, tables
from steelnb.study.records import write_figure


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def prediction(truth, cluster) -> pd.DataFrame:
    return pd.DataFrame({"truth": truth, "cluster": cluster})


@pytest.fixture
def sweep_rows():
    return pd.DataFrame({"method": ["b", "b", "a", "a", "c"], "seed": [0, 1, 0, 1, 0],
                         "nmi": [0.5, 0.7, 0.2, 0.2, 0.9], "acc": [0.4, 0.6, 0.3, 0.5, 1.0]})


def test_metric_bars_draws_a_bar_per_method_and_metric(sweep_rows):
    figure = figures.metric_bars(sweep_rows, "method", ["nmi", "acc"], title="t", labels={"nmi": "NMI"})
    axis = figure.axes[0]
    assert len(axis.patches) == 6
    assert [t.get_text() for t in axis.get_xticklabels()] == ["b", "a", "c"]
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["NMI", "acc"]


def test_metric_lines_one_line_per_hue_with_log2_axis():
    rows = pd.DataFrame({"batch": [64, 128, 64, 128, 64, 128], "opt": ["x", "x", "x", "x", "y", "y"],
                         "nmi": [0.1, 0.2, 0.3, np.nan, 0.5, 0.6]})
    figure = figures.metric_lines(rows, "batch", ["nmi"], hue="opt", log2_x=True)
    axis = figure.axes[0]
    assert len(axis.lines) >= 2 and axis.get_xscale() == "log"
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["x", "y"]
    single = figures.metric_lines(rows, "batch", ["nmi", "nmi"])
    assert len(single.axes) == 2


def test_figures_are_written(tmp_path):
    table = pd.DataFrame({"backbone": ["a", "b"], "acc": [0.5, 0.7], "nmi": [0.2, 0.3]})
    write_figure(figures.bar_figure(table, "backbone", ["acc", "nmi"], "t"), tmp_path, "bars")
    rows = pd.DataFrame({"experiment": ["I", "I", "V", "V"], "acc": [0.5, 0.6, 0.7, 0.8]})
    write_figure(figures.box_figure(rows, "experiment", ["acc"], "t"), tmp_path, "box")
    confusion = tables.summed_confusion([prediction([0, 1, 1], [0, 1, 0])], ("x", "y"))
    write_figure(figures.confusion_figure(confusion, "t"), tmp_path, "heat")
    assert {p.name for p in tmp_path.iterdir()} == {"bars.png", "box.png", "heat.png"}
