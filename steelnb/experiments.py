"""What every experiment notebook shares: configs from a profile, one scored run, and honest result files.

A notebook picks its data (`steelnb.data`, `protocols`), calls `score_run` for each setting, and writes
its tables and figures with `write_table` / `write_figure`; `write_record` puts the profile, seeds,
machine, package versions and the weights used beside them.
"""

from __future__ import annotations

import json
import platform
import subprocess
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import metrics
from .backbones import device_name
from .data import ImageSet
from .method.config import TrainConfig
from .method.inputs import target_labels
from .method.model import TrainedRun
from .method.predict import predict
from .method.train import train
from .profiles import get_profile


def profile_config(profile: str, **overrides) -> TrainConfig:
    """TrainConfig of a profile with `overrides` on top."""
    return TrainConfig.from_dict({**get_profile(profile).train, **overrides})


def score_run(config: TrainConfig, data: ImageSet, test: ImageSet | None = None) -> dict:
    """`fit_and_score` without the test predictions."""
    return fit_and_score(config, data, test)[0]


def fit_and_score(config: TrainConfig, data: ImageSet, test: ImageSet | None = None
                  ) -> tuple[dict, pd.DataFrame | None]:
    """Train on `data`, score the final clustering, and (given `test`) assign and score the test set.

    Returns one flat row: the setting's key fields, metrics on the training images (`train_*`), the
    untrained features' answer (`untrained_*`, epoch 0 of the same run), metrics on the test images,
    test seconds per image, wall seconds and the weights used; and, given `test`, its predictions
    (`predict.predict`'s table with `truth`, the class index scored against, where known).
    """
    predictions = None
    with tempfile.TemporaryDirectory() as scratch:
        config = replace(config, out_dir=config.out_dir if config.out_dir != "runs/latest" else scratch)
        started = time.perf_counter()
        result = train(config, data)
        row = {"backbone": config.backbone, "weights": result["run"]["weights"], "seed": config.seed,
               "n_train": len(data), "train_s": round(time.perf_counter() - started, 1)}
        row.update({f"train_{k}": v for k, v in result.get("metrics", {}).items()})
        row.update(untrained_scores(Path(config.out_dir) / "history.csv"))
        if test is not None:
            scores, predictions = score_test(TrainedRun.load(config.out_dir), test, config)
            row.update(scores)
    return row, predictions


def untrained_scores(history_csv: Path) -> dict:
    """ACC / NMI of epoch 0: the answer of the untrained features, the bar the training has to beat."""
    history = pd.read_csv(history_csv)
    if history.empty or "acc" not in history:
        return {}
    return {"untrained_acc": float(history.acc.iloc[0]), "untrained_nmi": float(history.nmi.iloc[0])}


def score_test(run: TrainedRun, test: ImageSet, config: TrainConfig) -> tuple[dict, pd.DataFrame]:
    """Nearest-centroid assignment of `test` with a trained run: its metrics and seconds per image, and
    the per-image predictions (with `truth` where known)."""
    started = time.perf_counter()
    table = predict(run, test, device=config.device)
    seconds = (time.perf_counter() - started) / max(len(test), 1)
    truth, _, normal = target_labels(test, config)
    row = {"n_test": len(test), "test_s_per_image": seconds}
    if truth is not None:
        row.update(metrics.evaluate(truth, table.cluster.to_numpy(), normal_label=normal))
        table["truth"] = truth
    return row, table


def mean_std(rows: pd.DataFrame, by: str | list[str], columns: list[str]) -> pd.DataFrame:
    """Mean and std of `columns` per group, as 'mean ± std' strings next to numeric mean columns."""
    grouped = rows.groupby(by)[columns]
    means, stds = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    out = means.add_suffix("_mean")
    for column in columns:
        out[column] = [f"{m:.4f} ± {s:.4f}" for m, s in zip(means[column], stds[column], strict=True)]
    return out.reset_index()


def write_table(table: pd.DataFrame, out_dir: str | Path, name: str, caption: str = "") -> Path:
    """`<name>.csv` and `<name>.md` (with `caption` above the table) in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{name}.csv", index=False)
    markdown = table.to_markdown(index=False, floatfmt=".4f")
    (out / f"{name}.md").write_text(f"{caption}\n\n{markdown}\n" if caption else f"{markdown}\n")
    return out / f"{name}.csv"


def write_figure(figure, out_dir: str | Path, name: str) -> Path:
    """`<name>.png` at 150 dpi in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure.savefig(out / f"{name}.png", dpi=150, bbox_inches="tight")
    return out / f"{name}.png"


def environment(device: str = "auto") -> dict:
    """Machine, the device used (`device` resolved: "cpu" or the GPU's name), package versions and the code's
    commit ("+modified" when the package's files differ from it): what a number must be read with."""
    import sklearn
    import timm

    return {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
                       f"{torch.get_num_threads()} threads",
            "device": device_name(device),
            "python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "sklearn": sklearn.__version__, "numpy": np.__version__, "commit": _commit()}


def _commit() -> str | None:
    """Short commit of the checkout holding this package, "+modified" if its steelnb/ files differ; None outside git."""
    package = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=package, check=False).stdout.strip()
        changes = subprocess.run(["git", "status", "--porcelain", "--", "."], capture_output=True, text=True,
                                 cwd=package, check=False).stdout.strip()
    except OSError:
        return None
    return f"{commit}+modified" if commit and changes else commit or None


def write_record(out_dir: str | Path, profile: str, parameters: dict, wall_s: float, device: str | None = None,
                 **extra) -> Path:
    """`run.json`: the notebook's parameters, profile settings, environment and wall time; the environment
    names `device`, by default the profile's training device ("auto" unless the profile sets one)."""
    device = device or get_profile(profile).train.get("device", "auto")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {"profile": profile, "profile_settings": asdict(get_profile(profile)), "parameters": parameters,
              "environment": environment(device), "wall_s": round(wall_s, 1), **extra}
    (out / "run.json").write_text(json.dumps(record, indent=2, default=str))
    return out / "run.json"
