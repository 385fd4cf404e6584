"""The files of a run folder."""

import pandas as pd
import torch

from steelnb.backbones import create_backbone
from steelnb.method import runfiles
from steelnb.method.runfiles import RUN_FILES, run_info, write_csv, write_text


def test_files_are_written_whole_and_leave_nothing_beside(tmp_path):
    write_text(tmp_path / "config.json", "{}")
    write_csv(tmp_path / "history.csv", pd.DataFrame({"epoch": [0, 1]}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "history.csv"]
    assert pd.read_csv(tmp_path / "history.csv").epoch.tolist() == [0, 1]
    assert {"config.json", "history.csv", "model.pt"} <= set(RUN_FILES) and RUN_FILES.index("model.pt") > 2


def test_run_info_says_how_a_result_was_produced():
    info = run_info(create_backbone("resnet18", "random"), torch.device("cpu"), 12.34)
    assert info["backbone"] == "resnet18" and info["weights"] == "random" and info["pretrained"] is False
    assert info["device"] == "cpu" and info["wall_s"] == 12.3 and {"machine", "torch", "timm"} <= set(info)
    assert info["processes"] == 1  # torchrun's 2 processes say 2 (tests/test_distributed.py)
    assert info["faiss"].endswith(", cpu build") and "kmeans_engine" not in info
    assert run_info(create_backbone("resnet18", "random"), torch.device("cpu"), 1, "faiss")["kmeans_engine"] == \
        "faiss-cpu"


def test_two_faiss_builds_installed_side_by_side_are_named(monkeypatch):
    build = {"version": "1.15.1", "gpu_build": True, "gpus": 2,
             "installed": {"faiss-cpu": "1.15.1", "faiss-gpu": "1.15.1"}}
    monkeypatch.setattr(runfiles, "faiss_build", lambda: build)
    assert runfiles.faiss_summary() == ("1.15.1, gpu build, 2 GPUs (installed: faiss-cpu 1.15.1, faiss-gpu 1.15.1: "
                                        "one shadows the other; keep one)")
    monkeypatch.setattr(runfiles, "faiss_build", lambda: {**build, "version": None, "installed": {}})
    assert runfiles.faiss_summary() == "not installed"
