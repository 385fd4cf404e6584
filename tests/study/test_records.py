"""Result files and what they must say: captions, the paper entry of a record."""

from steelnb.study import records


def test_caption_names_data_profile_seeds_and_weights():
    data = "dagm (DAGM class 1 standing in for Severstal; 575 images)"
    text = records.caption("Table", data, "cpu", [0, 1], ["random"], backbone="resnet18")
    assert "standing in for Severstal" in text and "profile cpu" in text and "seeds 0, 1" in text
    assert "resnet18, random weights (not pretrained)" in text
    assert "pretrained weights (timm:x)" in records.caption("T", data, "ci", [3], "timm:x")


def test_paper_entry_compares_real_data_only():
    real = records.paper_entry("neu", "Fig. 6", "minibatch", {"acc": 0.5})
    assert real["experiment"] == "neu" and real["measured"] == {"acc": 0.5} and real["note"] is None
    synthetic = records.paper_entry("synthetic", "Fig. 6", "minibatch", {"acc": 0.5})
    assert synthetic["experiment"] is None and "no gap" in synthetic["note"]


def test_the_environment_names_the_commit_of_the_whole_package():
    from steelnb.study.notebook import repo_root

    environment = records.environment("cpu")
    assert environment["device"] == "cpu" and {"machine", "python", "torch", "timm", "sklearn"} <= set(environment)
    if (repo_root() / ".git").exists():  # a checkout: the commit, "+modified" when steelnb/ differs from it
        assert environment["commit"] and len(environment["commit"].split("+")[0]) >= 7
