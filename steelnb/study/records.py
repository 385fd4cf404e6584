"""What every result file must say: tables and figures written with their captions (data, stand-in or not,
profile, seeds, weights), and `run.json` with the profile, seeds, machine, package versions and the weights used.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..backbones import device_name
from ..profiles import get_profile


def write_table(table: pd.DataFrame, out_dir: str | Path, name: str, caption: str = "") -> Path:
    """`<name>.csv` and `<name>.md` (with `caption` above the table) in `out_dir`.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_table(pd.DataFrame({"method": ["kmeans"], "acc": [0.5]}), folder, "scores", "ACC per method").name
    'scores.csv'
    >>> print((Path(folder) / "scores.md").read_text())
    ACC per method
    <BLANKLINE>
    | method   |    acc |
    |:---------|-------:|
    | kmeans   | 0.5000 |
    <BLANKLINE>
    """
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
    package = Path(__file__).resolve().parents[1]  # the steelnb package
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
    names `device`, by default the profile's training device ("auto" unless the profile sets one). `extra`
    goes in as it is: title, data (a StudySet's `info` or `datasets.data_record`), seeds, weights, paper
    (`paper_entry`), ...

    >>> import json, tempfile
    >>> path = write_record(tempfile.mkdtemp(), "ci", {"seeds": [0]}, 12.34, title="Demo", seeds=[0])
    >>> record = json.loads(path.read_text())
    >>> record["profile"], record["title"], record["wall_s"], record["environment"]["device"]
    ('ci', 'Demo', 12.3, 'cpu')
    """
    device = device or get_profile(profile).train.get("device", "auto")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {"profile": profile, "profile_settings": asdict(get_profile(profile)), "parameters": parameters,
              "environment": environment(device), "wall_s": round(wall_s, 1), **extra}
    (out / "run.json").write_text(json.dumps(record, indent=2, default=str))
    return out / "run.json"


def weights_label(weights: str | Sequence[str]) -> str:
    """"random weights" or "pretrained weights (<source>)" for one or several runs' weights."""
    values = sorted({weights} if isinstance(weights, str) else set(weights))
    return "; ".join("random weights (not pretrained)" if w == "random" else f"pretrained weights ({w})"
                     for w in values)


def caption(title: str, data: str, profile: str, seeds: Sequence[int], weights: str | Sequence[str],
            backbone: str | None = None) -> str:
    """`title` — `data` (what the data is, e.g. a StudySet's `caption`: whether it stands in for the paper's),
    profile, seeds, backbone and weights.

    >>> caption("Table", "NEU (48 images)", "ci", [0, 1], "random", backbone="resnet18")
    'Table — data: NEU (48 images); profile ci; seeds 0, 1; resnet18, random weights (not pretrained)'
    """
    model = f"{backbone}, " if backbone else ""
    seed_text = ", ".join(str(s) for s in seeds)
    return (f"{title} — data: {data}; profile {profile}; "
            f"seed{'s' if len(seeds) != 1 else ''} {seed_text}; {model}{weights_label(weights)}")


def paper_entry(source: str, figure: str, setting: str | None = None, measured: dict | None = None,
                note: str | None = None) -> dict:
    """What `write_record(..., paper=...)` takes: the paper's experiment matching the data set the images come
    from (`source`, e.g. a StudySet's; none for the synthetic set), the figure this notebook reproduces, the setting
    whose numbers are compared, and them."""
    experiment = None if source == "synthetic" else source
    if experiment is None:
        note = note or ("Synthetic data: the paper has no number for it, so no gap is computed.")
    return {"experiment": experiment, "figure": figure, "setting": setting, "measured": measured or {},
            "note": note}
