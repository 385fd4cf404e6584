"""The files of a run folder: their names, how each is written (whole or not at all), and what metrics.json
says about how the run was produced."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd
import timm
import torch

from .. import distributed
from ..backbones import Backbone, device_name
from ..runfolder import atomic_path
from .cluster import faiss_build, kmeans_engine

# Every file a run writes into out_dir; model.pt last of train()'s, so that it means "finished". report.html and
# its pictures (the folder report_files/) follow it in `steelnb train`; `steelnb report` can write them again.
RUN_FILES = ("config.json", "skipped.csv", "history.csv", "checkpoint.pt", "assignments.csv", "metrics.json",
             "model.pt", "report.html", "report_files")


def write_text(path: Path, text: str) -> None:
    """`text` into `path`, atomically."""
    with atomic_path(path) as partial:
        partial.write_text(text)


def write_csv(path: Path, table: pd.DataFrame) -> None:
    """`table` into `path` as CSV without the index, atomically."""
    with atomic_path(path) as partial:
        table.to_csv(partial, index=False)


def run_info(backbone: Backbone, device: torch.device, wall_s: float, clusterer: str | None = None) -> dict:
    """What a result must say about how it was produced: backbone and weights, device, processes (torchrun), machine,
    versions (faiss: which build), and for a run that clusters with `clusterer` what ran its k-means."""
    info = {"backbone": backbone.name, "weights": backbone.weights, "pretrained": backbone.pretrained,
            "device": device_name(device), "processes": distributed.world().size,
            "machine": f"{platform.machine()}, {os.cpu_count()} cpu", "torch": torch.__version__,
            "timm": timm.__version__, "faiss": faiss_summary(), "wall_s": round(wall_s, 1)}
    if clusterer in ("faiss", "torch"):
        info["kmeans_engine"] = kmeans_engine(clusterer)
    return info


def faiss_summary() -> str:
    """"1.15.1, cpu build", "1.15.1, gpu build, 2 GPUs" or "not installed"; names a second faiss distribution
    installed beside the one imported (they shadow each other)."""
    build = faiss_build()
    if build["version"] is None:
        text = "not installed"
    elif build["gpu_build"]:
        text = f"{build['version']}, gpu build, {build['gpus']} GPU{'s' * (build['gpus'] != 1)}"
    else:
        text = f"{build['version']}, cpu build"
    if len(build["installed"]) > 1:
        text += " (installed: " + ", ".join(f"{k} {v}" for k, v in build["installed"].items()) + ": one shadows " \
                "the other; keep one)"
    return text
