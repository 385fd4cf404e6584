"""`results/<profile>/README.md`: per experiment folder its title, the run.json summary (profile, seeds, machine,
weights, wall time), every Markdown table, the figures, and the paper's figures from `steelnb.study.paper` with the
gap to the measured ones, when the run records a comparison
(`write_record(..., paper={"experiment": "neu", "setting": "...", "measured": {"acc": ...}})`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import paper
from .records import weights_label
from .tables import paper_comparison

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


def comparison_lines(record: dict) -> list[str]:
    """Markdown lines: `tables.paper_comparison` of the record's measured figures (the paper's reported ones,
    steelnb.study.paper.REPORTED, beside them and the gap); no gap where the data stands in for the paper's (other
    images); or why there is no comparison."""
    comparison = record.get("paper")
    if not comparison:
        return ["*Paper comparison: none recorded for this experiment.*"]
    figure = comparison.get("figure")
    experiment = comparison.get("experiment")
    lines = [f"Paper: {figure}.", ""] if figure else []
    if not (experiment and paper.REPORTED.get(experiment)):
        if figure:
            lines[0] = f"Paper: {figure}; its values are not recorded in `steelnb/study/paper.py`."
        lines.append(comparison.get("note") or "*No reported figure of the paper to compare with.*")
        return lines
    table = paper_comparison(comparison.get("measured") or {}, experiment)
    stand_in = _stand_in(record)
    setting = comparison.get("setting")
    lines.append(f"The paper's reported `{experiment}` figures (Bai et al. 2024, `steelnb/study/paper.py`) vs measured"
                 + (f" ({setting})" if setting else "") + ":")
    lines += ["", "| metric | paper | measured | gap (measured − paper) |", "|---|---|---|---|"]
    for row in table.to_dict("records"):
        shown = "not measured" if pd.isna(row["measured"]) else f"{row['measured']:.4f}"
        difference = "none: different data" if stand_in else "—" if pd.isna(row["gap"]) else f"{row['gap']:+.4f}"
        lines.append(f"| {row['metric']} | {row['reported (paper)']:.4f} | {shown} | {difference} |")
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
        lines += [*comparison_lines(record), ""]
    return lines


def write_results_readme(results_dir: str | Path, profile: str) -> Path:
    """`<results_dir>/README.md`: one section per experiment folder (sorted), from what the folders hold.

    >>> import tempfile
    >>> from steelnb.study.records import write_record
    >>> results = Path(tempfile.mkdtemp())
    >>> _ = write_record(results / "01_demo", "ci", {}, 1.0, title="Demo",
    ...                  paper={"experiment": "neu", "figure": "Fig. 6", "measured": {"acc": 0.9}})
    >>> text = write_results_readme(results, "ci").read_text()
    >>> "## 01_demo: Demo" in text, "| acc | 0.8753 | 0.9000 | +0.0247 |" in text
    (True, True)
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir} does not exist: run the notebooks first (reproduce.sh)")
    folders = sorted(p for p in results_dir.iterdir() if p.is_dir() and p.name not in _SKIP
                     and not p.name.startswith("."))
    lines = [f"# Results of the `{profile}` profile", "",
             "Written by `steelnb.study.readme.write_results_readme` (run by `reproduce.sh`) from the tables, figures "
             "and run.json records under this folder; do not edit by hand. Each section: the run's profile, "
             "data, seeds, machine, weights and wall time, then its tables and figures, then the paper's "
             "reported figures (`steelnb/study/paper.py`) with the gap where there is a comparable number. The "
             "executed notebooks, with their outputs, are in `executed/` (not committed).", ""]
    if not folders:
        lines += ["*No experiment results yet.*", ""]
    for folder in folders:
        lines += experiment_section(folder, results_dir)
    out = results_dir / "README.md"
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out
