"""results/<profile>/README.md, from what the experiment folders hold."""

import json

import pandas as pd
import pytest

from steelnb.study import readme, records


@pytest.fixture
def results(tmp_path):
    """A results folder: one finished experiment with a paper comparison, one without a record."""
    done = tmp_path / "01_clusterers"
    table = pd.DataFrame({"method": ["kmeans", "minibatch"], "acc": [0.5, 0.6]})
    records.write_table(table, done, "clusterers", caption="NMI/ACC per clusterer")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, _ = plt.subplots()
    records.write_figure(figure, done, "bars")
    plt.close(figure)
    records.write_record(done, "ci", {"methods": ["kmeans"]}, 12.34, title="Clusterer ablation",
                             data={"description": "neu (the paper's NEU; 48 images)"}, seeds=[0, 1],
                             weights=["random"], paper={"experiment": "neu", "figure": "Fig. 6",
                                                        "setting": "minibatch", "measured": {"acc": 0.6}})
    (tmp_path / "02_failed").mkdir()
    (tmp_path / "02_failed" / "partial.md").write_text("| a |\n|---|\n| 1 |\n")
    (tmp_path / "executed").mkdir()
    (tmp_path / "executed" / "log.md").write_text("should not appear")
    return tmp_path


def test_readme_gathers_tables_records_and_the_paper_gap(results):
    text = readme.write_results_readme(results, "ci").read_text()
    assert text.startswith("# Results of the `ci` profile")
    assert "## 01_clusterers: Clusterer ablation" in text
    assert "NMI/ACC per clusterer" in text and "| minibatch |" in text
    assert "![bars](01_clusterers/bars.png)" in text
    assert "neu (the paper's NEU; 48 images)" in text and "| 0, 1 |" in text and "12.3 s" in text
    assert "random weights (not pretrained)" in text
    assert "| acc | 0.8753 | 0.6000 | -0.2753 |" in text  # paper, measured, gap
    assert "Paper: Fig. 6." in text
    assert "## 02_failed" in text and "did not finish" in text and "| 1 |" in text
    assert "should not appear" not in text
    assert text.index("01_clusterers") < text.index("02_failed")


def test_readme_of_a_record_without_comparison_or_with_unknown_experiment(tmp_path):
    records.write_record(tmp_path / "a", "ci", {}, 1.0)
    records.write_record(tmp_path / "b", "ci", {}, 1.0, paper={"experiment": "synthetic",
                                                                   "note": "synthetic data: nothing to compare"})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "run.json").write_text("{not json")
    text = readme.write_results_readme(tmp_path, "ci").read_text()
    assert "none recorded" in text and "synthetic data: nothing to compare" in text
    assert "not valid JSON" in text
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert readme.record_summary(record)["seeds"] == "0, 1"  # from the profile's settings


def test_readme_of_an_empty_or_missing_folder(tmp_path):
    assert "No experiment results yet" in readme.write_results_readme(tmp_path, "cpu").read_text()
    with pytest.raises(FileNotFoundError):
        readme.write_results_readme(tmp_path / "missing", "cpu")


def test_no_gap_is_computed_for_stand_in_data(tmp_path):
    records.write_record(tmp_path / "x", "ci", {}, 1.0,
                             data={"description": "dagm", "stand_in": {"2-cluster": True}},
                             paper={"experiment": "severstal-2", "figure": "Table 2", "measured": {"acc": 0.5}})
    records.write_record(tmp_path / "y", "ci", {}, 1.0,
                             paper={"experiment": None, "figure": "Fig. 9", "note": "not recorded"})
    text = readme.write_results_readme(tmp_path, "ci").read_text()
    assert "| acc | 0.9004 | 0.5000 | none: different data |" in text
    assert "| nmi | 0.7661 | not measured | none: different data |" in text
    assert "Paper: Fig. 9; its values are not recorded" in text
