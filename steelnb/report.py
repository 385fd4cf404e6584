"""What the notebooks share beyond `steelnb.experiments`: where results go, which data a run uses and how
that is said, and the `results/<profile>/README.md` that gathers every experiment's tables.

Notebook plumbing
- `repo_root`, `results_path`: `results/<profile>/<notebook>` under the repository, whatever the cwd.
- `limit_threads`: one BLAS / OpenMP / torch thread for the ci profile (tiny arrays on shared cores).
- `experiment_data`: the preferred real data set (NEU, DAGM) when it can be found, else the built-in
  synthetic set, with a sentence saying which and why; `sweep_config` the ablation's TrainConfig on it.
- `caption`, `weights_label`: the line every table and figure title carries (data, stand-in or not, profile,
  seeds, weights).
- `sweep_table`: "mean ± std" per setting of a sweep; `paper_entry`: the `paper=` entry of a run.json;
  `history_with_final`, `prune_run`: a run's per-epoch history and dropping its weight files.

Results README
- `write_results_readme(results_dir, profile)`: per experiment folder its title, the run.json summary
  (profile, seeds, machine, weights, wall time), every Markdown table, the figures, and the paper's
  figures from `steelnb.paper` with the gap to the measured ones, when the run records a comparison
  (`write_record(..., paper={"experiment": "neu", "setting": "...", "measured": {"acc": ...}})`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from . import paper
from .data import ImageSet, data_root_from_env, load_dataset, protocols
from .experiments import mean_std, profile_config
from .method.config import TrainConfig
from .profiles import get_profile
from .studysets import find_dataset

# How each real data set relates to the paper's experiments.
PAPER_ROLE = {
    "neu": "the paper's NEU",
    "dagm": "DAGM class 1 standing in for Severstal",
    "severstal": "the paper's Severstal",
}

# -- notebook plumbing ------------------------------------------------------------------------------------


def repo_root(start: str | Path | None = None) -> Path:
    """The repository: the first folder at or above `start` (default: cwd) holding pyproject.toml and
    steelnb/; else the folder above the installed package when it is a checkout; else `start`."""
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "steelnb" / "__init__.py").is_file():
            return folder
    package_parent = Path(__file__).resolve().parents[1]
    if (package_parent / "pyproject.toml").is_file():
        return package_parent
    return start


def results_path(results_dir: str | Path | None, profile: str, name: str) -> Path:
    """`results_dir`, or `<repo>/results/<profile>/<name>`; created."""
    out = Path(results_dir) if results_dir else repo_root() / "results" / profile / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def limit_threads(threads: int | None, profile: str) -> int | None:
    """Cap torch, BLAS and OpenMP (sklearn, faiss) at `threads`; None: 1 for the ci profile, else no cap.

    On a loaded 2-core machine tiny k-means / PCA calls spend seconds in spinning OpenMP / BLAS threads
    (measured: 2.3 s -> 0.02 s for PCA of 48 x 512 features); call this after importing steelnb.
    Returns the cap applied (None: libraries' defaults kept).
    """
    if threads is None:
        threads = 1 if profile == "ci" else None
    if threads is None:
        return None
    if threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads!r}")
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    faiss.omp_set_num_threads(threads)
    return threads


def _find_real(name: str, data_root: str | Path | None, image_size: int) -> tuple[ImageSet | None, dict]:
    """Data set `name` by `studysets.find_dataset`, with where it was found; (None, {"not_found": why}) if not."""
    data, why = find_dataset(name, data_root, image_size)
    if data is None:
        return None, {"not_found": why}
    root = data_root_from_env(data_root)
    return data, {"dataset": name, "root": str(root), "found_via": "data_root" if data_root else "$STEELNB_DATA",
                  "role": PAPER_ROLE.get(name, name), "stand_in": name == "dagm"}


def experiment_data(preferred: str, data_root: str | Path | None = None, image_size: int = 128,
                    max_per_class: int | None = None, seed: int = 0,
                    synthetic_options: dict | None = None) -> tuple[ImageSet, dict]:
    """The `preferred` data set (a real one, or "synthetic"), else the synthetic one, capped at `max_per_class`.

    Real data is looked up by `studysets.find_dataset` (`data_root`, else `$STEELNB_DATA`); where it is not
    there the synthetic set stands in (with a warning) and the returned info says so.
    Info: dataset, root, found_via, role (how it relates to the paper), stand_in (bool), n_images, n_classes,
    max_per_class, image_size, note (a sentence to print) and description (the short form captions use).
    """
    data, info = (None, {}) if preferred == "synthetic" else _find_real(preferred, data_root, image_size)
    if data is None:
        data = load_dataset("synthetic", image_size=image_size, **(synthetic_options or {}))
        role = ("built-in synthetic steel textures, no counterpart in the paper" if preferred == "synthetic"
                else f"synthetic steel textures standing in for {preferred.upper()}")
        info.update(dataset="synthetic", root=None, found_via="built in", role=role,
                    stand_in=preferred != "synthetic")
        if "not_found" in info:
            warnings.warn(f"{preferred} not found ({info['not_found']}); using the built-in "
                          "synthetic data set", stacklevel=2)
    if max_per_class:
        data = protocols.cap_per_class(data, max_per_class, seed=seed)
    counts = ", ".join(f"{c} {n}" for c, n in data.summary()["classes"].items())
    info.update(n_images=len(data), n_classes=data.n_classes, max_per_class=max_per_class, image_size=image_size)
    cap = f", at most {max_per_class} per class" if max_per_class else ""
    info["description"] = f"{info['dataset']} ({info['role']}; {len(data)} images{cap})"
    where = f"read from {info['root']} (found via {info['found_via']})" if info["root"] else "built in"
    info["note"] = f"Data: {info['description']}, {where}. Classes: {counts}."
    if "not_found" in info:
        info["note"] += f" {preferred} was not found: {info['not_found']}."
    return data, info


def sweep_config(profile: str, data: ImageSet, backbone: str | None = None, weights: str | None = None,
                 **overrides) -> TrainConfig:
    """One short ablation run of `profile` on `data`: the profile's sweep settings, its ablation backbone,
    pseudo-labels from the profile's K (at least the number of classes), the answer in as many clusters as
    classes, and `overrides` on top.

    `weights` None takes the profile's, except "offline" (EfficientNet-Lite0 only) for another backbone,
    which falls back to "random" with a warning.
    """
    settings = get_profile(profile)
    backbone = backbone or settings.ablation_backbone
    config = profile_config(profile, **settings.sweep, backbone=backbone)
    if weights is None:
        weights = settings.weights_for(backbone)
        if weights != config.weights:
            warnings.warn(f"profile {profile}: {config.weights} weights exist only for efficientnet_lite0; "
                          f"{backbone} starts from {weights} weights", stacklevel=2)
    values = {"dataset": data.name, "n_clusters": max(config.n_clusters, data.n_classes),
              "eval_clusters": data.n_classes, "weights": weights, "max_per_class": None, **overrides}
    return TrainConfig.from_dict({**asdict(config), **values})


def weights_label(weights: str | Sequence[str]) -> str:
    """"random weights" or "pretrained weights (<source>)" for one or several runs' weights."""
    values = sorted({weights} if isinstance(weights, str) else set(weights))
    return "; ".join("random weights (not pretrained)" if w == "random" else f"pretrained weights ({w})"
                     for w in values)


def caption(title: str, data_info: dict, profile: str, seeds: Sequence[int], weights: str | Sequence[str],
            backbone: str | None = None) -> str:
    """`title` — data (and whether it stands in for the paper's), profile, seeds, backbone and weights."""
    model = f"{backbone}, " if backbone else ""
    seed_text = ", ".join(str(s) for s in seeds)
    return (f"{title} — data: {data_info['description']}; profile {profile}; "
            f"seed{'s' if len(seeds) != 1 else ''} {seed_text}; {model}{weights_label(weights)}")


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


def paper_entry(data_info: dict, figure: str, setting: str | None = None, measured: dict | None = None,
                note: str | None = None) -> dict:
    """What `write_record(..., paper=...)` takes: the paper's experiment matching the data (none for the
    synthetic set), the figure this notebook reproduces, the setting whose numbers are compared, and them."""
    experiment = None if data_info.get("dataset") == "synthetic" else data_info.get("dataset")
    if experiment is None:
        note = note or ("Synthetic data: the paper has no number for it, so no gap is computed.")
    return {"experiment": experiment, "figure": figure, "setting": setting, "measured": measured or {},
            "note": note}


def history_with_final(run_dir: str | Path, row: dict, **keys) -> pd.DataFrame:
    """A run's history.csv (one row per epoch: the clustering *before* that epoch's training) with one
    more row, `epoch` = number of epochs and stage "final", holding the final clustering's NMI / ACC
    (`row`'s train_nmi / train_acc); `keys` (e.g. optimizer, seed) are added as columns."""
    history = pd.read_csv(Path(run_dir) / "history.csv")
    history.insert(1, "stage", "before training")
    final = {"epoch": int(history.epoch.max()) + 1 if len(history) else 0, "stage": "final",
             "nmi": row.get("train_nmi", float("nan")), "acc": row.get("train_acc", float("nan"))}
    history = pd.concat([history, pd.DataFrame([final])], ignore_index=True)
    for name, value in reversed(keys.items()):
        history.insert(0, name, value)
    return history


def prune_run(run_dir: str | Path, keep: Sequence[str] = ()) -> int:
    """Delete a run's weight files (*.pt: checkpoint.pt, model.pt) but those named in `keep`, keeping its
    CSV / JSON; returns the bytes freed."""
    freed = 0
    for path in Path(run_dir).glob("*.pt"):
        if path.name in keep:
            continue
        freed += path.stat().st_size
        path.unlink()
    return freed


# -- results README ---------------------------------------------------------------------------------------

_SKIP = {"executed", "runs"}


def _read_record(folder: Path) -> dict | None:
    path = folder / "run.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"unreadable": True}


def record_summary(record: dict) -> dict:
    """The facts a reader needs beside an experiment's numbers, from its run.json (absent: "not recorded")."""
    environment = record.get("environment", {})
    settings = record.get("profile_settings", {})
    parameters = record.get("parameters", {})
    seeds = record.get("seeds", parameters.get("seeds") or settings.get("seeds"))
    weights = record.get("weights")
    data = record.get("data") or "not recorded"
    return {
        "profile": record.get("profile", "not recorded"),
        "data": data.get("description", "not recorded") if isinstance(data, dict) else str(data),
        "seeds": ", ".join(map(str, seeds)) if isinstance(seeds, list | tuple) else (seeds or "not recorded"),
        "weights": weights_label(weights) if weights else "not recorded",
        "machine": ", ".join(str(v) for v in (environment.get("machine"), environment.get("device")) if v)
        or "not recorded",
        "wall time": f"{record['wall_s']} s" if "wall_s" in record else "not recorded",
        "commit": environment.get("commit") or "not recorded",
    }


def _stand_in(record: dict) -> bool:
    """Whether the record's data stands in for the paper's (a flag, or a flag per set)."""
    flag = (record.get("data") or {}).get("stand_in") if isinstance(record.get("data"), dict) else None
    return any(flag.values()) if isinstance(flag, dict) else bool(flag)


def paper_comparison(record: dict) -> list[str]:
    """Markdown lines: the paper's reported figures (steelnb.paper.REPORTED) next to the measured ones and
    the gap; no gap where the data stands in for the paper's (other images); or why there is no comparison."""
    comparison = record.get("paper")
    if not comparison:
        return ["*Paper comparison: none recorded for this experiment.*"]
    figure = comparison.get("figure")
    experiment = comparison.get("experiment")
    reported = paper.REPORTED.get(experiment) if experiment else None
    lines = [f"Paper: {figure}.", ""] if figure else []
    if not reported:
        if figure:
            lines[0] = f"Paper: {figure}; its values are not recorded in `steelnb/paper.py`."
        lines.append(comparison.get("note") or "*No reported figure of the paper to compare with.*")
        return lines
    measured = comparison.get("measured") or {}
    gap = paper.gap(measured, experiment)
    stand_in = _stand_in(record)
    setting = comparison.get("setting")
    lines.append(f"The paper's reported `{experiment}` figures (Bai et al. 2024, `steelnb/paper.py`) vs measured"
                 + (f" ({setting})" if setting else "") + ":")
    lines += ["", "| metric | paper | measured | gap (measured − paper) |", "|---|---|---|---|"]
    for metric, value in reported.items():
        shown = f"{measured[metric]:.4f}" if metric in measured else "not measured"
        difference = f"{gap[metric]:+.4f}" if metric in gap else "—"
        if stand_in:
            difference = "none: different data"
        lines.append(f"| {metric} | {value:.4f} | {shown} | {difference} |")
    if comparison.get("note"):
        lines += ["", comparison["note"]]
    return lines


def experiment_section(folder: Path, results_dir: Path) -> list[str]:
    """The README section of one experiment folder."""
    record = _read_record(folder)
    title = (record or {}).get("title")
    lines = [f"## {folder.name}" + (f": {title}" if title else ""), ""]
    if record is None:
        lines += ["**No run.json: this experiment did not finish (or wrote no record).**", ""]
    elif record.get("unreadable"):
        lines += ["**run.json is not valid JSON.**", ""]
    else:
        summary = record_summary(record)
        lines += ["| " + " | ".join(summary) + " |", "|" + "---|" * len(summary),
                  "| " + " | ".join(str(v) for v in summary.values()) + " |", ""]
    for table in sorted(folder.glob("*.md")):
        lines += [f"### {table.stem}", "", table.read_text().strip(), ""]
    for image in sorted(folder.glob("*.png")):
        relative = image.relative_to(results_dir).as_posix()
        lines += [f"![{image.stem}]({relative})", ""]
    if record and not record.get("unreadable"):
        lines += [*paper_comparison(record), ""]
    return lines


def write_results_readme(results_dir: str | Path, profile: str) -> Path:
    """`<results_dir>/README.md`: one section per experiment folder (sorted), from what the folders hold."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir} does not exist: run the notebooks first (reproduce.sh)")
    folders = sorted(p for p in results_dir.iterdir() if p.is_dir() and p.name not in _SKIP
                     and not p.name.startswith("."))
    lines = [f"# Results of the `{profile}` profile", "",
             "Written by `steelnb.report.write_results_readme` (run by `reproduce.sh`) from the tables, figures "
             "and run.json records under this folder; do not edit by hand. Each section: the run's profile, "
             "data, seeds, machine, weights and wall time, then its tables and figures, then the paper's "
             "reported figures (`steelnb/paper.py`) with the gap where there is a comparable number. The executed "
             "notebooks, with their outputs, are in `executed/` (not committed).", ""]
    if not folders:
        lines += ["*No experiment results yet.*", ""]
    for folder in folders:
        lines += experiment_section(folder, results_dir)
    out = results_dir / "README.md"
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out
